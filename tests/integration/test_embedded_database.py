"""The embedded PostgreSQL of `make run`: starts, serves the app's database, stops."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from app.lib.database import EmbeddedDatabase
from tests.conftest import one_at_a_time


@pytest.mark.slow
def test_embedded_database_starts_serves_and_stops() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="oh-embedded-")) / "postgres"
    with one_at_a_time("embedded-postgres"):
        url = EmbeddedDatabase.start(data_dir, database="office_hours")
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("office_hours",)
            assert conn.execute("SHOW server_version_num").fetchone()[0] >= "150000"
    finally:
        EmbeddedDatabase.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert not (data_dir / "postmaster.pid").exists()
