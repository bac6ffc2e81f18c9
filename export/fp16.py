"""FP32 ONNX -> FP16 ONNX with the overflow-prone operators kept in FP32.

Weights and compute go to FP16; normalisations and reductions (InstanceNormalization sums
H*W squares: FP16 instance norm is a known source of wrong or NaN outputs) and interpolating
Resize (linear, cubic: weighted sums) run in FP32 behind explicit Cast nodes. A nearest-neighbour
Resize only copies values, which is exact in FP16: it stays in FP16, because casting around it
would add two full-resolution passes (FP16 -> FP32 before the upsampled tensor, and back after,
at 4x the elements) for bit-identical numbers. Graph inputs and outputs stay FP32 unless
`keep_io_fp32` is off. The result is what TensorRT 11 needs (it always builds strongly typed,
so the precision must be in the graph) and TensorRT 10 builds it with the STRONGLY_TYPED flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT = 1
FLOAT16 = 10
FP16_MAX = 65504.0

# Operators whose arithmetic stays in FP32 (see the module docstring; Resize and Upsample only
# when they interpolate).
FP32_OPS = frozenset(
    {
        "InstanceNormalization",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "ReduceMean",
        "ReduceSum",
        "ReduceSumSquare",
        "ReduceL2",
        "ReduceLogSumExp",
        "ReduceProd",
        "Softmax",
        "Resize",
        "Upsample",
    }
)
# Inputs that carry the operator's data type; the others (Resize's roi/scales, Pad's pads,
# Reshape's shape, ...) keep their own type whatever the compute precision.
DATA_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (0,),
    "Upsample": (0,),
    "Pad": (0, 2),
    "Reshape": (0,),
    "Slice": (0,),
    "Gather": (0,),
    "Expand": (0,),
    "Unsqueeze": (0,),
    "Squeeze": (0,),
    "ReduceMean": (0,),
    "ReduceSum": (0,),
}


def _float_types(model: Any) -> dict[str, int]:
    """Element type of every float tensor name in the graph (after shape inference)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    types: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        types[vi.name] = vi.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    return {k: v for k, v in types.items() if v in (FLOAT, FLOAT16)}


def _to_fp16(tensor: Any, name: str) -> Any:
    from onnx import numpy_helper

    a = numpy_helper.to_array(tensor)
    # Weights beyond FP16's range would become inf: saturate (none occur in our networks).
    return numpy_helper.from_array(np.clip(a, -FP16_MAX, FP16_MAX).astype(np.float16), name)


def _constants_to_initializers(graph: Any) -> None:
    """Constant nodes with float tensors become initializers, so one path converts both."""
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1:
            attr = node.attribute[0]
            if attr.name == "value" and attr.t.data_type == FLOAT:
                t = type(attr.t)()
                t.CopyFrom(attr.t)
                t.name = node.output[0]
                graph.initializer.append(t)
                continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


INTERPOLATING = ("Resize", "Upsample")


def copies_values(node: Any) -> bool:
    """A Resize/Upsample in nearest mode (the ONNX default for both): exact in any precision."""
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"nearest")
    return node.op_type in INTERPOLATING and mode == b"nearest"


def float16_model(model: Any, keep_io_fp32: bool = True, nearest_in_fp16: bool = True) -> Any:
    """A converted copy of `model` (onnx.ModelProto); `model` itself is left unchanged.
    `nearest_in_fp16=False` keeps nearest Resize in FP32 too (what earlier exports did)."""
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    _constants_to_initializers(g)
    ftypes = _float_types(m)
    inits = {t.name: t for t in g.initializer}

    def compute_type(node: Any) -> int:
        if nearest_in_fp16 and copies_values(node):
            return FLOAT16
        return FLOAT if node.op_type in FP32_OPS else FLOAT16

    def data_inputs(node: Any) -> list[int]:
        idx = DATA_INPUTS.get(node.op_type)
        return [i for i, n in enumerate(node.input) if n and (idx is None or i in idx)]

    # Which precisions each float initializer is wanted in.
    wanted: dict[str, set[int]] = {}
    for node in g.node:
        for i in data_inputs(node):
            name = node.input[i]
            if name in inits and inits[name].data_type == FLOAT:
                wanted.setdefault(name, set()).add(compute_type(node))
    renamed_init: dict[str, str] = {}
    new_inits = []
    for t in g.initializer:
        want = wanted.get(t.name, set())
        if FLOAT16 in want and FLOAT in want:
            new_inits.extend([t, _to_fp16(t, t.name + "_fp16")])
            renamed_init[t.name] = t.name + "_fp16"
        elif FLOAT16 in want:
            new_inits.append(_to_fp16(t, t.name))
        else:
            new_inits.append(t)
    del g.initializer[:]
    g.initializer.extend(new_inits)

    current: dict[str, int] = {}  # type each float tensor has in the converted graph
    for t in g.initializer:
        current[t.name] = t.data_type
    io_type = FLOAT if keep_io_fp32 else FLOAT16
    for vi in g.input:
        if vi.type.tensor_type.elem_type in (FLOAT, FLOAT16):
            vi.type.tensor_type.elem_type = io_type
            current[vi.name] = io_type

    nodes: list[Any] = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            out = f"{name}_to_{'fp16' if to == FLOAT16 else 'fp32'}"
            nodes.append(helper.make_node("Cast", [name], [out], name=f"cast_{out}", to=to))
            casts[key] = out
            current[out] = to
        return casts[key]

    for node in g.node:
        ct = compute_type(node)
        for i in data_inputs(node):
            name = node.input[i]
            if name not in ftypes and name not in current:
                continue  # not a float tensor (pads, shapes, indices)
            if ct == FLOAT16 and name in renamed_init:
                node.input[i] = renamed_init[name]
            elif current.get(name, ftypes.get(name)) != ct:
                node.input[i] = cast(name, ct)
        if node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = FLOAT16  # an FP32 cast inside the FP16 region stays FP16
        for out in node.output:
            if out in ftypes:
                current[out] = FLOAT16 if node.op_type == "Cast" else ct
        nodes.append(node)

    want_out = FLOAT if keep_io_fp32 else FLOAT16
    for vi in g.output:
        if vi.name not in current or current[vi.name] == want_out:
            continue
        internal = f"{vi.name}_{'fp16' if current[vi.name] == FLOAT16 else 'fp32'}"
        for node in nodes:
            for lst in (node.input, node.output):
                for i, n in enumerate(lst):
                    if n == vi.name:
                        lst[i] = internal
        nodes.append(
            helper.make_node("Cast", [internal], [vi.name], name=f"cast_{vi.name}", to=want_out)
        )
    for vi in g.output:
        vi.type.tensor_type.elem_type = want_out

    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]  # stale element types; consumers re-infer what they need
    onnx.checker.check_model(m, full_check=True)
    return m


def is_float16_model(model: Any) -> bool:
    """True when the graph computes in FP16 (any FP16 initializer)."""
    return any(t.data_type == FLOAT16 for t in model.graph.initializer)
