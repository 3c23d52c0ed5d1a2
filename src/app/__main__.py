"""The `app` command: Litestar's CLI (run, database, workers...) plus the project's own groups."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("LITESTAR_APP", "app.asgi:create_app")
    # uvicorn would believe X-Forwarded-For from any local peer; the app decides whom to believe (TRUSTED_PROXIES).
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    from litestar.cli.main import litestar_group

    from app.cli import register_commands

    register_commands(litestar_group)
    sys.exit(litestar_group())


if __name__ == "__main__":
    main()
