"""OpenVINO backend: Intel's edge runtime, for CPUs (any x86 with AVX2), integrated GPUs and NPUs.

Reads the same .onnx files as ONNX Runtime (FP32, FP16, and the INT8 QDQ file, which OpenVINO
turns into int8 convolutions). The arithmetic precision is asked for explicitly: on a CPU with
BF16 units OpenVINO computes in bf16 unless told f32, so `precision="fp32"` (and "auto") set the
inference-precision hint to f32, and "bf16" sets bf16 only where the device reports BF16 among
its optimisation capabilities. The precision the compiled model really uses is read back and
checked, so a request the device ignored is an error, never a silent fallback.

BF16 keeps the network's entry in f32: every layer before the first residual block (the 9x9 stem
and, in style networks, both strided convolutions) runs as its own f32 compiled model, the rest in
bf16, the tensor handed over in place. Measured on a trained style network (README, "CPU paths"):
all-bf16 gave 32.8 dB on a night photo (a few thousand pixels pushed across the output tanh's
steep part by rounding in the first layers), the f32 entry 49.0 dB, for 11% of the MACs at f32
(4.0x instead of 4.3x PyTorch eager at 512x512). `f32_entry=False` gives the all-bf16 model.

Compiled models are cached on disk (OpenVINO's CACHE_DIR; default
~/.cache/perceptual-edge/openvino, or $PE_OPENVINO_CACHE), so a second process skips the
compilation. One compiled model serves every input size (the ONNX file's height and width are
dynamic). Safe for one calling thread at a time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError, first_line
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY, cache_root, inference_error
from perceptual_edge.runtime.precision import check_precision, file_precision
from perceptual_edge.spec import ModelSpec

log = logging.getLogger("perceptual_edge.runtime")

DEVICES = ("CPU", "GPU", "NPU", "AUTO")
CACHE_ENV_VAR = "PE_OPENVINO_CACHE"
INSTALL_HINT = "install it with: pip install 'perceptual-edge[openvino]'"
# OpenVINO element type names of the inference-precision hint <-> our precision names.
HINT_OF = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
PRECISION_OF_TYPE = {"float32": "fp32", "f32": "fp32", "bfloat16": "bf16", "bf16": "bf16"}
PRECISION_OF_TYPE.update({"float16": "fp16", "f16": "fp16"})
# The first convolution of the residual trunk (style and SR networks alike): what feeds it is
# the entry that BF16 leaves in f32.
TRUNK_WEIGHT = "res.0.conv1.conv.weight"


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise UnavailableError(f"OpenVINO is not installed ({e}); {INSTALL_HINT}") from None
    return openvino


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.path.expanduser(os.environ[CACHE_ENV_VAR]))
    return cache_root() / "openvino"


def normalize_device(device: str | None) -> str:
    """'cpu' -> 'CPU'; None -> 'CPU'; 'GPU.1' stays; anything else is an InputError."""
    d = (device or "CPU").upper()
    if d.split(".")[0] not in DEVICES:
        raise InputError(f"unknown OpenVINO device {device!r}; choose {', '.join(DEVICES)}")
    return d


def device_capabilities(core: Any, device: str) -> list[str]:
    """The device's OPTIMIZATION_CAPABILITIES (e.g. FP32, BF16, INT8), [] where unknown."""
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # AUTO and some plugins do not report it
        return []


def compiled_precision(compiled: Any) -> str:
    """Our name for the inference precision a compiled model really uses."""
    value = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    for key, name in PRECISION_OF_TYPE.items():
        if key in value:
            return name
    return value


def read_spec(model: Any, path: Path) -> ModelSpec:
    """The ModelSpec from the ONNX metadata_props, which OpenVINO keeps in rt_info."""
    keys = ["framework", SPEC_METADATA_KEY]
    if not model.has_rt_info(keys):
        raise InputError(f"{path}: ONNX file has no perceptual-edge model spec in its metadata")
    return ModelSpec.from_json(model.get_rt_info(keys).astype(str))


