"""Triton model repositories: layout, config.pbtxt content, and the text-format parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.export.triton import (
    TritonModel,
    check_config,
    config_text,
    parse_pbtxt,
    triton_model,
)
from perceptual_edge.spec import style_spec


def test_pe_export_wrote_an_onnx_model_repository(exported) -> None:
    folder = exported.repo / "style_onnx"
    assert (folder / "1" / "model.onnx").read_bytes() == exported.fp16_onnx.read_bytes()
    cfg = parse_pbtxt((folder / "config.pbtxt").read_text())
    assert cfg["name"] == ["style_onnx"] and cfg["platform"] == ["onnxruntime_onnx"]
    assert cfg["max_batch_size"][0] > 0
    (inp,), (out,) = cfg["input"], cfg["output"]
    assert inp["name"] == ["input"] and out["name"] == ["output"]
    assert inp["dims"] == [3, -1, -1] and out["dims"] == [3, -1, -1]
    assert inp["data_type"] == ["TYPE_FP32"]
    assert cfg["instance_group"][0]["count"] == [1]
    assert "max_queue_delay_microseconds" in cfg["dynamic_batching"][0]
    assert not (exported.repo / "style_plan").exists()  # no engine here


def test_plan_model_and_overwrite(tmp_path: Path) -> None:
    plan = tmp_path / "w.fp16.engine"
    plan.write_bytes(b"\x00plan bytes")
    spec = style_spec()
    folder = triton_model(plan, tmp_path / "repo", "w_plan", spec, max_batch_size=4, fp16_io=True)
    assert (folder / "1" / "model.plan").read_bytes() == plan.read_bytes()
    cfg = parse_pbtxt((folder / "config.pbtxt").read_text())
    assert cfg["platform"] == ["tensorrt_plan"] and cfg["max_batch_size"] == [4]
    assert cfg["instance_group"][0]["kind"] == ["KIND_GPU"]
    assert cfg["input"][0]["data_type"] == ["TYPE_FP16"]
    # No NAME.engine.json beside this plan: nothing to record but the warning.
    assert "parameters" not in cfg and "not recorded" in (folder / "README.md").read_text()
    with pytest.raises(OutputExistsError):
        triton_model(plan, tmp_path / "repo", "w_plan", spec)
    triton_model(plan, tmp_path / "repo", "w_plan", spec, overwrite=True)
    with pytest.raises(InputError, match=".onnx or TensorRT plans"):
        triton_model(tmp_path / "x.pth", tmp_path / "repo", "x", spec)


def test_plan_records_the_tensorrt_version_it_needs(tmp_path: Path) -> None:
    # Issue 9, case 9: Triton loads a plan only with the TensorRT version that built it.
    plan = tmp_path / "w.fp16.engine"
    plan.write_bytes(b"\x00plan bytes")
    side = {"tensorrt_version": "10.13.0.35",
            "gpu": {"name": "NVIDIA L4", "compute_capability": "8.9"}}  # fmt: skip
    (tmp_path / "w.fp16.engine.json").write_text(json.dumps(side))
    folder = triton_model(plan, tmp_path / "repo", "w_plan", style_spec())
    text = (folder / "config.pbtxt").read_text()
    (param,) = parse_pbtxt(text)["parameters"]
    assert param["key"] == ["tensorrt_version"]
    assert param["value"][0]["string_value"] == ["10.13.0.35"]
    readme = (folder / "README.md").read_text()
    assert "TensorRT 10.13.0.35" in readme and "NVIDIA L4" in readme and "8.9" in readme
    assert "TensorRT 10.13" in readme  # the Triton release to pick
    with pytest.raises(InputError, match="parameters"):  # the checker sees a missing record
        check_config(text.split("parameters")[0], _model_with(("tensorrt_version", "10.13")))


def _model_with(*parameters: tuple[str, str]) -> TritonModel:
    return TritonModel("w_plan", "tensorrt_plan", 8, "input", "output", "TYPE_FP32", "KIND_GPU",
                       parameters)  # fmt: skip


def test_parser_handles_the_text_format_subset() -> None:
    text = """
    # a comment
    name: "m"  platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "input" data_type: TYPE_FP32 dims: [ 3, -1, -1 ] } ]
    instance_group { count: 2 kind: KIND_GPU gpus: [0, 1] }
    instance_group { count: 1 kind: KIND_CPU }
    dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
    optimization { execution_accelerators { gpu_execution_accelerator : [ {
        name : "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }
    parameters: { key: "x" value: { string_value: "a \\"quoted\\" word" } }
    """
    cfg = parse_pbtxt(text)
    assert cfg["name"] == ["m"] and cfg["max_batch_size"] == [8]
    assert cfg["input"][0]["dims"] == [3, -1, -1]
    assert [g["count"] for g in cfg["instance_group"]] == [[2], [1]]
    assert cfg["instance_group"][0]["gpus"] == [0, 1]
    assert cfg["dynamic_batching"][0]["preferred_batch_size"] == [4, 8]
    acc = cfg["optimization"][0]["execution_accelerators"][0]["gpu_execution_accelerator"][0]
    assert acc["name"] == ["tensorrt"]
    assert cfg["parameters"][0]["value"][0]["string_value"] == ['a "quoted" word']


@pytest.mark.parametrize(
    "text,needle",
    [
        ('name: "m" input [ { name: "x" ', "expected"),
        ("name: }", "expected a value"),
        ('name "m"', "expected ':'"),
        ("name: 'm'", "unexpected text"),
        ("a { b: 1 } }", "unbalanced"),
        ("a: [1, 2", "expected a value"),
    ],
)
def test_parser_errors_are_one_line(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        parse_pbtxt(text)


def test_check_config_catches_a_wrong_field() -> None:
    model = TritonModel("m", "onnxruntime_onnx", 8, "input", "output", "TYPE_FP32", "KIND_AUTO")
    check_config(config_text(model), model)
    broken = config_text(model).replace("dims: [ 3, -1, -1 ]", "dims: [ 3, 256, 256 ]", 1)
    with pytest.raises(InputError, match="input.dims"):
        check_config(broken, model)
