"""Import a pytorch/examples fast_neural_style state dict as a perceptual-edge checkpoint.

Those models (candy, mosaic, rain_princess, udnie, ...) are our style network with instance
norm, nearest-neighbour upsampling followed by a convolution, and a raw last convolution that
is clamped to 0..255 (see ../shared/reference/pytorch-examples-checkpoints.md). Only the
module names differ; the table below maps theirs to ours. Stale InstanceNorm running
statistics that older PyTorch versions saved are dropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import check_output

RES_BLOCKS = 5
# Their module prefix -> ours (train/style_net.py, train/layers.py).
PREFIXES: dict[str, str] = {
    "conv1.conv2d": "stem.conv.conv",
    "in1": "stem.norm",
    "conv2.conv2d": "down1.conv.conv",
    "in2": "down1.norm",
    "conv3.conv2d": "down2.conv.conv",
    "in3": "down2.norm",
    "deconv1.conv2d": "up1.conv.conv",
    "in4": "up1.norm",
    "deconv2.conv2d": "up2.conv.conv",
    "in5": "up2.norm",
    "deconv3.conv2d": "head.conv",
    **{
        f"res{k}.{theirs}": f"res.{k - 1}.{ours}"
        for k in range(1, RES_BLOCKS + 1)
        for theirs, ours in (
            ("conv1.conv2d", "conv1.conv"),
            ("in1", "norm1"),
            ("conv2.conv2d", "conv2.conv"),
            ("in2", "norm2"),
        )
    },
}
STALE = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def convert_state_dict(state: dict) -> dict:
    """Their keys -> ours; raises InputError naming what does not fit."""
    out = {}
    unknown = []
    for key, value in state.items():
        if not isinstance(key, str):
            raise InputError(f"state dict key {key!r} is not a string")
        if STALE.search(key):
            continue
        prefix, _, leaf = key.rpartition(".")
        if prefix not in PREFIXES or leaf not in ("weight", "bias"):
            unknown.append(key)
            continue
        out[f"{PREFIXES[prefix]}.{leaf}"] = value
    if unknown:
        shown = ", ".join(unknown[:3]) + (
            f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
        )
        raise InputError(f"not a pytorch/examples fast_neural_style model: unexpected keys {shown}")
    expected = {f"{ours}.{leaf}" for ours in PREFIXES.values() for leaf in ("weight", "bias")}
    missing = sorted(expected - set(out))
    if missing:
        theirs = {
            f"{v}.{leaf}": f"{k}.{leaf}" for k, v in PREFIXES.items() for leaf in ("weight", "bias")
        }
        names = ", ".join(theirs[m] for m in missing[:3])
        raise InputError(
            f"not a complete pytorch/examples fast_neural_style model: missing {names}"
            + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
        )
    return out


def checkpoint_from_pytorch_examples(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Convert IN.pth (a fast_neural_style state dict) into our checkpoint OUT.pth."""
    import torch

    from perceptual_edge.train import Checkpoint, build_network, network_config, save_checkpoint
    from perceptual_edge.train.checkpoint import load_checkpoint_dict
    from perceptual_edge.train.networks import spec_for

    src = Path(source)
    out = check_output(output, overwrite)
    obj = load_checkpoint_dict(src)  # weights_only=True: refuses pickled code
    if "format" in obj and "state_dict" in obj:
        raise InputError(f"{src}: already a perceptual-edge checkpoint; nothing to import")
    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{src}: not a plain state dict of tensors")
    state = convert_state_dict(obj)
    config = network_config("style", norm="instance", upsample="nearest-conv", output="clamp")
    model = build_network(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        detail = lines[0] if lines else str(e).splitlines()[0]
        raise InputError(f"{src}: tensor shapes do not fit the style network ({detail})") from None
    spec = spec_for(
        config,
        source="pytorch-examples",
        loss_net="vgg16",
        loss_net_weights="torchvision-imagenet",
        notes=f"imported from {src.name}",
    )
    state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return save_checkpoint(Checkpoint(spec, config, state_dict), out, overwrite=overwrite)