class OpenVinoBackend:
    """One compiled OpenVINO model and its infer request."""

    max_input_hw: tuple[int, int] | None = None  # the graph's height and width are dynamic
    min_input_hw: tuple[int, int] | None = None
    max_batch: int | None = None

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        precision: str = "auto",
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        f32_entry: bool = True,
    ) -> None:
        ov = import_openvino()
        self.path = Path(path)  # checked by the Session (runtime.backend.check_model_path)
        self.device = normalize_device(device)
        precision = check_precision(precision)
        core = ov.Core()
        self._check_device(core)
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache)})
        except OSError as e:  # a read-only home: run, only slower to start
            log.warning("OpenVINO model cache disabled (%s: %s)", cache, e)
        try:
            model = core.read_model(str(self.path))
        except Exception as e:
            why = first_line(e)
            raise InputError(f"{self.path}: OpenVINO cannot read this file ({why})") from None
        self.spec = read_spec(model, self.path)
        config = self._config(core, precision, threads)
        parts = split_entry(ov, model) if precision == "bf16" and f32_entry else None
        if parts is None:
            self._stages = [self._compile(core, model, config)]
        else:
            entry = self._compile(core, parts[0], {**config, "INFERENCE_PRECISION_HINT": "f32"})
            self._stages = [entry, self._compile(core, parts[1], config)]
        self._compiled = self._stages[-1][0]
        self.precision = self._effective_precision(precision)
        self.entry_precision = compiled_precision(self._stages[0][0]) if parts else None
        self._request = self._stages[-1][1]
        self.name = f"openvino:{self.device}:{self.precision}"
        if parts is not None:
            self.name += "+f32-entry"

    def _compile(self, core: Any, model: Any, config: dict[str, Any]) -> tuple[Any, Any]:
        try:
            compiled = core.compile_model(model, self.device, config)
        except Exception as e:
            raise UnavailableError(
                f"OpenVINO cannot compile {self.path.name} for {self.device} ({first_line(e)})"
            ) from None
        return compiled, compiled.create_infer_request()

    def _check_device(self, core: Any) -> None:
        available = [str(d) for d in core.available_devices]
        if self.device != "AUTO" and not any(d.startswith(self.device) for d in available):
            raise UnavailableError(
                f"OpenVINO has no {self.device} device here (available: {', '.join(available)})"
            )

    def _config(self, core: Any, precision: str, threads: int | None) -> dict[str, Any]:
        have = file_precision(self.path)
        if precision not in ("auto", "bf16") and have != precision:
            raise InputError(f"{self.path} is a {have} model, not {precision}")
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if precision == "bf16":
            if "BF16" not in device_capabilities(core, self.device):
                raise UnavailableError(
                    f"bf16: OpenVINO's {self.device} device has no BF16 arithmetic here "
                    "(needs AVX512_BF16 or AMX); use fp32 or int8"
                )
            config["INFERENCE_PRECISION_HINT"] = "bf16"
        elif self.device == "CPU" or precision == "fp32":
            # f32 for the float parts of every file: OpenVINO's CPU default is bf16 where the
            # CPU has it, which would change the numbers behind the user's back.
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads and self.device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(threads)
        return config

    def _effective_precision(self, requested: str) -> str:
        try:
            used = compiled_precision(self._compiled)
        except Exception:  # AUTO does not always expose it
            used = "fp32" if requested in ("auto", "fp32", "int8") else requested
        if requested == "bf16" and used != "bf16":
            raise UnavailableError(f"OpenVINO compiled {self.path.name} in {used}, not bf16")
        have = file_precision(self.path)
        return have if have in ("int8", "fp16") and used == "fp32" else used

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        x = np.ascontiguousarray(batch, dtype=np.float32)
        try:
            first = self._stages[0][1]
            first.infer({0: x}, share_inputs=True)
            previous = first
            for _, request in self._stages[1:]:  # the entry's output is the body's input
                request.set_input_tensor(previous.get_output_tensor(0))
                request.infer()
                previous = request
        except Exception as e:  # a shape the graph rejects, an allocation that failed
            raise inference_error(self.path, x.shape, e) from None
        # The request reuses its output buffer on the next call: copy it out.
        return np.array(previous.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def close(self) -> None:
        self._stages = []
        self._request = None
        self._compiled = None


def split_entry(ov: Any, model: Any) -> tuple[Any, Any] | None:
    """(entry, body): the graph up to the input of the first residual block, and the rest with
    that tensor as its one parameter; None where the graph has no such block (or the rest still
    needs the original input), and the model then runs whole."""
    import openvino.opset13 as ops

    def cut_of(m: Any) -> Any:
        for op in m.get_ordered_ops():
            if op.get_type_name() != "Convolution":
                continue
            if op.input(1).get_source_output().get_node().get_friendly_name() != TRUNK_WEIGHT:
                continue
            source = op.input(0).get_source_output()
            if source.get_node().get_type_name() == "Pad":  # reflection padding of that conv
                source = source.get_node().input(0).get_source_output()
            return source
        return None

    cut = cut_of(model)
    if cut is None:
        return None
    entry = ov.Model([cut], model.get_parameters(), "entry")
    rest = model.clone()
    cut2 = cut_of(rest)
    mid = ops.parameter(cut2.get_partial_shape(), cut2.get_element_type(), name="entry_output")
    for target in list(cut2.get_target_inputs()):
        target.replace_source_output(mid.output(0))
    try:
        body = ov.Model(rest.get_results(), [mid], "body")
    except Exception as e:  # a layer past the cut still reads the network's input
        log.info("bf16: running %s whole (%s)", model.get_friendly_name(), first_line(e))
        return None
    return entry, body


def openvino_devices() -> dict[str, Any]:
    """For `pe doctor`: OpenVINO's version, devices and each device's capabilities."""
    try:
        ov = import_openvino()
        core = ov.Core()
        devices = {}
        for d in core.available_devices:
            try:
                full = str(core.get_property(d, "FULL_DEVICE_NAME"))
            except Exception:
                full = str(d)
            devices[str(d)] = {"name": full, "capabilities": device_capabilities(core, d)}
    except Exception as e:  # UnavailableError, or a broken plugin install
        return {"ok": False, "error": first_line(e)}
    return {"ok": True, "version": ov.get_version(), "devices": devices}
