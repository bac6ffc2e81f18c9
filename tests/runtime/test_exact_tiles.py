"""Exact tiles (runtime/exact_tiles.py, export/segments.py): the segment program against the
whole-image network on small inputs, for every network variant, several tile sizes (odd ones and
one larger than the image), odd image sizes and batch > 1; both activation stores; and the
Session on ONNX Runtime, OpenVINO and a fixed-profile TensorRT engine (the fake)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_checkpoint

from perceptual_edge.runtime import Session
from perceptual_edge.runtime.exact_tiles import (
    SegmentProgram,
    ort_conv_opener,
    run_exact,
    segments_for,
    source_indices,
)

torch = pytest.importorskip("torch")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-20)))


def _random_net(kind: str, **options):
    from perceptual_edge.train import build_network, network_config

    torch.manual_seed(1)
    net = build_network(network_config(kind, **options)).eval()
    with torch.no_grad():  # affine and running statistics away from their identity defaults
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d | torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
    return net


def _program(tmp_path, net, kind: str, scale: int) -> SegmentProgram:
    from perceptual_edge.export.segments import write_segments
    from perceptual_edge.spec import ModelSpec

    spec = ModelSpec(kind=kind, scale=scale, multiple=4 if kind == "style" else 1)
    folder = write_segments(net, spec, tmp_path / "m.segments")
    return SegmentProgram(folder, ort_conv_opener())


VARIANTS = [
    ("style", {}),
    ("style", {"norm": "batch"}),
    ("style", {"upsample": "deconv"}),
    ("sr", {"factor": 4}),
    ("sr", {"factor": 8}),
]


@pytest.mark.parametrize("kind,options", VARIANTS, ids=lambda v: str(v))
def test_segment_program_equals_the_whole_network(tmp_path, kind, options):
    net = _random_net(kind, **options)
    prog = _program(tmp_path, net, kind, options.get("factor", 1))
    h, w = (44, 68) if kind == "style" else (19, 27)  # odd sizes for SR (multiple 1)
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ref = net(x).numpy()
    for tile in (16, 23, 1024):  # several tiles per side, an odd tile, one tile for all
        got = run_exact(prog, x.numpy(), tile)
        # Measured 126-135 dB (float rounding); tiles that saw the wrong statistics or context
        # measure 17-33 dB.
        assert psnr(got, ref) > 100, (tile, psnr(got, ref))


def test_file_store_gives_the_same_result(tmp_path, monkeypatch):
    net = _random_net("style")
    prog = _program(tmp_path, net, "style", 1)
    x = np.random.default_rng(2).uniform(0, 255, (1, 3, 40, 52)).astype(np.float32)
    in_memory = run_exact(prog, x, 16)
    monkeypatch.setenv("PE_TILE_MEMORY_MB", "0")  # every activation in a temporary file
    monkeypatch.setenv("PE_TILE_TMPDIR", str(tmp_path))
    np.testing.assert_array_equal(run_exact(prog, x, 16), in_memory)
    assert [p for p in tmp_path.iterdir() if p.name.startswith("pe-tiles-")] == []


@pytest.mark.parametrize("up,stride", [(None, 1), (None, 2), ("nearest", 1), ("zeros", 1)])
def test_source_indices_match_padding_by_numpy(up, stride):
    length, k = 11, 3 if stride == 2 else 9
    x = np.arange(length, dtype=np.float64) + 1
    full = x
    if up == "nearest":
        full = np.repeat(x, 2)
    elif up == "zeros":
        full = np.zeros(2 * length)
        full[::2] = x
    pad = k // 2
    mode = "constant" if up == "zeros" else "reflect"
    padded = np.pad(full, pad, mode=mode)
    n_out = -(-len(full) // stride)
    for j0, j1 in [(0, n_out), (0, 3), (2, 5), (n_out - 2, n_out)]:
        idx, real = source_indices(j0, j1, length, k, stride, up)
        got = x[idx] * (real if real is not None else 1)
        want = padded[stride * j0 : stride * (j1 - 1) + k]
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ through the Session


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from perceptual_edge.export import onnx_from_checkpoint
    from perceptual_edge.export.segments import write_segments
    from perceptual_edge.train import load_model

    folder = tmp_path_factory.mktemp("exact")
    ckpt = make_checkpoint(folder / "wave.pth", "style")
    onnx = onnx_from_checkpoint(ckpt, folder / "wave.onnx")
    model, spec = load_model(ckpt)
    write_segments(model, spec, folder / "wave.segments")
    return onnx


def test_session_tiles_exactly_on_onnxruntime(exported):
    img = np.random.default_rng(3).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    with Session(exported) as s:
        whole = s.run(img)
        tiled = s.run(img, tile=32)
        assert s.last_run_tiled and s.last_run_exact
        batch = img.transpose(2, 0, 1)[None].astype(np.float32).repeat(2, axis=0)
        y_whole, y_tiled = s.run_batch(batch), s.run_batch(batch, tile=24)
    assert psnr(tiled, whole) > 50 and np.abs(tiled.astype(int) - whole).max() <= 1
    assert psnr(y_tiled, y_whole) > 90


def test_without_segments_tiles_are_blended_with_a_warning(tmp_path, exported):
    import shutil

    bare = tmp_path / "bare.onnx"
    shutil.copy(exported, bare)
    assert segments_for(bare) is None and segments_for(exported) is not None
    img = np.zeros((40, 40, 3), np.uint8)
    with Session(bare) as s, pytest.warns(RuntimeWarning, match="no bare.segments/"):
        s.run(img, tile=16)
        assert s.last_run_tiled and not s.last_run_exact


def test_session_tiles_exactly_on_openvino(exported):
    pytest.importorskip("openvino")
    img = np.random.default_rng(4).integers(0, 256, (48, 60, 3), dtype=np.uint8)
    with Session(exported, backend="openvino", precision="fp32") as s:
        whole, tiled = s.run(img), s.run(img, tile=16)
        assert s.last_run_exact
    assert psnr(tiled, whole) > 50


def test_fixed_profile_engine_runs_past_its_profile_exactly(tmp_path, fakes, exported):
    # The fake engine computes 255 - x (tests/trt_fakes.py) and accepts at most 64x96; with the
    # segment program beside it, an input past the profile runs through the program's graphs
    # (on ONNX Runtime, as on a machine whose onnxruntime has no CUDA provider), so the result
    # is the real network's whole-image output, not tiles of the engine's.
    import shutil

    from trt_fakes import write_engine

    fakes(scale=1)
    engine = write_engine(tmp_path)
    shutil.copytree(exported.with_name("wave.segments"), tmp_path / "model.segments")
    img = np.random.default_rng(5).integers(0, 256, (150, 130, 3), dtype=np.uint8)
    with Session(exported) as ref:
        whole = ref.run(img)
    with Session(engine) as s, pytest.warns(RuntimeWarning, match="profile"):
        got = s.run(img)
        assert s.last_run_tiled and s.last_run_exact
    assert psnr(got, whole) > 50
