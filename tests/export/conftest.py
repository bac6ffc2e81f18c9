"""Fixtures for the export tests: one `pe export --fp16 --triton` run shared by the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import TINY_SR, make_checkpoint
from typer.testing import CliRunner


@pytest.fixture(scope="session")
def make_ckpt() -> Callable[..., Path]:
    """make_checkpoint(path, network="style", seed=0, **options) -> Path."""
    return make_checkpoint


@dataclass(frozen=True)
class Exported:
    checkpoint: Path
    folder: Path
    repo: Path
    stdout: str

    @property
    def onnx(self) -> Path:
        return self.folder / f"{self.checkpoint.stem}.onnx"

    @property
    def fp16_onnx(self) -> Path:
        return self.folder / f"{self.checkpoint.stem}.fp16.onnx"

    @property
    def golden(self) -> Path:
        return self.folder / f"{self.checkpoint.stem}.golden.npz"


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def exported(style_ckpt: Path, tmp_path_factory: pytest.TempPathFactory, runner) -> Exported:
    """The issue's "done when": pe export wave.pth -o wave/ --fp16 --triton repo/."""
    from perceptual_edge.cli import app

    root = tmp_path_factory.mktemp("exported")
    folder, repo = root / "wave", root / "repo"
    result = runner.invoke(
        app, ["export", str(style_ckpt), "-o", str(folder), "--fp16", "--triton", str(repo)]
    )
    assert result.exit_code == 0, result.output
    return Exported(style_ckpt, folder, repo, result.stdout)


@pytest.fixture(scope="session")
def tiny_sr_onnx(make_ckpt, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perceptual_edge.export import onnx_from_checkpoint

    folder = tmp_path_factory.mktemp("tiny_sr")
    ckpt = make_ckpt(folder / "sr4.pth", "sr", factor=4, **TINY_SR)
    return onnx_from_checkpoint(ckpt, folder / "sr4.onnx")
