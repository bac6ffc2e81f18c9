"""The GPU acceptance command (tests/gpu/acceptance.py) runs here too, without a GPU: the CPU
steps pass and every GPU step says why it was skipped, so the command cannot rot unnoticed
between the rare sessions that have a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU_STEPS = ("trtexec", "backends", "video", "gpu_fp16_peak", "bench", "torch_cuda", "train_speed",
             "cuda_memory")  # fmt: skip


def test_acceptance_runs_and_explains_every_skip(tmp_path):
    out = tmp_path / "report.json"
    cmd = [sys.executable, str(ROOT / "tests" / "gpu" / "acceptance.py"), "--json", str(out)]
    proc = subprocess.run(
        [*cmd, "--work", str(tmp_path / "work"), "--no-int8"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    steps = report["steps"]
    assert list(steps) == ["environment", "export", *GPU_STEPS]
    assert steps["environment"]["status"] == "ok"
    export = steps["export"]
    assert export["status"] == "ok" and export["passed"], export
    assert export["artifacts"] == ["style.onnx", "style.fp16.onnx"]
    assert "trtexec" in export["trtexec_command"] and "--noTF32" not in export["trtexec_command"]
    for name in GPU_STEPS:  # no GPU, no TensorRT here: skipped, each with its reason
        assert steps[name]["status"] == "skipped", (name, steps[name])
        assert len(steps[name]["reason"]) > 10
    assert report["summary"] == {"ok": 2, "failed": 0, "skipped": len(GPU_STEPS)}
    assert "[skipped] bench" in proc.stderr
