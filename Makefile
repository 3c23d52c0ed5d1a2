# Entry points used by the README and .ci/run. Everything installs itself into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench screenshots i18n clean

TRANSLATIONS := src/app/translations
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

install: $(VENV)/.installed $(CATALOGUES)

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Compiled catalogues are built, not committed.
%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

# After changing texts: extract them, merge them into each language's catalogue (translate the new ones), compile.
i18n: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --sort-by-file --no-wrap --omit-header -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-wrap --ignore-obsolete --no-fuzzy-matching
	$(MAKE) $(CATALOGUES)

run: install
	$(BIN)/app database upgrade --no-prompt
	$(BIN)/app demo --if-empty
	$(BIN)/app run --host $(HOST) --port $(PORT)

# Two passes: most tests on TEST_WORKERS processes (each with its own database, Redis database number, SMTP
# server, fakes and browser), then the few marked `serial` (timing under load, many processes) on their own.
TEST_WORKERS ?= 2
test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial" --durations=25; parallel=$$?; \
	$(BIN)/pytest -m serial; serial=$$?; \
	test $$parallel -eq 0 -a $$serial -eq 0

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	@echo "Start the app (make run), then e.g.: $(BIN)/python bench/booking_rush.py http://127.0.0.1:8000"
	@cat bench/README.md

screenshots: install
	$(BIN)/python scripts/screenshots.py

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^app' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
