"""The segment program of a network: what exact tiled inference (runtime/exact_tiles.py) runs.

Instance norm normalises with the mean and variance of the whole image, so a tile run through
the whole network is normalised with the wrong numbers, and its border sees other context than
the whole image does. The program splits the network at every normalisation: each step is one
convolution (its own small ONNX graph, `valid` padding: the runtime gathers the reflection
padding, the nearest upsampling and the halo of exactly its kernel from the stored input), or an
elementwise normalisation (+ ReLU, or + the residual input) that the runtime applies with the
statistics it accumulated, in float64, over the whole previous output. Every convolution then
sees exactly the values it sees in the whole-image run, so tiles match the untiled output up to
float rounding, whatever their size; each pass needs a halo of only its own kernel.

Written as a folder `NAME.segments/` beside the ONNX: `plan.json` (the steps), `norms.npz`
(per normalisation: kind, eps, affine weight and bias; batch norm's running mean and variance),
`convNN.onnx` (one Conv each: FP32 weights and bias, dynamic batch/height/width). A transposed
convolution (the paper's `deconv` upsampling) becomes a stride-1 convolution with the kernel
flipped and its channels swapped, run on the input with zeros inserted between pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from perceptual_edge.errors import InputError
from perceptual_edge.fsutil import check_output, temp_folder_for
from perceptual_edge.spec import ModelSpec

PLAN_VERSION = 1
OPSET = 18


class _Builder:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.norms: dict[str, np.ndarray] = {}
        self.convs: list[tuple[np.ndarray, np.ndarray, int]] = []  # weight, bias, stride
        self.n_norms = 0
        self.n_buffers = 0

    def buffer(self) -> str:
        self.n_buffers += 1
        return f"b{self.n_buffers}"

    def conv(
        self, src: str, module: nn.Module, up: str | None = None, post: str | None = None
    ) -> str:
        """One convolution step: `module` is our Conv (reflection pad k//2 + Conv2d) or a
        stride-2 ConvTranspose2d; returns the buffer it writes."""
        if isinstance(module, nn.ConvTranspose2d):
            w = module.weight.detach().float().numpy()  # (Cin, Cout, k, k)
            weight = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
            k, stride, pad = weight.shape[-1], 1, module.padding[0]
            if module.stride != (2, 2) or module.output_padding != (1, 1) or pad != k // 2:
                raise InputError("segments: only the x2 transposed convolution is supported")
            up = "zeros"
        else:
            conv = module.conv
            weight = conv.weight.detach().float().numpy()  # (Cout, Cin, k, k)
            k, stride = weight.shape[-1], conv.stride[0]
        bias = module.bias if isinstance(module, nn.ConvTranspose2d) else module.conv.bias
        b = bias.detach().float().numpy() if bias is not None else np.zeros(weight.shape[0])
        self.convs.append((weight, b.astype(np.float32), stride))
        dst = self.buffer()
        self.steps.append({
            "op": "conv", "src": src, "dst": dst, "graph": f"conv{len(self.convs) - 1:02d}.onnx",
            "kernel": int(k), "stride": int(stride), "up": up, "post": post,
            "channels": int(weight.shape[0]),
        })  # fmt: skip
        return dst

    def norm(self, buf: str, module: nn.Module, relu: bool, into: str | None = None) -> None:
        """buf <- relu?(norm(buf)), or, with `into`, into <- into + norm(buf)."""
        i = self.n_norms
        self.n_norms += 1
        c = module.num_features
        weight = module.weight if module.affine else None
        bias = module.bias if module.affine else None
        self.norms[f"weight{i}"] = (
            weight.detach().double().numpy() if weight is not None else np.ones(c)
        )
        self.norms[f"bias{i}"] = bias.detach().double().numpy() if bias is not None else np.zeros(c)
        if isinstance(module, nn.InstanceNorm2d):
            if module.track_running_stats:
                raise InputError("segments: instance norm with running statistics is not ours")
            kind = "instance"
        elif isinstance(module, nn.BatchNorm2d):
            kind = "batch"
            self.norms[f"mean{i}"] = module.running_mean.detach().double().numpy()
            self.norms[f"var{i}"] = module.running_var.detach().double().numpy()
        else:
            raise InputError(f"segments: unknown normalisation {type(module).__name__}")
        self.steps.append({
            "op": "norm", "buf": buf, "norm": i, "kind": kind, "eps": float(module.eps),
            "relu": relu, "into": into,
        })  # fmt: skip


def program(model: nn.Module) -> _Builder:
    """The steps of our StyleNet or SRNet (train/style_net.py, train/sr_net.py)."""
    from perceptual_edge.train.layers import ConvNormReLU, ResidualBlock, UpBlock
    from perceptual_edge.train.sr_net import SRNet
    from perceptual_edge.train.style_net import StyleNet

    b = _Builder()

    def cnr(src: str, block: ConvNormReLU) -> str:
        out = b.conv(src, block.conv)
        b.norm(out, block.norm, relu=True)
        return out

    def res(x: str, block: ResidualBlock) -> None:
        h = b.conv(x, block.conv1)
        b.norm(h, block.norm1, relu=True)
        h2 = b.conv(h, block.conv2)
        b.norm(h2, block.norm2, relu=False, into=x)  # x <- x + norm2(conv2(...))
        b.steps.append({"op": "free", "bufs": [h, h2]})

    def upb(src: str, block: UpBlock) -> str:
        out = b.conv(src, block.conv, up="nearest" if block.mode == "nearest-conv" else None)
        b.norm(out, block.norm, relu=True)
        return out

    if isinstance(model, StyleNet):
        x = cnr("input", model.stem)
        x2 = cnr(x, model.down1)
        b.steps.append({"op": "free", "bufs": [x]})
        x3 = cnr(x2, model.down2)
        b.steps.append({"op": "free", "bufs": [x2]})
        for block in model.res:
            res(x3, block)
        u = x3
        ups = [model.up1, model.up2]
    elif isinstance(model, SRNet):
        u = cnr("input", model.stem)
        for block in model.res:
            res(u, block)
        ups = list(model.up)
    else:
        raise InputError(f"segments: unknown network {type(model).__name__}")
    for block in ups:
        nxt = upb(u, block)
        b.steps.append({"op": "free", "bufs": [u]})
        u = nxt
    out = b.conv(u, model.head, post=model.config.output)
    b.steps.append({"op": "free", "bufs": [u]})
    b.steps.append({"op": "output", "buf": out})
    return b


def _conv_onnx(weight: np.ndarray, bias: np.ndarray, stride: int) -> Any:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cout, cin = weight.shape[:2]
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride, stride])
    graph = helper.make_graph(
        [node],
        "segment",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", cout, "oh", "ow"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.producer_name = "perceptual-edge"
    onnx.checker.check_model(proto)
    return proto


def segments_dir(onnx_path: str | os.PathLike[str]) -> Path:
    """`NAME.segments/` beside `NAME.onnx`."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}.segments")


def write_segments(
    model: nn.Module, spec: ModelSpec, out: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Write the segment program of `model` as a folder, atomically (a temporary folder beside
    it, renamed into place)."""
    import onnx

    out = Path(out)
    if out.exists() and not overwrite:
        check_output(out, overwrite)
    model = model.eval().float()
    with torch.no_grad():
        b = program(model)
    tmp = temp_folder_for(out)
    try:
        for i, (w, bias, stride) in enumerate(b.convs):
            onnx.save(_conv_onnx(w, bias, stride), str(tmp / f"conv{i:02d}.onnx"))
        np.savez(tmp / "norms.npz", **b.norms)
        plan = {
            "version": PLAN_VERSION,
            "network": spec.kind,
            "scale": spec.scale,
            "multiple": spec.multiple,
            "min_size": spec.min_size,
            "steps": b.steps,
        }
        (tmp / "plan.json").write_text(json.dumps(plan, indent=1))
        tmp.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return out
