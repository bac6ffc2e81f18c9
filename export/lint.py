"""A lint for ONNX graphs meant for TensorRT's ONNX parser with dynamic shapes.

The rules are taken from onnx-tensorrt's operator support matrix (docs/operators.md, TensorRT
10.x: opsets 9..20 on TensorRT 10.0, later 10.x up to 24; FP32/FP16 for the float ops used
here; Resize: modes nearest/linear, coordinate modes half_pixel, pytorch_half_pixel,
tf_half_pixel_for_nn, asymmetric, align_corners, nearest modes floor/ceil/round_prefer_*,
aspect-ratio policy stretch, no antialias) plus the things that break dynamic shapes: a
ConvTranspose with a fixed `output_shape`, weights that are not initializers, Pad amounts that
are computed at run time. The lint checks only what our networks can contain and names every
other operator, so a new layer cannot slip through unreviewed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perceptual_edge.errors import InputError

MIN_OPSET, MAX_OPSET = 9, 20  # TensorRT 10.0's range; later 10.x parse newer opsets too

FLOAT = 1
FLOAT16 = 10
INT64 = 7
INT32 = 6
BOOL = 9
FLOAT_TYPES = (FLOAT, FLOAT16)

RESIZE_COORD_MODES = {
    "half_pixel",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "asymmetric",
    "align_corners",
}
RESIZE_MODES = {"nearest", "linear"}
RESIZE_NEAREST_MODES = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
PAD_MODES = {"constant", "reflect", "edge"}

# Operators in the matrix marked unsupported ("N") that a model could plausibly contain.
UNSUPPORTED = {
    "Bernoulli",
    "BitShift",
    "Col2Im",
    "Compress",
    "ConcatFromSequence",
    "ConvInteger",
    "DFT",
    "Det",
    "DynamicQuantizeLinear",
    "ImageDecoder",
    "MatMulInteger",
    "MaxRoiPool",
    "MaxUnpool",
    "Multinomial",
    "Optional",
    "QLinearConv",
    "QLinearMatMul",
    "SequenceAt",
    "SequenceConstruct",
    "SplitToSequence",
    "StringNormalizer",
    "TfIdfVectorizer",
    "Unique",
}


@dataclass(frozen=True)
class LintIssue:
    node: str
    op: str
    message: str

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.message}"


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


class _Graph:
    def __init__(self, model: Any) -> None:
        g = model.graph
        self.initializers = {t.name: t for t in g.initializer}
        self.constants = {o for n in g.node if n.op_type == "Constant" for o in n.output}

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or name in self.constants


def _check_conv(node: Any, graph: _Graph) -> list[str]:
    a = _attrs(node)
    out = []
    ks = a.get("kernel_shape")
    if ks is not None and len(ks) not in (2, 3):
        out.append("only 2D or 3D convolutions are supported")
    if len(node.input) > 1 and not graph.is_constant(node.input[1]):
        out.append("weights must be an initializer")
    if node.op_type == "ConvTranspose":
        if "output_shape" in a:
            out.append("output_shape is fixed at export; with dynamic H/W use pads/output_padding")
        strides = a.get("strides") or [1] * len(ks or [])
        op = a.get("output_padding") or [0] * len(strides)
        if any(p >= s for p, s in zip(op, strides, strict=False)):
            out.append(f"output_padding {list(op)} must be smaller than strides {list(strides)}")
    if _text(a.get("auto_pad"), "NOTSET") not in ("NOTSET", "VALID"):
        out.append("auto_pad SAME_* resolves padding from the input size; export explicit pads")
    return out


def _check_pad(node: Any, graph: _Graph) -> list[str]:
    a = _attrs(node)
    out = []
    mode = _text(a.get("mode"), "constant")
    if mode not in PAD_MODES:
        out.append(f"mode {mode!r} is not supported (supported: {sorted(PAD_MODES)})")
    if len(node.input) > 1 and node.input[1] and not graph.is_constant(node.input[1]):
        out.append("pads are computed at run time; they must be a constant")
    if len(node.input) > 3 and node.input[3]:
        out.append("the axes input is not supported; pad all axes")
    return out


def _check_resize(node: Any, graph: _Graph) -> list[str]:
    a = _attrs(node)
    out = []
    mode = _text(a.get("mode"), "nearest")
    coord = _text(a.get("coordinate_transformation_mode"), "half_pixel")
    nearest = _text(a.get("nearest_mode"), "round_prefer_floor")
    policy = _text(a.get("keep_aspect_ratio_policy"), "stretch")
    if mode not in RESIZE_MODES:
        out.append(f"mode {mode!r} is not supported (use nearest or linear)")
    if coord not in RESIZE_COORD_MODES:
        out.append(f"coordinate_transformation_mode {coord!r} is not supported")
    if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
        out.append(f"nearest_mode {nearest!r} is not supported")
    if policy != "stretch":
        out.append(f"keep_aspect_ratio_policy {policy!r} is not supported (only stretch)")
    if a.get("antialias", 0):
        out.append("antialiasing is not supported")
    axes = a.get("axes")
    if axes is not None and list(axes) != list(range(len(axes))):
        out.append("with scales, axes must be absent or 0..rank-1")
    return out


def _check_instance_norm(node: Any, graph: _Graph) -> list[str]:
    if not all(graph.is_constant(n) for n in node.input[1:3]):
        return ["scale and B must be initializers"]
    return []


def _no_check(node: Any, graph: _Graph) -> list[str]:
    return []


# Operators a perceptual-edge network may contain, each with its TensorRT restrictions.
CHECKS: dict[str, Callable[[Any, _Graph], list[str]]] = {
    "Conv": _check_conv,
    "ConvTranspose": _check_conv,
    "Pad": _check_pad,
    "Resize": _check_resize,
    "InstanceNormalization": _check_instance_norm,
    **{
        op: _no_check
        for op in (
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Relu",
            "LeakyRelu",
            "Tanh",
            "Sigmoid",
            "Clip",
            "Max",
            "Min",
            "Cast",
            "Constant",
            "Identity",
            "BatchNormalization",
            "ReduceMean",
            "ReduceSum",
            "Sqrt",
            "Pow",
            "Reshape",
            "Shape",
            "Gather",
            "Concat",
            "Slice",
            "Unsqueeze",
            "Squeeze",
            "Transpose",
        )
    },
}


def lint_onnx(model: Any) -> list[LintIssue]:
    """Every reason TensorRT's ONNX parser would reject `model` (an onnx.ModelProto)."""
    issues: list[LintIssue] = []
    graph = _Graph(model)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not MIN_OPSET <= imp.version <= MAX_OPSET:
            issues.append(
                LintIssue(
                    "<model>", "opset", f"opset {imp.version} outside {MIN_OPSET}..{MAX_OPSET}"
                )
            )
        elif imp.domain not in ("", "ai.onnx"):
            issues.append(
                LintIssue("<model>", "opset", f"custom domain {imp.domain!r} needs a plugin")
            )
    for t in model.graph.input:
        et = t.type.tensor_type.elem_type
        if et not in FLOAT_TYPES:
            issues.append(LintIssue(t.name, "input", f"input type {et} is not FP32/FP16"))
    for i, node in enumerate(model.graph.node):
        name = node.name or f"#{i}"
        if node.domain not in ("", "ai.onnx"):
            issues.append(LintIssue(name, node.op_type, f"custom domain {node.domain!r}"))
            continue
        if node.op_type in UNSUPPORTED:
            issues.append(LintIssue(name, node.op_type, "not supported by TensorRT's ONNX parser"))
            continue
        check = CHECKS.get(node.op_type)
        if check is None:
            issues.append(
                LintIssue(name, node.op_type, "not in the operators this lint has reviewed")
            )
            continue
        issues.extend(LintIssue(name, node.op_type, msg) for msg in check(node, graph))
        if node.op_type == "Cast":
            to = _attrs(node).get("to")
            if to not in (FLOAT, FLOAT16, INT32, INT64, BOOL):
                issues.append(LintIssue(name, "Cast", f"cast to type {to} is not supported"))
    return issues


def check_tensorrt_compatible(model: Any, name: str = "model") -> None:
    """Raise InputError naming the first problems if TensorRT could not parse `model`."""
    issues = lint_onnx(model)
    if issues:
        shown = "; ".join(str(i) for i in issues[:3])
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        raise InputError(f"{name}: ONNX graph is not TensorRT-compatible: {shown}{more}")
