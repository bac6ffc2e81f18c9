"""Tiny training inputs shared by the train tests: a few small images and a style image."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perceptual_edge.samples import write_sample_dataset

    folder = tmp_path_factory.mktemp("tiny_data")
    write_sample_dataset(folder, count=8, height=48, width=48)
    return folder


@pytest.fixture(scope="session")
def tiny_style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perceptual_edge.image import save_image
    from perceptual_edge.samples import style_image

    path = tmp_path_factory.mktemp("style") / "style.png"
    save_image(style_image(48, 64), path)
    return path
