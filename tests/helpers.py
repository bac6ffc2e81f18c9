"""Fakes and builders shared by the tests (tests/ is on pytest's pythonpath: `import helpers`).

- `InvertBackend`: a stand-in network behind the runtime's Backend interface, 255 - x,
  nearest-upscaled for SR (exact under tiling), with an optional TensorRT-like profile limit;
  `invert_session` wraps it in a real `Session`.
- `make_checkpoint`, `TINY_SR`: real-architecture checkpoints with seeded random weights.
- `assert_one_line_error`: a failed `pe` invocation printed exactly one `pe: error:` line.
- `read_only_folder`: a folder the code under test must find not writable, also as root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.spec import ModelSpec, sr_spec, style_spec

TINY_SR = {"res_blocks": 1, "channels": 16}  # every layer type of the SR net, exported fast


class InvertBackend:
    """255 - x (x `spec.scale` by nearest neighbour for SR); records the shape of every call."""

    def __init__(self, spec: ModelSpec, max_hw: tuple[int, int] | None = None) -> None:
        self.name = "fake"
        self.precision = "fp32"
        self.spec = spec
        self.max_input_hw = max_hw
        self.min_input_hw: tuple[int, int] | None = None
        self.max_batch = 2 if max_hw else None
        self.calls: list[tuple[int, ...]] = []
        self.closed = False

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        assert batch.dtype == np.float32
        assert batch.shape[2] % self.spec.multiple == 0 and batch.shape[3] % self.spec.multiple == 0
        if self.max_input_hw is not None:
            assert batch.shape[2] <= self.max_input_hw[0] and batch.shape[3] <= self.max_input_hw[1]
            assert batch.shape[0] <= self.max_batch
        self.calls.append(batch.shape)
        s = self.spec.scale
        return (255.0 - batch).repeat(s, axis=2).repeat(s, axis=3)

    def close(self) -> None:
        self.closed = True


def invert_session(
    kind: str = "style", max_hw: tuple[int, int] | None = None, backend: Any = None
) -> tuple[Any, Any]:
    """(a real runtime Session, its backend): an InvertBackend of kind style or sr x4, or the
    given `backend` (e.g. an InvertBackend subclass that fails on purpose)."""
    from perceptual_edge.runtime.session import Session

    if backend is None:
        backend = InvertBackend(style_spec() if kind == "style" else sr_spec(4), max_hw)
    return Session.from_backend(backend, "fake.onnx"), backend


def make_checkpoint(path: Path, network: str = "style", seed: int = 0, **options: Any) -> Path:
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


def assert_one_line_error(result: Any, code: int | None = None, *needles: str) -> None:
    """A failed `pe` invocation: non-zero exit (exactly `code` when given), no traceback, and
    stderr is one `pe: error:` line that contains every needle."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pe: error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def read_only_folder(path: Path, monkeypatch: Any) -> Path:
    """Make `path` a folder that `os.access(..., W_OK)` reports not writable, for every user.

    The write bits are cleared (pytest's tmp_path cleanup copes with that). Root ignores them,
    so where the process can still write there, `os.access` is patched to answer as the kernel
    would for an ordinary user, for this folder only: the code's own check runs either way.
    """
    path.mkdir(exist_ok=True)
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        real_access = os.access
        target = path.resolve()

        def access(p: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
            if mode & os.W_OK and Path(p).resolve() == target:
                return False
            return real_access(p, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", access)
    return path


def loss_curve(log: Path) -> np.ndarray:
    """The total loss at each logged step of a `pe train` JSON-lines log."""
    import json

    lines = log.read_text().splitlines()
    return np.array([json.loads(line)["loss"] for line in lines if '"loss"' in line])


def smoothed(values: Any, k: float = 0.8) -> np.ndarray:
    """Exponential moving average of a loss curve, starting at its first value."""
    out, m = [], values[0]
    for x in values:
        m = k * m + (1 - k) * x
        out.append(m)
    return np.array(out)
