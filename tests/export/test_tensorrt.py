"""TensorRT: profile parsing/validation, trtexec line, sidecar (here); engine builds (gpu)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.export.tensorrt import (
    Profile,
    default_profile,
    engine_from_onnx,
    engine_sidecar,
    make_profile,
    parse_shape,
    tensorrt_status,
)
from perceptual_edge.spec import sr_spec, style_spec

STYLE = style_spec()


def test_parse_shape() -> None:
    assert parse_shape("1x3x512x512") == (1, 3, 512, 512)
    assert parse_shape(" 2X3x64x128 ") == (2, 3, 64, 128)
    for bad in ("1x3x512", "1x3xAx4", "0x3x64x64", "", "1x3x-4x4"):
        with pytest.raises(InputError, match="NxCxHxW"):
            parse_shape(bad)


def test_default_profiles() -> None:
    p = default_profile(STYLE)
    assert p == Profile((1, 3, 64, 64), (1, 3, 512, 512), (1, 3, 2160, 3840))
    # SR: the same output sizes, so the input profile is scale times smaller.
    assert default_profile(sr_spec(4)).max == (1, 3, 540, 960)
    assert default_profile(sr_spec(8)).min == (1, 3, 8, 8)
    for spec in (STYLE, sr_spec(4), sr_spec(8)):
        assert make_profile(spec) == default_profile(spec)  # defaults are valid


def test_profile_with_batch_range() -> None:
    p = make_profile(STYLE, "1x3x64x64", "4x3x256x256", "8x3x1024x1024")
    assert (p.min[0], p.opt[0], p.max[0]) == (1, 4, 8)


@pytest.mark.parametrize(
    "mn,opt,mx,needle",
    [
        ("1x3x512x512", "1x3x256x256", None, "inconsistent profile"),
        (None, "1x3x512x512", "1x3x256x256", "inconsistent profile"),
        ("2x3x64x64", "1x3x512x512", None, "inconsistent profile"),
        ("1x3x66x64", None, None, "multiples of 4"),
        (None, None, "1x3x2160x3842", "multiples of 4"),
        ("1x1x64x64", None, None, "3 channels"),
        ("1x3x8x8", None, None, "at least 16"),
    ],
)
def test_profile_validation_errors(mn, opt, mx, needle) -> None:
    with pytest.raises(InputError, match=needle):
        make_profile(STYLE, mn, opt, mx)


def test_sr_profile_needs_no_multiple_of_4() -> None:
    p = make_profile(sr_spec(4), "1x3x17x17", "1x3x127x131", "1x3x255x255")
    assert p.opt == (1, 3, 127, 131)


def test_engine_sidecar_is_what_the_runtime_reads(tmp_path: Path) -> None:
    from perceptual_edge.runtime.trt_sidecar import read_sidecar

    # What export writes (a JSON file beside the engine) is what the runtime understands.
    gpu = {"name": "NVIDIA H100", "compute_capability": "9.0"}
    for profile, largest in [
        (make_profile(STYLE, "1x3x64x64", "2x3x256x256", "4x3x1024x1024"), (4, 3, 1024, 1024)),
        (default_profile(STYLE), (1, 3, 2160, 3840)),  # the default covers a 4K frame
    ]:
        side = engine_sidecar(STYLE, profile, "fp16", "10.13.0", gpu, "ab" * 32, 4096)
        (tmp_path / "w.engine.json").write_text(json.dumps(side))
        sc = read_sidecar(tmp_path / "w.engine")
        assert sc.profile_max == largest
    assert sc.spec == STYLE and sc.precision == "fp16"
    assert (sc.gpu_name, sc.compute_capability) == ("NVIDIA H100", "9.0")
    assert sc.tensorrt_version == "10.13.0" and sc.onnx_sha256 == "ab" * 32


def _have_trt() -> bool:
    return tensorrt_status()[0]


@pytest.mark.skipif(_have_trt(), reason="TensorRT is installed here")
def test_engine_from_onnx_without_tensorrt_says_why(style_onnx: Path, tmp_path: Path) -> None:
    ok, why = tensorrt_status()
    assert not ok and why
    with pytest.raises(UnavailableError, match="no TensorRT engine built"):
        engine_from_onnx(style_onnx, tmp_path / "s.engine", profile=default_profile(STYLE))
    assert not (tmp_path / "s.engine").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not _have_trt(), reason="needs TensorRT and an NVIDIA GPU")
def test_engine_build_sidecar_cache_and_parity(exported, tmp_path: Path) -> None:
    from perceptual_edge.export.verify import verify

    profile = make_profile(STYLE, "1x3x32x32", "1x3x256x256", "2x3x512x512")
    cache = tmp_path / "timing.cache"
    lines: list[str] = []
    engine = engine_from_onnx(
        exported.fp16_onnx,
        tmp_path / "w.fp16.engine",
        profile=profile,
        workspace_mib=1024,
        timing_cache=cache,
        progress=lines.append,
    )
    assert engine.stat().st_size > 0 and cache.stat().st_size > 0 and lines
    meta = json.loads((tmp_path / "w.fp16.engine.json").read_text())
    assert meta["precision"] == "fp16" and meta["profile"]["max"] == [2, 3, 512, 512]
    # A second build reuses (and keeps) the timing cache.
    engine_from_onnx(
        exported.fp16_onnx, tmp_path / "again.engine", profile=profile, timing_cache=cache
    )
    report = verify(exported.golden, engine, backend="tensorrt")
    assert report.passed, report.table()
