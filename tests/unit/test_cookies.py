"""Cookies for a third-party frame (an LMS page embedding the tool)."""

from __future__ import annotations

from app.lib.sessions import partitioned_cookie


def test_a_framed_cookie_is_sent_cross_site_and_partitioned() -> None:
    cookie = partitioned_cookie("session=abc; Path=/; SameSite=Lax; HttpOnly")
    assert cookie == "session=abc; Path=/; HttpOnly; SameSite=None; Secure; Partitioned"


def test_a_framed_cookie_keeps_its_expiry_and_drops_attributes_it_replaces() -> None:
    cookie = partitioned_cookie("csrftoken=x; Max-Age=600; Secure; samesite=strict; Partitioned")
    assert cookie == "csrftoken=x; Max-Age=600; SameSite=None; Secure; Partitioned"
