"""Where a person may be sent after signing in: only a path of this site."""

from __future__ import annotations

import pytest

from app.lib.http import safe_next


@pytest.mark.parametrize("target", ["/professors", "/professors?q=Ada%20Lovelace", "/bookings/1?tab=past&x=1"])
def test_a_path_of_this_site_is_kept(target: str) -> None:
    assert safe_next(target, "/") == target


@pytest.mark.parametrize(
    "target",
    [
        "/\t/127.0.0.1:8301/x",  # the tab is dropped by the browser: //127.0.0.1:8301/x
        "/%09/127.0.0.1:8301/x",
        "/\r\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "https://evil.example/",
        "evil.example",
        "/%E3%80%82evil",  # an ideographic full stop, which browsers may read as a dot
        "/caf\u00e9",
        "",
    ],
)
def test_anything_that_could_lead_off_site_is_replaced_by_the_default(target: str) -> None:
    assert safe_next(target, "/start") == "/start"
