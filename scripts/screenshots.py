"""Screenshots of the main pages on a phone (390 px) and a desktop (1280 px), for the docs: ``make screenshots``.

The script starts what it photographs, so every run starts alike::

    .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py --widths 390 --out /tmp/shots

1. a throwaway database is created on the PostgreSQL server (``--admin-url``; default ``$TEST_DATABASE_URL``, else
   the local server on 127.0.0.1:5432 with trust auth) and migrated (``app database upgrade``);
2. the demo data is loaded (``app demo``: professors ada, alan, grace; students student1..student10; password
   office-hours-demo) and ``app run`` serves it on a free loopback port;
3. Debian's chromium (``$CHROMIUM``, else /usr/bin/chromium; never a downloaded browser) signs in through the real
   /login page as student1 and as ada, and writes ``<page>-<width>.png`` into docs/screenshots/ (whole pages);
4. the app is stopped and the database dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from playwright.async_api import async_playwright
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_PASSWORD = "office-hours-demo"
STUDENT, PROFESSOR = "student1", "ada"
HEIGHT = {390: 844}  # a phone's screen; any other width gets 900
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@dataclass(frozen=True)
class Demo:
    professor_id: str
    week: str  # a day in the first week with the professor's slots


# -- the server ----------------------------------------------------------------------------------------------------


def default_admin_url() -> str:
    configured = os.environ.get("TEST_DATABASE_URL")
    return "postgresql://" + configured.split("://", 1)[1] if configured else LOCAL_SERVER


def with_database(admin_url: str, database: str) -> str:
    return urlsplit(admin_url)._replace(path=f"/{database}").geturl()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "app", *arguments]


def stop(process: subprocess.Popen[bytes]) -> None:
    """The app's whole process group (`app run` may spawn workers)."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base_url} did not answer /health within {timeout:.0f} s")


def demo_facts(database_url: str) -> Demo:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT u.id, min(s.start_time) FROM user_account u JOIN consultation_slot s ON s.professor_id = u.id"
            " WHERE u.username = %s GROUP BY u.id",
            (PROFESSOR,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"the demo data has no slots of {PROFESSOR}")
    return Demo(professor_id=str(row[0]), week=row[1].date().isoformat())


# -- the pages -----------------------------------------------------------------------------------------------------


async def ready(page: Any) -> None:
    """Streams connected ("● Live"), htmx requests answered and swaps settled."""
    if await page.locator("[sse-connect]").count():
        await page.locator("body[data-live='on']").wait_for()
    await page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


async def visit(page: Any, path: str) -> None:
    response = await page.goto(path)
    if response is None or response.status != 200:
        raise RuntimeError(f"{path} answered {response and response.status}")
    await ready(page)


async def grid(page: Any, demo: Demo, prefix: str = "") -> None:
    await visit(page, f"{prefix}/professors/{demo.professor_id}?week={demo.week}")
    await page.locator(".slot-cell").first.wait_for()


async def booking_dialog(page: Any, demo: Demo) -> None:
    await grid(page, demo)
    await page.locator(".slot-cell.is-free button").first.click()
    await page.locator("dialog[open]").wait_for()
    await ready(page)


async def dashboard(page: Any, demo: Demo) -> None:
    await visit(page, "/dashboard")
    await page.locator("#stats-panel .stat-cards").wait_for()
    await ready(page)


def plain(path: str) -> Callable[[Any, Demo], Awaitable[None]]:
    async def open_page(page: Any, demo: Demo) -> None:
        await visit(page, path)

    return open_page


async def admin_account(page: Any, demo: Demo) -> None:
    await visit(page, "/admin?q=grace")
    await page.get_by_role("link", name="grace").first.click()
    await ready(page)


async def embedded_grid(page: Any, demo: Demo) -> None:
    await grid(page, demo, prefix="/embed")


