"""The README never lies: every shell or Python block marked `<!-- readme-test -->` is run, in
order, in one scratch folder, with this environment's `pe` and `python` on PATH (Polygraphy's
test_examples idea).

Paths to `../shared/data` are pointed at the shared data beside the checkout; blocks that need it
are skipped with the reason when it is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- readme-test -->"


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every marked block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = re.compile(re.escape(MARK) + r"\s*```(sh|bash|console|python)\n(.*?)```", re.S)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(text)]


def test_readme_has_tested_examples():
    languages = [language for language, _ in readme_blocks()]
    assert len(languages) >= 4 and "python" in languages


def test_readme_examples_run(tmp_path: Path, shared_data: Path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PE_DEBUG"] = "1"  # a failing example should show why
    (tmp_path / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    for i, (language, block) in enumerate(readme_blocks()):
        if language == "python":
            cmd = [sys.executable, "-c", block]
        else:
            cmd = ["bash", "-c", "set -euo pipefail\n" + block]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (
            f"README example {i + 1} failed (exit {done.returncode}):\n{block}\n"
            f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
        )
