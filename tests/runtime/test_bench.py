import json

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


def test_sgemm_rate_is_positive():
    assert 0.1 < sgemm_gflops(n=256, repeats=2) < 1e6


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


def test_bench_session_matches_session_output(style_onnx):
    # bench times exactly what users run: the Session on a padded float batch.
    from perceptual_edge.runtime.bench import bench_session

    calls = []
    with Session(style_onnx) as s:
        res = bench_session(
            s, [(20, 20)], runs=1, warmup=0, reference=lambda b: calls.append(b.shape),
            count_flops=False, sgemm=1.0,
        )  # fmt: skip
    assert calls == [(1, 3, 20, 20)] and "gflops" not in res["results"][0]
    assert np.isfinite(res["results"][0]["speedup_vs_torch"])


def test_flops_of_an_engine_are_counted_on_the_onnx_beside_it(tmp_path):
    from perceptual_edge.runtime.bench import onnx_for

    (tmp_path / "wave.onnx").write_bytes(b"x")
    (tmp_path / "wave.fp16.engine").write_bytes(b"x")
    assert onnx_for(tmp_path / "wave.fp16.engine") == tmp_path / "wave.onnx"
    assert onnx_for(tmp_path / "wave.onnx") == tmp_path / "wave.onnx"
    assert onnx_for(tmp_path / "other.engine") is None
