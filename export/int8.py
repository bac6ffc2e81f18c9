"""FP32 ONNX -> INT8 QDQ ONNX, calibrated on real photographs (`int8_from_onnx`).

One INT8 file serves CPUs and NVIDIA GPUs, so the Q/DQ placement is TensorRT's explicit
quantization pattern: QuantizeLinear -> DequantizeLinear on every quantized convolution's input,
and DequantizeLinear on its weights (per output channel, axis 0), all signed INT8 with zero
point 0 (TensorRT accepts only symmetric quantization). Weights use 7 bits of range (-64..64):
x86 CPUs without VNNI multiply u8 activations by s8 weights in pairs summed into int16
(vpmaddubsw), which saturates with full-range weights: OpenVINO on such a CPU (AMD Zen 3) gave
16-28 dB instead of 34-40 on the same file; with 7-bit weights ONNX Runtime and OpenVINO agree
and the quality measured the same. Convolution outputs are not quantized:
each feeds an instance norm, which stays float (as do Pad, Resize, Add, Tanh), and quantizing a
convolution's raw output cost 10-15 dB more than leaving it float (measured on the style net).
ONNX Runtime and OpenVINO run the same file (OpenVINO fuses each DQ -> Conv into an int8
convolution with float output; TensorRT does the same).

Activation ranges come from `calibration` images (centre crops of real photos, never the
golden inputs); the method (MinMax / Percentile / Entropy) is onnxruntime.quantization's and
the default was chosen by measurement (see README, "INT8"). Which convolutions stay float is
decided per layer by `export/int8_report.py` on held-out photos of the same folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError
from perceptual_edge.image import image_to_batch, square_photos

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
DEFAULT_METHOD = "percentile"
PERCENTILE = 99.999
DEFAULT_CALIBRATION_IMAGES = 32
CALIBRATION_SIZE = 256  # px, square centre crops; instance norm makes ranges size-independent
HELD_OUT_IMAGES = 6  # photos after the calibration ones, for the per-layer decisions
INT8_METADATA_KEY = "perceptual_edge.int8"


@dataclass
class Int8Plan:
    """How an INT8 file was made: recorded in its metadata and printed by `pe export`."""

    method: str
    calibration_images: list[str]
    held_out_images: list[str]
    float_layers: list[str]  # convolutions kept in float (weight names without ".weight")
    held_out_psnr: list[float] = field(default_factory=list)  # per held-out photo, vs FP32

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass
class Int8Options:
    """`pe export --int8` options."""

    calibration: Path  # folder of real photos
    images: int = DEFAULT_CALIBRATION_IMAGES
    method: str = DEFAULT_METHOD
    float_layers: list[str] | None = None  # None: chosen by measurement
    target_db: float | None = None  # None: the INT8 threshold + int8_report.TARGET_MARGIN_DB
    report: bool = False  # include the per-layer sensitivity tables in the printed text

    def check(self) -> None:
        """Fail before any work on a bad folder, count or method."""
        if not Path(self.calibration).is_dir():
            raise InputError(f"--calibration {self.calibration}: not a folder of images")
        if self.images < 1:
            raise InputError("--calibration-images must be at least 1")
        _method(self.method)


def photo_batches(folder: str | os.PathLike[str], start: int, count: int, size: int) -> tuple:
    """(names, [(1, 3, size, size) float32]) for images start..start+count of `folder`."""
    images = square_photos(folder, size, start + count)[start:]
    return [n for n, _ in images], [image_to_batch(img) for _, img in images]


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray]) -> None:
        self._items: Iterator[np.ndarray] = iter(batches)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._items, None)
        return None if x is None else {self._name: x}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization prints progress on stdout and logs advice through the root
    logger on every call; pe's stdout carries results (and --json), so keep both out of it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def conv_layers(model: Any) -> list[tuple[str, str]]:
    """(node name, layer name) of every Conv, in graph order; the layer name is the weight's
    initializer name without '.weight' (e.g. 'stem.conv.conv'), as in the checkpoint."""
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = node.input[1]
            out.append((node.name, w[: -len(".weight")] if w.endswith(".weight") else w))
    return out


def conv_macs(model: Any, size: int = CALIBRATION_SIZE) -> dict[str, int]:
    """Multiply-accumulates of each Conv (by layer name) for one size x size input, from ONNX
    shape inference: what keeping that layer in float costs, relative to the others."""
    import onnx
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, 3, size, size), strict=True):
        d.ClearField("dim_param")
        d.dim_value = v
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    weights = {i.name: numpy_helper.to_array(i).shape for i in model.graph.initializer}
    macs = {}
    for node, name in conv_layers(model):
        conv = next(n for n in model.graph.node if n.name == node)
        out = shapes.get(conv.output[0], [])
        w = weights.get(conv.input[1], ())
        macs[name] = int(np.prod(out)) * int(np.prod(w[1:])) if out and w and all(out) else 0
    return macs


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    key = name.lower()
    if key not in CALIBRATION_METHODS:
        raise InputError(f"unknown calibration method {name!r}; choose {CALIBRATION_METHODS}")
    return {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[key]


class Quantizer:
    """Calibrates once (ranges cached in a temp file), then writes QDQ variants quickly."""

    def __init__(
        self,
        fp32_onnx: str | os.PathLike[str],
        batches: Sequence[np.ndarray],
        method: str,
        reduce_range: bool = True,
    ) -> None:
        import onnx

        self.source = Path(fp32_onnx)
        self.model = onnx.load(str(self.source))
        self.input_name = self.model.graph.input[0].name
        self.method = method.lower()
        self.reduce_range = reduce_range
        self.layers = conv_layers(self.model)
        self.macs = conv_macs(self.model)
        self._tmp = tempfile.TemporaryDirectory(prefix="pe-int8-")
        self._cache = Path(self._tmp.name) / "ranges.json"
        self._batches = list(batches)
        if not self._batches:
            raise InputError("INT8 calibration needs at least one image")
        self._count = 0

    def node_of(self, layer: str) -> str:
        for node, name in self.layers:
            if layer in (node, name):
                return node
        raise InputError(f"no convolution named {layer!r} (layers: {self.layer_names()})")

    def layer_names(self) -> list[str]:
        return [name for _, name in self.layers]

    def write(self, output: str | os.PathLike[str], float_layers: Sequence[str] = ()) -> Path:
        """Quantize every convolution except `float_layers` into `output` (a QDQ ONNX file)."""
        extra = {
            "ActivationSymmetric": True,  # zero point 0: what TensorRT accepts
            "WeightSymmetric": True,
            "OpTypesToExcludeOutputQuantization": ["Conv"],
        }
        if self.method == "percentile":
            extra["CalibPercentile"] = PERCENTILE
        reader = None if self._cache.is_file() else _Reader(self.input_name, self._batches)
        with _quiet():
            self._quantize(output, reader, float_layers, extra)
        return Path(output)

    def _quantize(self, output: Any, reader: Any, float_layers: Sequence[str], extra: dict) -> None:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        quantize_static(
            str(self.source),
            str(output),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            reduce_range=self.reduce_range,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=[self.node_of(n) for n in float_layers],
            calibrate_method=_method(self.method),
            extra_options=extra,
            calibration_cache_path=str(self._cache),
        )

    def variant(self, float_layers: Sequence[str] = ()) -> Path:
        """A QDQ variant in this quantizer's temp folder (for measurements)."""
        self._count += 1
        return self.write(Path(self._tmp.name) / f"v{self._count}.onnx", float_layers)

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> Quantizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stamp_metadata(path: Path, plan: Int8Plan, spec_json: str | None) -> None:
    """Record the plan (and keep the model spec) in the INT8 file's metadata_props."""
    import onnx

    from perceptual_edge.runtime.backend import SPEC_METADATA_KEY

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    if spec_json is not None:
        props[SPEC_METADATA_KEY] = spec_json
    props[INT8_METADATA_KEY] = plan.to_json()
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def int8_from_onnx(
    fp32_onnx: str | os.PathLike[str],
    output: str | os.PathLike[str],
    calibration: str | os.PathLike[str],
    *,
    images: int = DEFAULT_CALIBRATION_IMAGES,
    method: str = DEFAULT_METHOD,
    float_layers: Sequence[str] | None = None,
    target_db: float | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, Int8Plan, list[dict[str, Any]]]:
    """Write NAME.int8.onnx; returns its path, the plan and the per-layer sensitivity rows.

    `float_layers` None: decided by measurement (`int8_report.choose_float_layers`) so that the
    held-out photos reach `target_db` against the FP32 model.
    """
    from perceptual_edge.export.int8_report import choose_float_layers, held_out_psnr
    from perceptual_edge.fsutil import atomic_path, check_output
    from perceptual_edge.runtime.ort_backend import read_onnx_spec

    say = progress or (lambda line: None)
    out = check_output(output, overwrite)
    if images < 1:
        raise InputError("--calibration-images must be at least 1")
    names, batches = photo_batches(calibration, 0, images, CALIBRATION_SIZE)
    if not batches:
        raise InputError(f"{calibration}: no readable images for INT8 calibration")
    held_names, held = photo_batches(calibration, len(names), HELD_OUT_IMAGES, CALIBRATION_SIZE)
    if not held:  # a small folder: judge on the calibration photos rather than on nothing
        held_names, held = names[:HELD_OUT_IMAGES], batches[:HELD_OUT_IMAGES]
    say(f"calibrating INT8 ({method}) on {len(batches)} photos from {calibration} ...")
    spec_json = read_onnx_spec(fp32_onnx).to_json()
    with Quantizer(fp32_onnx, batches, method) as q:
        rows: list[dict[str, Any]] = []
        if float_layers is None:
            chosen, rows = choose_float_layers(q, held, target_db, say)
        else:
            chosen = [q.layer_names()[q.layer_names().index(n)] if n in q.layer_names() else n
                      for n in float_layers]  # fmt: skip
            for n in chosen:
                q.node_of(n)  # unknown names fail here, before any file is written
        with atomic_path(out, overwrite) as tmp:
            q.write(tmp, chosen)
            plan = Int8Plan(method, names, held_names, list(chosen))
            plan.held_out_psnr = held_out_psnr(fp32_onnx, tmp, held)
            stamp_metadata(Path(tmp), plan, spec_json)
    return out, plan, rows