# name, who looks (None: signed out), how to get there
SHOTS: tuple[tuple[str, str | None, Callable[[Any, Demo], Awaitable[None]]], ...] = (
    ("home", None, plain("/")),
    ("login", None, plain("/login")),
    ("professors", STUDENT, plain("/professors")),
    ("grid", STUDENT, grid),
    ("booking-dialog", STUDENT, booking_dialog),
    ("bookings", STUDENT, plain("/bookings")),
    ("dashboard", PROFESSOR, dashboard),
    ("stats", PROFESSOR, plain("/dashboard/stats")),
    ("settings", PROFESSOR, plain("/settings")),
    ("embed-grid", STUDENT, embedded_grid),
    ("my-data", STUDENT, plain("/settings/data")),
    ("admin", PROFESSOR, plain("/admin")),  # the demo's ada is an administrator here (main() grants it)
    ("admin-account", PROFESSOR, admin_account),
    ("admin-audit", PROFESSOR, plain("/admin/audit")),
)


async def signed_in(browser: Any, base_url: str, username: str | None, width: int) -> Any:
    context = await browser.new_context(base_url=base_url, viewport={"width": width, "height": HEIGHT.get(width, 900)})
    if username is not None:
        page = await context.new_page()
        await page.goto("/login")
        await page.get_by_label("Username or email").fill(username)
        await page.get_by_label("Password").fill(DEMO_PASSWORD)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await page.wait_for_url(lambda url: "/login" not in url)
        await page.close()
    return context


async def photograph(base_url: str, demo: Demo, widths: list[int], out: Path, chromium: str) -> list[Path]:
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for width in widths:
                contexts = {who: await signed_in(browser, base_url, who, width) for who in (None, STUDENT, PROFESSOR)}
                for name, who, open_page in SHOTS:
                    page = await contexts[who].new_page()
                    await open_page(page, demo)
                    path = out / f"{name}-{width}.png"
                    await page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
                    await page.close()
                    written.append(path)
                    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
                for context in contexts.values():
                    await context.close()
        finally:
            await browser.close()
    return written


# -- the run -------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--admin-url",
        default=default_admin_url(),
        help="a PostgreSQL role that may create databases (default: $TEST_DATABASE_URL or the local server)",
    )
    parser.add_argument("--widths", type=int, nargs="+", default=[390, 1280], help="viewport widths (390 1280)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"), help="the browser")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    database = f"screenshots_{secrets.token_hex(4)}"
    database_url = with_database(args.admin_url, database)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="oh-screenshots-") as data_dir:
        env = {
            **os.environ,
            "APP_ENV": "test",  # no .env file read, no debug pages; professors may sign up (the demo's do)
            "SECRET_KEY": secrets.token_urlsafe(48),
            "APP_URL": base_url,
            "DATABASE_URL": database_url,
            "DATA_DIR": data_dir,
            "RUN_WORKER_IN_PROCESS": "false",  # no mail goes out
        }
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            for command in (("database", "upgrade", "--no-prompt"), ("demo",)):
                done = subprocess.run(app_command(*command), cwd=ROOT, env=env, capture_output=True, text=True)
                if done.returncode:
                    print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
                    raise RuntimeError(f"app {' '.join(command)} exited with {done.returncode}")
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("UPDATE user_account SET is_admin = true WHERE username = %s", (PROFESSOR,))
                # Something in the audit log: ada made grace an administrator, student1 changed their password.
                conn.execute(
                    "INSERT INTO audit_log (id, actor_id, action, target_type, target_id, details, ip, created_at,"
                    " updated_at) SELECT gen_random_uuid(), a.id, 'user.role_changed', 'user', g.id::text,"
                    ' \'{"from": "professor", "to": "admin"}\', \'203.0.113.7\', now(), now()'
                    " FROM user_account a, user_account g WHERE a.username = %s AND g.username = 'grace'",
                    (PROFESSOR,),
                )
                conn.execute(
                    "INSERT INTO audit_log (id, actor_id, action, target_type, target_id, details, ip, created_at,"
                    " updated_at) SELECT gen_random_uuid(), id, 'user.password_changed', 'user', id::text, '{}',"
                    " '2001:db8:85a3::8a2e:370:7334', now(), now() FROM user_account WHERE username = %s",
                    (STUDENT,),
                )
            log = Path(data_dir) / "app.log"
            with log.open("ab") as output:
                app = subprocess.Popen(
                    app_command("run", "--host", "127.0.0.1", "--port", str(port)),
                    cwd=ROOT,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                wait_until_up(base_url, app)
                written = asyncio.run(
                    photograph(base_url, demo_facts(database_url), args.widths, args.out, args.chromium)
                )
            except Exception:
                print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
                raise
            finally:
                stop(app)
        finally:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    print(f"{len(written)} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
