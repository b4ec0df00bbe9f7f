"""What the commands print is true, a closed pipe ends quietly, and at 80 columns no id or
number is cut (they are what users copy)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from session_store import StoreUnavailable, SyncSessionStore, open_store
from session_store.cli import render
from tests.conftest import require_pg
from tests.kit import COMMAND, SMALL_DEMO, _env, in_process, ok_json, on_terminal


def test_two_demos_writing_one_file_at_once_each_report_their_own(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    single = ok_json("demo", "--sessions", "1", "--turns", "1", db=url)["events_written"]
    demos = [subprocess.Popen([*COMMAND, "--db", url, *SMALL_DEMO, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for _ in range(2)]
    written = []
    for demo in demos:
        out, err = demo.communicate(timeout=120)
        assert demo.returncode == 0, err
        written.append(json.loads(out)["events_written"])
    with SyncSessionStore(url) as store:
        total = store.count_events()
    assert single + sum(written) == total  # nobody counts another's events
    assert all(count > 50 for count in written)


def test_small_fixes_in_process(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    code, out, _ = in_process("demo", "--sessions", "2", "--latency-ms", "0", db=url)
    assert code == 0 and "for 2 sessions of 2 users" in out
    sid = json.loads(in_process("sessions", "--json", db=url)[1])[0]["id"]
    whole = json.loads(in_process("replay", sid, "--json", db=url)[1])
    past = json.loads(in_process("replay", sid, "--to-version", "9999", "--json", db=url)[1])
    assert past["timeline"] == whole["timeline"] and len(whole["timeline"]) > 5
    assert render.ms(0.0000049) == "0.0049 ms" and render.ms(0.0) == "0.0 ms"
    assert render.ms(0.25) == "250.0 ms"
    assert in_process("--version")[0] == 0
    code, _, err = in_process("sessions", db="postgresql://postgres@127.0.0.1:notaport/x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "notaport" in err


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    url = str(tmp_path / "s.db")
    in_process(*SMALL_DEMO, db=url)
    sid = json.loads(in_process("sessions", "--json", db=url)[1])[0]["id"]
    for args in (("export", sid), ("replay", sid), ("show", sid)):
        reader = subprocess.Popen([*COMMAND, "--db", url, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=_env())
        assert reader.stdout is not None
        reader.stdout.close()  # the reader is gone before the command writes a byte
        _, err = reader.communicate(timeout=60)
        assert (reader.returncode, err) == (0, b""), args


async def test_databases_that_cannot_be_opened_raise_store_unavailable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all " * 100)
    urls = [str(junk)]
    server = require_pg()
    host = server.split("@", 1)[1]
    urls += [f"{server}/no_such_database_here",
             f"postgresql://no_such_role_here:secret@{host}/postgres"]
    for url in urls:
        with pytest.raises(StoreUnavailable) as raised:
            async with open_store(url):
                pass
        message = str(raised.value)
        assert "asyncpg" not in message and "secret" not in message, message
        assert url.split("://")[-1].split("@")[-1] in message, message


# --- 80 columns --------------------------------------------------------------------------

def _whole(values: list[str], text: str) -> None:
    for value in values:
        assert re.search(rf"(?<![\w.,/-]){re.escape(value)}(?![\w.,-])", text), (value, text)


def test_at_80_columns_no_id_or_number_is_cut(demo_url: str) -> None:
    rows: list[dict[str, Any]] = json.loads(in_process("sessions", "--json", db=demo_url)[1])
    code, listing, _ = in_process("sessions", db=demo_url, width=80)
    assert code == 0
    _whole([r["id"] for r in rows] + [str(r["version"]) for r in rows], listing)
    chosen = rows[-1]["id"]
    replayed = json.loads(in_process("replay", chosen, "--json", db=demo_url)[1])
    code, timeline, _ = in_process("replay", chosen, db=demo_url, width=80)
    assert code == 0 and f"session-store show {chosen}" in timeline  # the full view
    _whole([chosen] + [str(t["version"]) for t in replayed["timeline"]]
           + [f"{t['tokens_in']:,}/{t['tokens_out']:,}" for t in replayed["timeline"]
              if "tokens_in" in t], timeline)
    for by in ("app", "user", "session"):
        figures = json.loads(in_process("analytics", "--by", by, "--json", db=demo_url)[1])
        code, table, _ = in_process("analytics", "--by", by, db=demo_url, width=80)
        assert code == 0
        _whole([f"{r['tokens_in']:,}" for r in figures["rows"]]
               + [f"{r['messages']:,}" for r in figures["rows"]]
               + [r.get("session_id") or r.get("user_id") or r["app_name"]
                  for r in figures["rows"]], table)
    code, shown, _ = in_process("show", chosen, "--format", "text", db=demo_url, width=80)
    assert code == 0
    _whole([chosen], shown)
    for text in (listing, timeline, table):
        assert max(len(line) for line in text.splitlines()) <= 80, text
    code, wide, _ = in_process("sessions", "--wide", db=demo_url, width=80)
    assert "tags" in wide and "demo" in wide


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_at_160_columns_on_a_terminal_in_colour(demo_url: str) -> None:
    rows: list[dict[str, Any]] = json.loads(in_process("sessions", "--json", db=demo_url)[1])
    chosen = rows[-1]["id"]
    replayed = json.loads(in_process("replay", chosen, "--json", db=demo_url)[1])
    figures = json.loads(in_process("analytics", "--by", "session", "--json", db=demo_url)[1])
    expected = {
        ("sessions",): [r["id"] for r in rows] + [r["user_id"] for r in rows],
        ("replay", chosen): [chosen] + [f"{t['tokens_in']:,}/{t['tokens_out']:,}"
                                        for t in replayed["timeline"] if "tokens_in" in t],
        ("analytics", "--by", "session"): [r["session_id"] for r in figures["rows"]]
                                          + [f"{r['tokens_in']:,}" for r in figures["rows"]],
        ("show", chosen): [chosen, rows[-1]["user_id"], rows[-1]["app_name"]],
    }
    for args, values in expected.items():
        raw = on_terminal(*args, db=demo_url, columns=160)
        assert _ANSI.search(raw), (args, raw[:500])  # colour on a terminal
        text = _ANSI.sub("", raw).replace("\r\n", "\n")
        _whole(values, text)
        assert max(len(line) for line in text.splitlines()) <= 160, (args, text)
