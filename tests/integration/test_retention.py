"""Retention: old bookings, notes and waitlist entries pseudonymised; old notifications, expired sessions, tokens
and exports deleted; one idempotent run that reports its counts (a daily cron job and `app retention run`)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from app.config import Settings, get_settings
from app.domain.privacy.retention import Retention, RetentionReport, months_before
from app.services import provide_services
from app.worker import run_retention, saq_config
from tests.conftest import ROOT
from tests.helpers import api_token, book, in_hours, make_slot, make_user, web_login


def settings(**changes: Any) -> Settings:
    return dataclasses.replace(get_settings(), **changes)


async def retention(**changes: Any) -> RetentionReport:
    async with provide_services() as services:
        return await Retention(services.session, settings(**changes)).run(ip="test")


def age_slot(database_url: str, slot_id: Any, days: int) -> None:
    """As if the slot (and its bookings) had taken place `days` ago."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consultation_slot SET created_at = now() - make_interval(days => %s + 1),"
            " start_time = now() - make_interval(days => %s), end_time = now() - make_interval(days => %s)"
            " + interval '30 minutes' WHERE id = %s",
            (days, days, days, slot_id),
        )
        conn.execute(
            "UPDATE booking b SET start_time = s.start_time, end_time = s.end_time, status = 'completed'"
            " FROM consultation_slot s WHERE b.slot_id = s.id AND s.id = %s",
            (slot_id,),
        )


def test_months_are_counted_on_the_calendar() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)


async def test_bookings_older_than_the_retention_period_are_pseudonymised(database_url: str) -> None:
    professor = await make_user("professor")
    student = await make_user(first_name="Adalinde", last_name="Quuxlovelace")
    old_slot = await make_slot(professor, in_hours(30))
    old = await book(student, old_slot, "Quuxlovelace thesis")
    age_slot(database_url, old_slot.id, days=70)
    recent_slot = await make_slot(professor, in_hours(60))
    recent = await book(student, recent_slot, "Exam")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating, feedback_signed,"
            " created_at, updated_at) VALUES (gen_random_uuid(), %s, 'notes on Adalinde', 'Signed, Adalinde', 5,"
            " true, now(), now())",
            (old.id,),
        )

    report = await retention(retention_months=2)

    assert report.bookings_pseudonymised == 1
    with psycopg.connect(database_url) as conn:
        moved = conn.execute(
            "SELECT u.username, u.erased_at IS NOT NULL, b.topic, b.status, n.rating, n.student_feedback,"
            " n.feedback_signed, n.professor_notes FROM booking b JOIN user_account u ON u.id = b.student_id"
            " JOIN consultation_note n ON n.booking_id = b.id WHERE b.id = %s",
            (old.id,),
        ).fetchone()
        assert moved is not None
        assert moved[0].startswith("former-")
        assert moved[1:] == (True, "", "completed", 5, "", False, "")
        kept = conn.execute("SELECT student_id, topic FROM booking WHERE id = %s", (recent.id,)).fetchone()
        assert kept == (student.id, "Exam")
        still = conn.execute("SELECT erased_at FROM user_account WHERE id = %s", (student.id,)).fetchone()
        assert still == (None,)  # the person keeps their account; the old booking no longer leads to them


async def test_old_closed_waitlist_entries_are_pseudonymised_open_ones_kept(database_url: str) -> None:
    professor = await make_user("professor")
    student = await make_user()
    full = await make_slot(professor, in_hours(40), capacity=1)
    await book(await make_user(), full)
    async with provide_services() as services:
        entry = await services.waitlist.join_slot(student, full.id)
    other_full = await make_slot(professor, in_hours(90), capacity=1)
    await book(await make_user(), other_full)
    async with provide_services() as services:
        waiting = await services.waitlist.join_slot(student, other_full.id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE waitlist_entry SET status = 'expired', window_start = now() - interval '100 days',"
            " window_end = now() - interval '99 days' WHERE id = %s",
            (entry.id,),
        )

    report = await retention(retention_months=2)

    assert report.waitlist_entries_pseudonymised == 1
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT id, student_id FROM waitlist_entry").fetchall())
    assert rows[waiting.id] == student.id
    assert rows[entry.id] != student.id


async def test_old_delivered_notifications_are_deleted_and_waiting_ones_kept(database_url: str) -> None:
    student = await make_user(verified=False)  # a verification mail in the outbox
    with psycopg.connect(database_url, autocommit=True) as conn:
        for status in ("sent", "failed", "queued"):
            conn.execute(
                "INSERT INTO notification (id, user_id, kind, dedupe_key, status, attempts, last_error, context,"
                " created_at, updated_at) VALUES (gen_random_uuid(), %s, 'x', %s, %s, 0, '', '{}',"
                " now() - interval '100 days', now())",
                (student.id, f"old:{status}:{student.id}", status),
            )
    report = await retention(notification_retention_days=90)
    assert report.notifications_deleted == 2
    with psycopg.connect(database_url) as conn:
        left = sorted(r[0] for r in conn.execute("SELECT status FROM notification WHERE user_id = %s", (student.id,)))
    assert left == ["queued", "queued"]  # the old one still waiting, and the recent verification mail


async def test_expired_sessions_and_tokens_are_purged(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    headers = await api_token(client, user.username)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE user_session SET expires_at = now() - interval '1 minute'")
        conn.execute("UPDATE api_token SET expires_at = now() - interval '1 minute'")
    report = await retention()
    assert (report.sessions_deleted, report.tokens_deleted) == (1, 1)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_session").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM api_token").fetchone() == (0,)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_a_second_run_changes_nothing(database_url: str) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, in_hours(30))
    await book(await make_user(), slot, "Topic")
    age_slot(database_url, slot.id, days=70)
    first = await retention(retention_months=2)
    assert first.bookings_pseudonymised == 1
    second = await retention(retention_months=2)
    assert second == RetentionReport()
    with psycopg.connect(database_url) as conn:
        actions = conn.execute("SELECT action, details FROM audit_log").fetchall()
    assert actions == [("retention.run", dataclasses.asdict(first))]  # a run that did nothing is not logged


async def test_retention_months_zero_keeps_every_booking(database_url: str) -> None:
    professor = await make_user("professor")
    student = await make_user()
    slot = await make_slot(professor, in_hours(30))
    await book(student, slot, "Topic")
    age_slot(database_url, slot.id, days=4000)
    report = await retention(retention_months=0)
    assert report.bookings_pseudonymised == 0


async def test_the_cron_job_runs_daily_and_logs_its_counts(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    scheduled = {job.function.__name__: job.cron for job in saq_config().queue_configs[0].scheduled_tasks}
    assert scheduled["run_retention"] == "23 3 * * *"
    with caplog.at_level("INFO", logger="app.domain.privacy.retention"):
        counts = await run_retention({})
    assert set(counts) == {f.name for f in dataclasses.fields(RetentionReport)}
    assert any(record.getMessage().startswith("retention run: bookings_pseudonymised=") for record in caplog.records)


async def test_the_command_prints_what_it_did(database_url: str) -> None:
    user = await make_user()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO api_token (id, user_id, token_hash, name, expires_at, created_at, updated_at)"
            " VALUES (gen_random_uuid(), %s, 'x', 'old', now() - interval '1 day', now(), now())",
            (user.id,),
        )
    done = run_command(database_url)
    assert done.returncode == 0, done.stderr
    assert "tokens_deleted: 1" in done.stdout
    assert "bookings_pseudonymised: 0" in done.stdout


def run_command(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", "retention", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
