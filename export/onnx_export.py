"""Checkpoint -> ONNX with dynamic batch, height and width (first version; see issue 3)."""

from __future__ import annotations

import os
from pathlib import Path

from perceptual_edge.fsutil import atomic_path, check_output
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY

OPSET = 18


def onnx_from_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fp16: bool = False,
    fp16_io: bool = False,
    overwrite: bool = False,
) -> Path:
    import onnx
    import torch

    from perceptual_edge.train.checkpoint import load_checkpoint

    if fp16 or fp16_io:
        raise NotImplementedError("FP16 export is not written yet")
    out = check_output(output, overwrite)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build()
    m = ckpt.spec.multiple
    # Example sizes > 1 on every dynamic dim, so the exporter specialises nothing.
    x = torch.rand(2, 3, 16 * m if m > 1 else 24, 24 * m if m > 1 else 36) * 255
    batch = torch.export.Dim("batch", min=1, max=1024)
    h = torch.export.Dim("h", min=2, max=8192)
    w = torch.export.Dim("w", min=2, max=8192)
    dims = {0: batch, 2: m * h, 3: m * w} if m > 1 else {0: batch, 2: h, 3: w}
    prog = torch.onnx.export(
        model,
        (x,),
        dynamo=True,
        input_names=[ckpt.spec.input_name],
        output_names=[ckpt.spec.output_name],
        dynamic_shapes={"x": dims},
        opset_version=OPSET,
        optimize=True,
        verbose=False,
    )
    proto = prog.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = SPEC_METADATA_KEY, ckpt.spec.to_json()
    onnx.checker.check_model(proto)
    with atomic_path(out, overwrite) as tmp:
        onnx.save(proto, str(tmp))
    return out
