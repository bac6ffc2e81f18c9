"""Checkpoint -> ONNX with dynamic batch, height and width.

The dynamo exporter traces the network once with an example input larger than 1 on every
dynamic dimension (so nothing is specialised), the style net's height and width are declared
as 4*h and 4*w (its two stride-2 convolutions need multiples of 4), constants are folded, the
ModelSpec goes into `metadata_props`, and the result is checked with `onnx.checker` and the
TensorRT lint before it is written atomically. Same checkpoint -> byte-identical file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, first_line
from perceptual_edge.fsutil import atomic_path, check_output
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY

OPSET = 18
MAX_BATCH = 1024
MAX_SIDE = 8192


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs registry warnings (e.g. torchvision ops) that are noise for our nets."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _strip_exporter_metadata(proto: Any) -> None:
    """Drop the exporter's debugging metadata: stack traces with source paths and line numbers,
    FX node text, symbolic ranges printed in hash order. It would make the bytes depend on
    where perceptual-edge is installed and on the interpreter's hash seed."""
    g = proto.graph
    for node in g.node:
        del node.metadata_props[:]  # all exporter provenance (namespace, class hierarchy, ...)
    for holder in [g, *g.input, *g.output, *g.value_info, *g.initializer]:
        keep = [p for p in holder.metadata_props if not p.key.startswith("pkg.torch.")]
        del holder.metadata_props[:]
        holder.metadata_props.extend(keep)


def onnx_model_from_checkpoint(checkpoint: str | os.PathLike[str]) -> Any:
    """The FP32 `onnx.ModelProto` of a checkpoint (not written anywhere)."""
    import onnx
    import torch

    from perceptual_edge.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build()
    spec = ckpt.spec
    m = spec.multiple
    # Example sizes > 1 on every dynamic dim (batch 2, 64x96 style / 24x36 SR) so the
    # exporter specialises nothing; seeded so the trace (and the file) is reproducible.
    gen = torch.Generator().manual_seed(0)
    h0, w0 = (16 * m, 24 * m) if m > 1 else (24, 36)
    x = torch.rand(2, 3, h0, w0, generator=gen) * 255  # (N, 3, H, W)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    h = torch.export.Dim("h", min=2, max=MAX_SIDE // max(m, 1))
    w = torch.export.Dim("w", min=2, max=MAX_SIDE // max(m, 1))
    dims = {0: batch, 2: m * h, 3: m * w} if m > 1 else {0: batch, 2: h, 3: w}
    with _quiet_exporter(), torch.no_grad():
        try:
            prog = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                input_names=[spec.input_name],
                output_names=[spec.output_name],
                dynamic_shapes={"x": dims},
                opset_version=OPSET,
                optimize=True,
                verbose=False,
            )
        except Exception as e:  # the exporter raises many types; say which network failed
            first = first_line(e)
            raise InputError(f"ONNX export of {checkpoint} failed: {first}") from None
    proto = prog.model_proto
    _strip_exporter_metadata(proto)
    proto.producer_name = "perceptual-edge"
    entry = proto.metadata_props.add()
    entry.key, entry.value = SPEC_METADATA_KEY, spec.to_json()
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_onnx(proto: Any, output: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write a ModelProto atomically as one self-contained file."""
    import onnx

    out = check_output(output, overwrite)
    with atomic_path(out, overwrite) as tmp:
        onnx.save(proto, str(tmp))
    return out


def onnx_from_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fp16: bool = False,
    fp16_io: bool = False,
    overwrite: bool = False,
) -> Path:
    """Export a checkpoint to ONNX (FP32, or FP16 with `fp16`); lint it for TensorRT; write it."""
    from perceptual_edge.export.fp16 import float16_model
    from perceptual_edge.export.lint import check_tensorrt_compatible

    if fp16_io and not fp16:
        raise InputError("--fp16-io needs --fp16")
    out = check_output(output, overwrite)
    proto = onnx_model_from_checkpoint(checkpoint)
    if fp16:
        proto = float16_model(proto, keep_io_fp32=not fp16_io)
    check_tensorrt_compatible(proto, name=str(out))
    return save_onnx(proto, out, overwrite)
