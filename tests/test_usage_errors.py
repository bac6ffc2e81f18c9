"""Usage errors (Click's own checks, before any of our code runs) are one `pe: error:` line with
a pointer to the command's --help, exit 2 — in process and through the installed entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error
from typer.testing import CliRunner

from perceptual_edge.cli import app

CASES = [
    (["nope"], ["No such command 'nope'", "see 'pe --help'"]),
    (["run"], ["Missing argument", "see 'pe run --help'"]),
    (["run", "m.onnx", "--bogus"], ["No such option: --bogus", "pe run --help"]),
    (["run", "m.onnx", "-i", "x.png", "--strength", "1.5"], ["--strength", "pe run --help"]),
    (["train", "style", "--iterations", "abc"], ["--iterations", "pe train style --help"]),
]


@pytest.mark.parametrize(("args", "needles"), CASES)
def test_usage_error_is_one_line(args: list[str], needles: list[str]) -> None:
    assert_one_line_error(CliRunner().invoke(app, args), 2, *needles)


def test_entry_point_too_and_help_still_works() -> None:
    pe = Path(sys.executable).with_name("pe")
    if not pe.is_file():
        pytest.skip("the pe entry point is not installed beside this Python")
    r = subprocess.run(
        [str(pe), "run", "m.onnx", "--bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "pe: error: No such option: --bogus (see 'pe run --help')"
    ]
    ok = CliRunner().invoke(app, ["run", "--help"])
    assert ok.exit_code == 0 and "Usage" in ok.stdout
    assert CliRunner().invoke(app, ["version"]).exit_code == 0
