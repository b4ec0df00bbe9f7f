#!/usr/bin/env python3
"""The README's screenshots of the web viewer, taken by Playwright driving Chromium on a demo
database: docs/screenshots/{sessions,session,search,analytics,audit}.png.

    .venv/bin/python scripts/screenshots.py [--db sessions.db] [--out docs/screenshots]

Without --db, a fresh demo database is written to a temporary directory (the demo is
seeded, so the pictures change only when the viewer or the demo does). Needs the `web`
extra, Playwright and /usr/bin/chromium (Debian's `chromium` package).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from session_store.web.server import Background

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def demo_database(directory: Path) -> str:
    """A fresh demo database `sessions.db` in `directory`, which becomes the working directory
    (the viewer shows the path it was given: the pictures say `sessions.db`)."""
    os.chdir(directory)
    subprocess.run([sys.executable, "-m", "session_store.cli", "--db", "sessions.db", "demo",
                    "--json", "--latency-ms", "2"], check=True, stdout=subprocess.DEVNULL,
                   cwd=directory)
    return "sessions.db"


def shoot(page: Page, base: str, out: Path) -> list[Path]:
    taken = []

    def save(name: str) -> None:
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        taken.append(path)

    page.goto(base + "/")
    page.wait_for_selector("a.session-link")
    save("sessions")
    page.locator("tr", has=page.locator("span.status.active")).first.locator(
        "a.session-link").click()
    page.wait_for_selector("#timeline li")
    page.wait_for_selector("#diff > *")
    for _ in range(3):
        page.click("#back")
    page.wait_for_timeout(300)
    save("session")
    page.goto(base + "/search?q=flight")
    page.wait_for_selector(".hit mark")
    save("search")
    page.goto(base + "/analytics")
    page.wait_for_selector("svg.chart")
    save("analytics")
    page.goto(base + "/audit")
    page.click("#run-verify")
    page.wait_for_selector("#report .big")
    save("audit")
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the database to show (default: a fresh demo)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or demo_database(Path(tmp))
        with Background(url) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            for path in shoot(page, server.url, out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
