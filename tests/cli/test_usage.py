"""`session-store --help` is printed from session_store.cli.usage, written out: it must be
exactly what the parser prints at 80 columns, and printing it must not import argparse."""

from __future__ import annotations

import subprocess
import sys

import pytest

from session_store.cli.parser import build_parser
from session_store.cli.usage import HELP
from tests.kit import in_process


def test_the_written_out_help_is_the_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert build_parser(None, every=False).format_help() == HELP, (
        "the parser changed: run `python -m session_store.cli.usage` to rewrite the help")
    for flag in ("--help", "-h"):
        assert in_process(flag) == (0, HELP, "")


def test_help_starts_without_a_parser() -> None:
    probe = ("import sys; from session_store.cli.main import main; code = main(['--help']); "
             "sys.stdout.flush(); "
             "assert code == 0 and 'argparse' not in sys.modules, sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == HELP
