"""`torchrun --nproc-per-node 2` (gloo, CPU) trains like one process with twice the batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

STEPS = 3


def _args(style: Path, data: Path, out: Path, batch: int) -> list[str]:
    return [
        "train", "style", "--style", str(style), "--data", str(data), "-o", str(out),
        "--image-size", "32", "--batch-size", str(batch), "--iterations", str(STEPS),
        "--loss-net", "random", "--sample-every", str(STEPS), "--log-every", "1",
        "--device", "cpu", "-q",
        # float32: this compares DDP with one process, and bf16 rounding (which Adam amplifies
        # over steps) would blur the comparison on CPUs where mixed precision is the default.
        "--no-amp",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"  # what torchrun sets per worker; the single run matches it
    return env


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_torchrun_two_processes_match_one_process(
    tiny_style: Path, tiny_data: Path, tmp_path: Path
) -> None:
    ddp_out, one_out = tmp_path / "ddp.pth", tmp_path / "one.pth"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2", "-m", "perceptual_edge"]  # fmt: skip
    r = subprocess.run(
        [*torchrun, *_args(tiny_style, tiny_data, ddp_out, 1)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("wrote") == 1, r.stdout  # only rank 0 reports and writes
    r = subprocess.run(
        [sys.executable, "-m", "perceptual_edge", *_args(tiny_style, tiny_data, one_out, 2)],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]

    # Rank 0 wrote exactly one checkpoint, log and sample set; no stray temporary files.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ddp.log.jsonl", "ddp.pth", "ddp.samples", "one.log.jsonl", "one.pth",
                     "one.samples"]  # fmt: skip
    ddp = torch.load(ddp_out, map_location="cpu", weights_only=True)
    one = torch.load(one_out, map_location="cpu", weights_only=True)
    assert ddp["train_state"]["world_size"] == 2
    assert ddp["train_state"]["sampler"] == one["train_state"]["sampler"]
    # Same images per step and averaged gradients: step 1 (same starting weights) has the
    # same loss up to float rounding, and the later steps stay close.
    ld, lo = _log(tmp_path / "ddp.log.jsonl"), _log(tmp_path / "one.log.jsonl")
    assert [x["step"] for x in ld] == [1, 2, 3]
    assert ld[0]["loss"] == pytest.approx(lo[0]["loss"], rel=1e-5)
    for a, b in zip(ld, lo, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-2)
    # The trained networks agree on an image (a conv bias before instance norm has no effect
    # on the output, and Adam amplifies its rounding noise, so compare outputs, not weights).
    from perceptual_edge.train import build_network

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 255
    outs = []
    for d in (ddp, one):
        net = build_network(d["config"])
        net.load_state_dict(d["state_dict"])
        with torch.no_grad():
            outs.append(net.eval()(x))
    torch.manual_seed(0)  # the run's --seed: its starting weights
    init = build_network(one["config"]).eval()
    with torch.no_grad():
        moved = (outs[1] - init(x)).abs().mean().item()
    diff = (outs[0] - outs[1]).abs().mean().item()
    assert moved > 0.05 and diff < moved / 20, (diff, moved)
