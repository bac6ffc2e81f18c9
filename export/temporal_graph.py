"""The temporal companion graph, `NAME.temporal.onnx`: the network with every instance norm's
statistics carried from frame to frame (runtime/temporal.py runs it for `pe run --temporal`).

Each InstanceNormalization(x, scale, bias) becomes

    m_t = keep * prev_mean_k + (1 - keep) * mean_hw(x)
    v_t = keep * prev_var_k  + (1 - keep) * mean_hw((x - mean_hw(x))^2)
    y   = (x - m_t) / sqrt(v_t + eps) * scale + bias

with graph inputs `prev_mean_k`, `prev_var_k` (1, C, 1, 1) and the scalar `keep` (0 for the
first frame of a shot: plain instance norm, the same output as the ONNX), and outputs
`mean_k`, `var_k` (N, C, 1, 1) that the next frame takes as its prev_*. One fused graph per
frame: the statistics cost two small reductions more than the network itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError


def temporal_model(proto: Any) -> tuple[Any, int]:
    """A copy of `proto` (the FP32 ONNX) rewritten as above; returns it and the norm count."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "pe_axes"))
    g.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), "pe_one"))
    g.input.append(helper.make_tensor_value_info("keep", TensorProto.FLOAT, []))
    nodes: list[Any] = [helper.make_node("Sub", ["pe_one", "keep"], ["pe_fresh"])]
    k = 0
    for n in g.node:
        if n.op_type != "InstanceNormalization":
            nodes.append(n)
            continue
        x, scale, bias = n.input
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
        c = inits[scale].size if scale in inits else None
        if c is None:
            raise InputError("temporal graph: an instance norm's scale is not a constant")
        g.initializer.extend([
            numpy_helper.from_array(inits[scale].reshape(1, c, 1, 1), f"pe_s{k}"),
            numpy_helper.from_array(inits[bias].reshape(1, c, 1, 1), f"pe_b{k}"),
            numpy_helper.from_array(np.array(eps, np.float32), f"pe_eps{k}"),
        ])  # fmt: skip
        for name in (f"prev_mean_{k}", f"prev_var_{k}"):
            g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, c, 1, 1]))
        for name in (f"mean_{k}", f"var_{k}"):
            g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", c, 1, 1]))
        p = f"pe{k}_"
        nodes += [
            helper.make_node("ReduceMean", [x, "pe_axes"], [p + "m"], keepdims=1),
            helper.make_node("Sub", [x, p + "m"], [p + "d"]),
            helper.make_node("Mul", [p + "d", p + "d"], [p + "d2"]),
            helper.make_node("ReduceMean", [p + "d2", "pe_axes"], [p + "v"], keepdims=1),
            helper.make_node("Mul", [f"prev_mean_{k}", "keep"], [p + "pm"]),
            helper.make_node("Mul", [p + "m", "pe_fresh"], [p + "cm"]),
            helper.make_node("Add", [p + "pm", p + "cm"], [f"mean_{k}"]),
            helper.make_node("Mul", [f"prev_var_{k}", "keep"], [p + "pv"]),
            helper.make_node("Mul", [p + "v", "pe_fresh"], [p + "cv"]),
            helper.make_node("Add", [p + "pv", p + "cv"], [f"var_{k}"]),
            helper.make_node("Sub", [x, f"mean_{k}"], [p + "xc"]),
            helper.make_node("Add", [f"var_{k}", f"pe_eps{k}"], [p + "ve"]),
            helper.make_node("Sqrt", [p + "ve"], [p + "sd"]),
            helper.make_node("Div", [f"pe_s{k}", p + "sd"], [p + "g"]),
            helper.make_node("Mul", [p + "xc", p + "g"], [p + "xn"]),
            helper.make_node("Add", [p + "xn", f"pe_b{k}"], [n.output[0]]),
        ]
        k += 1
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    return m, k


def temporal_path(onnx_path: str | os.PathLike[str]) -> Path:
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}.temporal.onnx")


def write_temporal(proto: Any, out: str | os.PathLike[str], overwrite: bool = False) -> Path | None:
    """Write the temporal graph of an FP32 proto, or None for a network without instance norm
    (batch norm: its statistics are fixed already)."""
    from perceptual_edge.export.onnx_export import save_onnx

    model, count = temporal_model(proto)
    if count == 0:
        return None
    return save_onnx(model, out, overwrite)
