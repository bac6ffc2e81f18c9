"""Fixtures shared by every test package: shared data, tiny checkpoints and ONNX files."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def make_checkpoint(path: Path, network: str = "style", seed: int = 0, **options) -> Path:
    """A checkpoint of a real-architecture network with seeded random weights."""
    import torch

    from perceptual_edge.train import Checkpoint, build_network, network_config, save_checkpoint
    from perceptual_edge.train.networks import spec_for

    config = network_config(network, **options)
    torch.manual_seed(seed)
    model = build_network(config)
    # Non-trivial affine norm parameters, so tests notice a norm that is skipped or swapped.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    spec = spec_for(config, loss_net="random", loss_net_weights="random:seed=0")
    return save_checkpoint(Checkpoint(spec, config, model.state_dict()), path)


@pytest.fixture(scope="session")
def style_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "style.pth", "style")


@pytest.fixture(scope="session")
def sr4_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "sr4.pth", "sr", factor=4)


@pytest.fixture(scope="session")
def style_onnx(style_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perceptual_edge.export import onnx_from_checkpoint

    return onnx_from_checkpoint(style_ckpt, tmp_path_factory.mktemp("onnx") / "style.onnx")


@pytest.fixture(scope="session")
def sr4_onnx(sr4_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perceptual_edge.export import onnx_from_checkpoint

    return onnx_from_checkpoint(sr4_ckpt, tmp_path_factory.mktemp("onnx") / "sr4.onnx")
