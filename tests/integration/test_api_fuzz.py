"""Schemathesis against the live app's OpenAPI document: no 5xx, and every answer as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import PASSWORD, make_slot, make_user

pytestmark = pytest.mark.slow

ST = Path(sys.executable).with_name("st")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


async def token_for(live_server: str, username: str) -> str:
    async with httpx.AsyncClient(base_url=live_server) as client:
        response = await client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    return str(response.json()["token"])


@pytest.mark.parametrize("role", ["professor", "student"])
async def test_every_api_operation_answers_as_documented(live_server: str, role: str, tmp_path: Path) -> None:
    professor = await make_user("professor")
    await make_slot(professor)
    user = professor if role == "professor" else await make_user()
    token = await token_for(live_server, user.username)
    result = subprocess.run(  # noqa: ASYNC221 - the app under test runs in its own process
        [
            str(ST),
            "run",
            f"{live_server}/schema/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "25",
            "--checks",
            CHECKS,
            # Logging out would revoke the token the rest of the run needs.
            "--exclude-path",
            "/api/v1/auth/logout",
            "--seed",
            "20261125",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    summary = result.stdout[-3000:]
    print(summary)
    assert result.returncode == 0, summary
