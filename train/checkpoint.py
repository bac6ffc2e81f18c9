"""Checkpoints: plain dicts, written atomically, read with `torch.load(weights_only=True)`.

    {"format": 1, "spec": ModelSpec dict, "config": network config dict,
     "state_dict": {name: tensor}, "train_state": dict | None}

Nothing in a checkpoint is code: loading one never unpickles a class.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptual_edge.errors import InputError, first_line
from perceptual_edge.fsutil import atomic_path, check_input
from perceptual_edge.spec import ModelSpec
from perceptual_edge.train.networks import build_network

FORMAT = 1


@dataclass
class Checkpoint:
    spec: ModelSpec
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    train_state: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "spec": self.spec.to_dict(),
            "config": dict(self.config),
            "state_dict": self.state_dict,
            "train_state": self.train_state,
        }

    def build(self, eval_mode: bool = True) -> nn.Module:
        """The network with these weights (in eval mode unless asked otherwise)."""
        model = build_network(self.config)
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            msg = " ".join(line.strip() for line in first[:3])
            raise InputError(f"checkpoint weights do not fit its network config: {msg}") from None
        return model.eval() if eval_mode else model


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    buf = io.BytesIO()
    torch.save(ckpt.to_dict(), buf)
    with atomic_path(path, overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def _looks_like_pickle(path: Path) -> bool:
    """torch.save's legacy (pre-zip) format starts with a pickle protocol 2+ opcode."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def load_checkpoint_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """torch.load with weights_only=True and every failure turned into one clear line."""
    p = check_input(path, "a checkpoint file")
    if not zipfile.is_zipfile(p) and not _looks_like_pickle(p):
        raise InputError(f"{p}: not a readable PyTorch checkpoint (unrecognised file contents)")
    try:
        with warnings.catch_warnings():  # torch warns before refusing: the one line says it all
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
            raise InputError(
                f"{p}: refused: the file contains pickled code or objects, not plain tensors "
                "(checkpoints are loaded with weights_only=True)"
            ) from None
        raise InputError(f"{p}: not a PyTorch checkpoint ({first_line(e)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"{p}: not a readable PyTorch checkpoint ({first_line(e)})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{p}: not a checkpoint (expected a dict, found {type(obj).__name__})")
    return obj


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read one of our checkpoints; refuse anything else with a message that says what it is."""
    p = Path(path)
    obj = load_checkpoint_dict(p)
    if "format" not in obj or "state_dict" not in obj:
        hint = ""
        if any(k.endswith("conv2d.weight") for k in obj):
            hint = "; it looks like a pytorch/examples model: use `pe import pytorch-examples`"
        raise InputError(f"{p}: not a perceptual-edge checkpoint (no format/state_dict){hint}")
    fmt = obj["format"]
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise InputError(
            f"{p}: checkpoint format {fmt!r} is newer than this pe reads ({FORMAT}); "
            "upgrade perceptual-edge"
        )
    if not isinstance(obj.get("config"), dict) or not isinstance(obj.get("spec"), dict):
        raise InputError(f"{p}: checkpoint lacks its network config or model spec")
    return Checkpoint(
        spec=ModelSpec.from_dict(obj["spec"]),
        config=obj["config"],
        state_dict=obj["state_dict"],
        train_state=obj.get("train_state"),
        path=p,
    )


def load_model(path: str | os.PathLike[str]) -> tuple[nn.Module, ModelSpec]:
    """The network of a checkpoint in eval mode, and its spec."""
    ckpt = load_checkpoint(path)
    return ckpt.build(), ckpt.spec