def export_int8(
    checkpoint: Path,
    fp32_onnx: Path,
    output: Path,
    golden: Any,
    options: Int8Options,
    overwrite: bool,
    say: Callable[[str], None],
) -> tuple[Path, Any, str]:
    """`pe export --int8`: write and verify NAME.int8.onnx (golden inputs and real photos not
    used for calibration or for the layer choice); (path, verify report, text to print)."""
    from perceptual_edge.export.int8_report import format_report
    from perceptual_edge.export.verify import photo_reference, verify

    path, plan, rows = int8_from_onnx(
        fp32_onnx,
        output,
        options.calibration,
        images=options.images,
        method=options.method,
        float_layers=options.float_layers,
        target_db=options.target_db,
        overwrite=overwrite,
        progress=say,
    )
    say(f"verifying {path} on the golden inputs and real photos ...")
    start = len(plan.calibration_images) + len(plan.held_out_images)
    try:
        photos = photo_reference(checkpoint, options.calibration, start=start)
    except InputError:  # a small folder: every photo was used already; reuse the held-out ones
        photos = photo_reference(checkpoint, options.calibration, start=start - HELD_OUT_IMAGES)
    report = verify(golden, path, backend="onnxruntime", device="cpu", photos=photos)
    held = ", ".join(f"{v:.1f}" for v in plan.held_out_psnr)
    text = (
        f"INT8: {plan.method} calibration on {len(plan.calibration_images)} photos; "
        f"float layers: {', '.join(plan.float_layers) or 'none'}; "
        f"held-out PSNR vs FP32: {held} dB"
    )
    if options.report and rows:
        text += "\n" + format_report(rows)
    return path, report, text
