"""The resumable part of a run: RNG states and the checks a --resume file must pass.

Everything here is stored as tensors, ints, strings, lists and dicts, so a checkpoint with a
train_state still loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceptual_edge.errors import InputError
from perceptual_edge.train.checkpoint import Checkpoint, load_checkpoint

TRAIN_STATE_VERSION = 1


def rng_state(device: torch.device) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # legacy global numpy RNG
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_resume(path: Path, config: dict[str, Any], task: str) -> Checkpoint:
    """Our checkpoint, with a train_state, for exactly this network; else one clear line."""
    ckpt = load_checkpoint(path)  # refuses files that are not ours
    if ckpt.config != config:
        diffs = sorted(
            k for k in set(ckpt.config) | set(config) if ckpt.config.get(k) != config.get(k)
        )
        shown = ", ".join(f"{k}={ckpt.config.get(k)!r} (now {config.get(k)!r})" for k in diffs)
        raise InputError(f"--resume {path}: made for another network: {shown}")
    ts = ckpt.train_state
    if not isinstance(ts, dict) or "optimizer" not in ts or "sampler" not in ts:
        raise InputError(f"--resume {path}: has no training state to resume from")
    if ts.get("task") != task:
        raise InputError(f"--resume {path}: a `pe train {ts.get('task')}` run, not `{task}`")
    if int(ts.get("version", 0)) > TRAIN_STATE_VERSION:
        raise InputError(f"--resume {path}: training state is newer than this pe understands")
    return ckpt
