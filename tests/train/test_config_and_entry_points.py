"""TrainConfig's derived values, and the library entry points (train_style, train_sr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceptual_edge.train.config import TrainConfig


def test_config_defaults_and_paths(tmp_path: Path) -> None:
    cfg = TrainConfig(task="style", data=tmp_path, output=tmp_path / "wave.pth")
    assert cfg.size == 256 and cfg.content == "relu3_3"
    assert cfg.total_steps(steps_per_epoch=20_000) == 40_000
    assert cfg.log_path == tmp_path / "wave.log.jsonl"
    assert cfg.samples_dir == tmp_path / "wave.samples"
    sr = TrainConfig(task="sr", data=tmp_path, output=tmp_path / "sr.pth", epochs=1.5)
    assert sr.size == 288 and sr.content == "relu2_2"
    assert sr.total_steps(steps_per_epoch=10) == 15
    assert sr.network_options()["factor"] == 4


def test_library_entry_points_and_epochs(tiny_style: Path, tiny_data: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from perceptual_edge.errors import InputError
    from perceptual_edge.train.loop import train_sr, train_style

    notes: list[str] = []
    cfg = TrainConfig(
        task="style", data=tiny_data, output=tmp_path / "s.pth", style=tiny_style,
        image_size=32, batch_size=4, epochs=1, loss_net="random", device="cpu", amp=True,
        sample_every=0, log_every=1,
    )  # fmt: skip
    result = train_style(cfg, log=notes.append, progress=False)
    assert result.steps == result.total_steps == 2  # 8 images / batch 4, one epoch
    assert result.interrupted is None and result.output.is_file()
    # --amp on a CPU: bf16 autocast, native (AVX512_BF16/AMX) or emulated, said either way.
    assert any("bf16 autocast" in n for n in notes), notes
    ckpt = torch.load(result.output, map_location="cpu", weights_only=True)
    assert ckpt["train_state"]["precision"] == "bf16"
    assert ckpt["train_state"]["train_config"]["amp"] is True
    records = [json.loads(line) for line in result.log.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    with pytest.raises(InputError, match="task='sr'"):
        train_sr(cfg)
