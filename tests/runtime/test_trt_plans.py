"""TensorRT plans that `pe export` did not write (no NAME.engine.json): the contract from the
ONNX file beside them or from --spec, the rest from the engine (issue 9, case 1); against the
fakes in tests/trt_fakes.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_one_line_error
from trt_fakes import write_engine

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.image import save_image
from perceptual_edge.runtime import Session
from perceptual_edge.spec import sr_spec


def test_a_plan_without_sidecar_takes_its_contract_from_the_onnx_beside_it(
    tmp_path, fakes, style_onnx, caplog
):
    # Issue 9, case 1: an engine from the printed trtexec command has no NAME.engine.json.
    import logging
    import shutil

    trt, cuda = fakes(scale=1)
    engine = write_engine(tmp_path)
    (tmp_path / "model.fp16.engine.json").unlink()
    with pytest.raises(InputError, match="--spec"):
        Session(engine)  # nothing to take the contract from: says what to pass
    shutil.copyfile(style_onnx, tmp_path / "model.onnx")  # w.fp16.engine -> w.fp16.onnx, w.onnx
    caplog.set_level(logging.WARNING, logger="perceptual_edge.runtime")
    with Session(engine) as s:
        assert s.spec.kind == "style" and s.backend_name == "tensorrt:fp32:fake-cuda"
        assert s.max_input_hw == (64, 96)  # the profile comes from the engine itself
        img = np.random.default_rng(5).integers(0, 256, (20, 30, 3), dtype=np.uint8)
        np.testing.assert_array_equal(s.run(img), 255 - img)
    assert "no sidecar" in caplog.text and "model.onnx" in caplog.text
    assert "not checked" in caplog.text  # what was assumed is said


def test_a_plan_without_sidecar_with_an_explicit_spec(tmp_path, fakes, style_onnx):
    trt, cuda = fakes(scale=4)
    plan = tmp_path / "elsewhere.trt"
    plan.write_bytes(b"PLAN")
    spec_json = tmp_path / "spec.json"
    spec_json.write_text(json.dumps({"spec": sr_spec(4).to_dict()}))
    with Session(plan, spec=spec_json) as s:
        assert s.spec.scale == 4 and s.precision == "unknown"
    # A whole sidecar given as the spec is checked like one beside the plan.
    (tmp_path / "x").mkdir()
    side = json.loads(write_engine(tmp_path / "x").with_suffix(".engine.json").read_text())
    side["tensorrt_version"] = "10.3.0"
    (tmp_path / "old.json").write_text(json.dumps(side))
    with pytest.raises(UnavailableError, match="built with TensorRT 10.3.0"):
        Session(plan, spec=tmp_path / "old.json").close()
    with pytest.raises(InputError, match="missing.onnx"):
        Session(plan, spec=tmp_path / "missing.onnx")
    corrupt = tmp_path / "bad.trt"
    corrupt.write_bytes(b"not a plan")
    with pytest.raises(InputError, match="another TensorRT version"):
        Session(corrupt, spec=spec_json)


def test_pe_run_takes_spec_and_allow_other_gpu_for_plans_only(tmp_path, style_onnx):
    from typer.testing import CliRunner

    from perceptual_edge.cli import app

    img = tmp_path / "a.png"
    save_image(np.zeros((8, 8, 3), np.uint8), img)
    r = CliRunner().invoke(app, ["run", str(style_onnx), "-i", str(img), "--spec", str(img)])
    assert_one_line_error(r, 2, "--spec", "TensorRT plans")
    r = CliRunner().invoke(app, ["run", str(style_onnx), "-i", str(img), "--allow-other-gpu"])
    assert_one_line_error(r, 2, "--allow-other-gpu")
