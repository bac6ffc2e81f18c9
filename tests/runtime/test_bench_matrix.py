"""`pe bench --backends ... --precision ...`: every combination side by side, peaks per precision,
and the combinations this machine cannot run listed with the reason."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.runtime import peaks


@pytest.fixture(autouse=True)
def small_peaks(monkeypatch):
    monkeypatch.setattr(peaks, "PEAK_N", 256)  # the rate of a small product: fast, still real


def test_matrix_json(style_onnx):
    r = CliRunner().invoke(
        app, ["bench", str(style_onnx), "--backends", "onnxruntime,openvino",
              "--precision", "fp32,bf16,int8", "--sizes", "64", "--runs", "1", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    combos = {(x["backend"], x["precision"]) for x in d["results"]}
    assert ("onnxruntime", "fp32") in combos
    skipped = {(s["backend"], s["precision"]): s["reason"] for s in d["skipped"]}
    assert "OpenVINO" in skipped[("onnxruntime", "bf16")]
    assert "int8" in skipped[("onnxruntime", "int8")]  # no style.int8.onnx beside it
    assert len(combos) + len(skipped) == 6
    for row in d["results"]:
        for key in ("height", "width", "seconds", "fps", "gflops", "peak_fraction"):
            assert row[key] is not None, key
        assert row["peak_fraction"] > 0.0
    assert d["peaks"]["fp32"]["peak"] > 0


def test_openvino_int8_peak_where_installed():
    pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
    rate = peaks.openvino_matmul_gflops("int8", n=256, repeats=2)
    assert rate is not None and rate > 0.1
