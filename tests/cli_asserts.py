"""Assertions shared by CLI tests (tests/ is on pytest's pythonpath, see pyproject.toml)."""

from __future__ import annotations


def assert_one_line_error(result, code: int | None = None, match: str = "") -> None:
    """A failed `pe` invocation: non-zero (or exactly `code`), no traceback, one `pe: error:`
    line on stderr containing `match`."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("pe: error:")]
    assert len(errors) == 1, result.stderr
    assert match in errors[0], errors[0]
