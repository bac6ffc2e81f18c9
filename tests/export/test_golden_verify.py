"""Golden files and `pe verify`: contents, numpy-only loading, tables, JSON, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from perceptual_edge.cli import app
from perceptual_edge.errors import InputError
from perceptual_edge.export.golden import (
    Golden,
    golden_inputs,
    load_golden,
    reference_outputs,
    save_golden,
)
from perceptual_edge.export.verify import THRESHOLDS_DB, capped_psnr, compare, verify


def test_golden_file_is_plain_numpy(exported) -> None:
    with np.load(exported.golden, allow_pickle=False) as z:
        count = int(z["count"])
        shapes = [z[f"input_{k}"].shape for k in range(count)]
        outs = [z[f"output_{k}"].shape for k in range(count)]
        spec = json.loads(str(z["spec"]))
    assert count >= 3 and spec["kind"] == "style"
    assert (1, 3, 257, 381) in shapes  # an odd size, not a multiple of 4
    assert any(s[0] > 1 for s in shapes)  # a batch
    assert outs == shapes  # style: same size out
    g = load_golden(exported.golden)
    # Natural-looking inputs (not noise): neighbouring pixels are strongly correlated.
    x = g.inputs[0][0, 0]
    assert np.corrcoef(x[:, :-1].ravel(), x[:, 1:].ravel())[0, 1] > 0.8


def test_golden_inputs_are_deterministic_and_outputs_follow_the_runtime_contract(
    style_ckpt: Path, exported
) -> None:
    from perceptual_edge.train.checkpoint import load_checkpoint

    g = load_golden(exported.golden)
    again = golden_inputs(g.spec)
    assert all(np.array_equal(a, b) for a, b in zip(g.inputs, again, strict=True))
    ckpt = load_checkpoint(style_ckpt)
    k = next(i for i, x in enumerate(g.inputs) if x.shape[2] % 4)  # an odd-sized case
    (y,) = reference_outputs(ckpt.build(), ckpt.spec, [g.inputs[k]])
    np.testing.assert_array_equal(y, g.outputs[k])


def test_pe_export_verified_both_onnx_files(exported) -> None:
    out = exported.stdout
    assert out.count("PASSED") == 2 and "FAIL" not in out
    assert "no TensorRT engine built" in out and "trtexec --onnx=" in out
    for word in ("max abs", "mean abs", "PSNR", "NaN/Inf", "onnxruntime", "tensorrt"):
        assert word in out


@pytest.mark.parametrize("which", ["onnx", "fp16_onnx"])
def test_pe_verify_json(exported, runner, which: str) -> None:
    artifact = getattr(exported, which)
    r = runner.invoke(app, ["verify", str(exported.golden), str(artifact), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["passed"] is True
    precision = "fp16" if which == "fp16_onnx" else "fp32"
    assert d["precision"] == precision and d["threshold_db"] == THRESHOLDS_DB[precision]
    assert d["min_psnr"] == min(c["psnr"] for c in d["cases"]) >= THRESHOLDS_DB[precision]
    assert set(d["versions"]) >= {"torch", "onnx", "onnxruntime", "tensorrt", "gpu"}
    # pe export wrote wave.segments/, so every golden input is checked in exact tiles too.
    assert (exported.folder / f"{exported.checkpoint.stem}.segments" / "plan.json").is_file()
    tiled = [c for c in d["cases"] if "exact tiles" in c["source"]]
    assert tiled and len(tiled) == len(d["cases"]) - len(tiled)


def test_pe_verify_with_a_checkpoint_reference(exported, runner) -> None:
    r = runner.invoke(app, ["verify", str(exported.checkpoint), str(exported.onnx)])
    assert r.exit_code == 0, r.output
    assert "PASSED" in r.stdout and "1x257x381" in r.stdout


def test_verify_from_a_golden_file_does_not_import_torch(exported) -> None:
    code = (
        "import sys\n"
        "from perceptual_edge.export.verify import verify\n"
        f"r = verify({str(exported.golden)!r}, {str(exported.fp16_onnx)!r})\n"
        "assert r.passed\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_pe_verify_fails_on_a_wrong_reference(exported, runner, tmp_path: Path) -> None:
    g = load_golden(exported.golden)
    rng = np.random.default_rng(0)
    noisy = [y + rng.normal(0, 2.0, y.shape).astype(np.float32) for y in g.outputs]  # ~42 dB
    bad = save_golden(Golden(g.spec, g.inputs, noisy), tmp_path / "noisy.golden.npz")
    r = runner.invoke(app, ["verify", str(bad), str(exported.onnx), "--json"])
    assert r.exit_code == 5
    d = json.loads(r.stdout)
    assert d["passed"] is False and 35 < d["min_psnr"] < 50
    # The same error is inside the FP16 threshold: the thresholds are per precision.
    assert verify(bad, exported.fp16_onnx).passed


def test_pe_verify_rejects_a_truncated_onnx(exported, runner, tmp_path: Path) -> None:
    data = exported.onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    r = runner.invoke(app, ["verify", str(exported.golden), str(cut)])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "cut.onnx" in r.stderr and "Traceback" not in r.output


def test_pe_verify_rejects_a_model_of_another_kind(exported, runner, tiny_sr_onnx) -> None:
    r = runner.invoke(app, ["verify", str(exported.golden), str(tiny_sr_onnx)])
    assert r.exit_code == 2 and "sr x4" in r.stderr and "style" in r.stderr


def test_load_golden_rejects_other_files(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(InputError, match="not a perceptual-edge golden file"):
        load_golden(p)
    q = tmp_path / "y.npz"
    q.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable golden file"):
        load_golden(q)


def test_compare_counts_nonfinite_and_psnr() -> None:
    ref = np.full((1, 3, 4, 4), 100.0, np.float32)
    assert capped_psnr(ref, ref) == 200.0
    out = ref.copy()
    out[0, 0, 0, 0] = np.nan
    c = compare(ref, out, 40.0)
    assert c.nonfinite == 1 and not c.passed
    c = compare(ref, ref + 1.0, 40.0)  # MSE 1 -> 48.13 dB
    assert c.passed and abs(c.psnr - 48.13) < 0.01 and c.max_abs == 1.0
