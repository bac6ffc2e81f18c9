"""tests/benchmarks/paper_figures.py, the command the README names for Fig. 5 and Table 1, end
to end at toy sizes: it trains with `pe train style --loss-net random`, runs `pe eval objective` and
writes Table 1. About 20 s on 2 cores (two subprocesses that import torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_paper_figures_script(tmp_path: Path):
    out = tmp_path / "figs"
    cmd = [
        sys.executable, str(ROOT / "tests" / "benchmarks" / "paper_figures.py"), "--out", str(out),
        "--steps", "2", "--train-size", "32", "--images", "2", "--sizes", "32",
        "--iterations", "3", "--table-sizes", "32", "--table-iterations", "2,4", "--measure", "2",
        "--device", "cpu",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "tiny_style.pth").is_file()
    assert (out / "fig5" / "objective.png").read_bytes().startswith(b"\x89PNG")
    fig5 = json.loads((out / "fig5" / "objective.json").read_text())
    assert fig5["loss_net"] == "random" and len(fig5["images"]) == 2
    table = json.loads((out / "table1.json").read_text())
    assert table["rows"][0]["gatys"]["4"]["extrapolated"] is True
    text = (out / "table1.txt").read_text()
    assert "extrapolated from 2 measured" in text and text in r.stdout
