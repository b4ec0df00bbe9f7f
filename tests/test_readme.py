"""Every Python example in README.md runs, so the README cannot drift from the code;
every `session-store ...` line in its shell examples parses with the real CLI parser, and
every link to a file points at one in this repository."""

from __future__ import annotations

import asyncio
import re
import shlex
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from session_store.cli.parser import build_parser
from tests.conftest import require_pg

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(README.read_text()) if lang == language]


def test_the_readme_has_examples() -> None:
    assert len(blocks("python")) >= 2
    assert any("SyncSessionStore" in block for block in blocks("python"))


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SESSION_STORE_URL", raising=False)
    block = blocks("python")[index]
    code = compile(block, f"README.md python block {index + 1}", "exec")
    with _pg_url_for(block, monkeypatch):
        exec(code, {"__name__": "__readme__"})  # noqa: S102 - running our own documentation
    assert capsys.readouterr().out.strip(), "examples print what they show"


@contextmanager
def _pg_url_for(block: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A block that runs on PostgreSQL when $SESSION_STORE_PG_URL is set gets a fresh
    database there (skipped as the PostgreSQL tests are when no server is found)."""
    monkeypatch.delenv("SESSION_STORE_PG_URL", raising=False)
    if "SESSION_STORE_PG_URL" not in block:
        yield
        return
    server = require_pg()
    name = f"ss_readme_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str, database: str = "postgres") -> object:
        conn = await asyncpg.connect(f"{server}/{database}")
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    monkeypatch.setenv("SESSION_STORE_PG_URL", f"{server}/{name}")
    try:
        yield
        assert asyncio.run(admin("SELECT count(*) FROM ss_events", name)), "it used PostgreSQL"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_cli_examples_parse() -> None:
    parser = build_parser()
    lines = [line.split("#", 1)[0].strip() for block in blocks("bash")
             for line in block.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("session-store ")
                and line != "session-store --version"]  # parsing it prints and exits
    assert len(commands) >= 8
    for argv in commands:
        parser.parse_args(argv)


def test_file_links_stay_inside_the_repository() -> None:
    links = [link for link in _LINK.findall(README.read_text()) if "://" not in link]
    assert {"docs/API.md", "docs/DESIGN.md"} <= set(links)
    root = README.parent.resolve()
    for link in links:
        target = (README.parent / link).resolve()
        assert target.is_relative_to(root) and target.exists(), link
