"""Fixtures shared by every test package: shared data, tiny checkpoints and ONNX files."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


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
