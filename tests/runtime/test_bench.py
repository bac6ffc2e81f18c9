import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.cli.common import parse_sizes
from perceptual_edge.errors import InputError
from perceptual_edge.runtime import Session
from perceptual_edge.runtime.bench import count_conv_flops, sgemm_gflops

runner = CliRunner()


def style_flops(h: int, w: int) -> int:
    """The style net's convolutions by hand (9x9 32, 3x3 64 s2, 3x3 128 s2, 10 x 3x3 128,
    two nearest-upsample + 3x3 convs, 9x9 3): 2 x MACs."""
    macs = h * w * (81 * 3 * 32 + 9 * 64 * 32 + 81 * 32 * 3)  # stem, up2 conv, head
    macs += (h // 2) * (w // 2) * (9 * 32 * 64 + 9 * 128 * 64)  # down1, up1 conv
    macs += (h // 4) * (w // 4) * (9 * 64 * 128 + 10 * 9 * 128 * 128)  # down2, residual
    return 2 * macs


def test_parse_sizes():
    assert parse_sizes("256, 512x384,1920x1080") == [(256, 256), (384, 512), (1080, 1920)]
    for bad in ("", "abc", "0", "512x", "99999"):
        with pytest.raises(InputError):
            parse_sizes(bad)


def test_flop_count_matches_the_architecture(style_onnx):
    from perceptual_edge.spec import style_spec

    assert count_conv_flops(style_onnx, 64, 96, style_spec()) == style_flops(64, 96)
    assert count_conv_flops(style_onnx, 62, 95, style_spec()) == style_flops(64, 96)  # padded


def test_sgemm_rate_is_2n3_flops_over_the_best_time(monkeypatch):
    from perceptual_edge.runtime import bench

    ticks = iter([0.0, 0.5, 1.0, 1.25, 2.0, 2.75])  # three timed products: 0.5, 0.25, 0.75 s
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert sgemm_gflops(n=64, repeats=3) == pytest.approx(2 * 64**3 / 0.25 / 1e9)


def test_bench_json_with_torch(style_onnx, style_ckpt):
    r = runner.invoke(
        app,
        ["bench", str(style_onnx), "--sizes", "32,48x32", "--runs", "1", "--warmup", "0",
         "--vs-torch", str(style_ckpt), "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [(x["height"], x["width"]) for x in d["results"]] == [(32, 32), (32, 48)]
    for x in d["results"]:
        assert x["seconds"] > 0 and x["fps"] == pytest.approx(1 / x["seconds"])
        assert x["speedup_vs_torch"] > 0 and x["gflop"] == pytest.approx(
            style_flops(x["height"], x["width"]) / 1e9
        )
        assert 0 < x["sgemm_fraction"]
    assert d["backend"] == "onnxruntime:CPUExecutionProvider" and d["sgemm_gflops"] > 0


def test_bench_table_and_errors(sr4_onnx, style_ckpt, tmp_path):
    r = runner.invoke(app, ["bench", str(sr4_onnx), "--sizes", "16", "--runs", "1"])
    assert r.exit_code == 0, r.output
    assert "s/frame" in r.stdout and "16x16" in r.stdout and "GFLOP/s" in r.stdout
    r = runner.invoke(app, ["bench", str(tmp_path / "none.onnx")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = runner.invoke(app, ["bench", str(sr4_onnx), "--sizes", "huge"])
    assert r.exit_code == 2 and "bad size" in r.stderr
    r = runner.invoke(
        app, ["bench", str(sr4_onnx), "--sizes", "16", "--runs", "1", "--vs-torch", str(style_ckpt)]
    )
    assert r.exit_code == 2 and "style network" in r.stderr
    r = runner.invoke(app, ["bench", str(sr4_onnx), "--gatys"])
    assert r.exit_code == 2 and ".pth" in r.stderr


def test_bench_gives_torch_the_same_padded_input_as_the_session(style_onnx):
    # The reference times the same work: the exact padded float batch the Session runs.
    from perceptual_edge.runtime.bench import bench_session

    seen: dict[str, list[np.ndarray]] = {"session": [], "torch": []}
    with Session(style_onnx) as s:
        run_batch = s.run_batch

        def recording_run_batch(batch: np.ndarray) -> np.ndarray:
            seen["session"].append(batch.copy())
            return run_batch(batch)

        s.run_batch = recording_run_batch  # type: ignore[method-assign]
        res = bench_session(
            s, [(21, 30)], runs=1, warmup=0,
            reference=lambda b: seen["torch"].append(b.copy()), count_flops=False, sgemm=1.0,
        )  # fmt: skip
    (sess,), (ref,) = seen["session"], seen["torch"]
    assert sess.shape == (1, 3, 24, 32) and sess.dtype == np.float32  # padded to the multiple
    assert np.array_equal(sess, ref)
    row = res["results"][0]
    assert (row["height"], row["width"]) == (21, 30) and "gflops" not in row
    assert row["speedup_vs_torch"] == pytest.approx(row["torch_seconds"] / row["seconds"])


def test_flops_of_an_engine_are_counted_on_the_onnx_beside_it(tmp_path):
    from perceptual_edge.runtime.bench import onnx_for

    (tmp_path / "wave.onnx").write_bytes(b"x")
    (tmp_path / "wave.fp16.engine").write_bytes(b"x")
    assert onnx_for(tmp_path / "wave.fp16.engine") == tmp_path / "wave.onnx"
    assert onnx_for(tmp_path / "wave.onnx") == tmp_path / "wave.onnx"
    assert onnx_for(tmp_path / "other.engine") is None
