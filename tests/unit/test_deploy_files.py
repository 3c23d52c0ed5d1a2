"""The systemd units in deploy/ are valid units (systemd's own checker), with this checkout's `app` put in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize(
    ("template", "instance"), [("office-hours-web@.service", "8000"), ("office-hours-worker@.service", "1")]
)
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path, template: str, instance: str) -> None:
    app = str(Path(sys.executable).parent / "app")
    unit = tmp_path / template.replace("@.", f"@{instance}.")
    unit.write_text((UNITS / template).read_text().replace("/srv/office-hours/.venv/bin/app", app))
    assert ANALYZE is not None
    checked = subprocess.run([ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False)
    assert (checked.returncode, checked.stderr) == (0, "")
