"""TensorRT backend (TensorRT >= 10, named-tensor API).

An engine is the raw plan (trtexec and Triton load it as is) plus a sidecar `<engine>.json`
written at export: {spec, profile {min, opt, max as [N, C, H, W]}, precision,
tensorrt_version, gpu {name, compute_capability}, onnx_sha256}. The sidecar is checked against
this machine BEFORE the plan is deserialised, because a plan built for another GPU model or
TensorRT version fails in obscure ways (or not at all) when loaded.

Any other plan runs too (one built by the printed trtexec command, by Polygraphy, by hand):
tensor names, dtypes and the optimisation profile are always read from the engine itself, and
the model contract (ModelSpec) comes from `spec=` (an .onnx, a sidecar or a spec .json) or from
the ONNX file beside the plan (w.fp16.engine -> w.fp16.onnx, then w.onnx). What is assumed is
logged as a warning: the TensorRT version and GPU are then not checked before loading, and the
precision is the ONNX file's.

Per call: the input shape is set inside the optimisation profile, device buffers and pinned
host buffers are reused while the shape stays the same, copies and execution are queued on one
CUDA stream. Device arrays (`__cuda_array_interface__`: CuPy, PyTorch CUDA tensors, Numba; or
DLPack with a CUDA device) are bound directly, without a host round trip, once our stream waits
on the stream that produced them (see runtime.cuda_mem); one on another GPU is refused. One
calling thread per backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.fsutil import check_input
from perceptual_edge.runtime.cuda_mem import (
    CudaApi,
    DeviceInput,
    device_input,
    is_device_array,
    load_cuda,
)
from perceptual_edge.runtime.trt_sidecar import (
    UNKNOWN,
    check_engine_compat,
    contract_without_sidecar,
    read_sidecar,
    sidecar_path,
)

log = logging.getLogger("perceptual_edge.runtime")


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except Exception as e:  # ImportError, or the registry stub failing at import
        raise UnavailableError(
            f"TensorRT is not usable here ({type(e).__name__}: {e}); install it on a machine "
            "with an NVIDIA GPU (pip install 'perceptual-edge[cuda13]', README: GPU stack) or "
            "run the .onnx file"
        ) from None
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise UnavailableError(
            f"TensorRT {trt.__version__} is too old; perceptual-edge needs >= 10"
        )
    return trt


def _device_index(device: str | None) -> int:
    if device in (None, "auto", "cuda", "gpu", "tensorrt"):
        return 0
    assert device is not None
    name, _, index = device.lower().partition(":")
    if name in ("cuda", "gpu", "tensorrt") and index.isdigit():
        return int(index)
    raise InputError(f"a TensorRT engine runs on a CUDA GPU; device {device!r} is not one")


class TrtBackend:
    max_input_hw: tuple[int, int] | None  # the optimisation profile's largest (H, W)
    min_input_hw: tuple[int, int] | None  # and its smallest: the Session pads up to it
    max_batch: int | None

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        cuda: CudaApi | None = None,
        cuda_binding: str | None = None,
        allow_other_gpu: bool = False,
        spec: Any = None,
    ) -> None:
        p = check_input(path, "a model file")
        index = self._device_index = _device_index(device)
        # A bad sidecar is an error even before TensorRT is imported; no sidecar is fine.
        beside = sidecar_path(p).is_file()
        sidecar = read_sidecar(p) if beside else contract_without_sidecar(p, spec)
        if beside and spec is not None:
            log.warning("%s: its sidecar gives the model contract; spec=%s is not used", p, spec)
        self.checked = sidecar.tensorrt_version != UNKNOWN  # a sidecar (beside or given)
        trt = import_tensorrt()
        self.path, self.sidecar, self.spec = p, sidecar, sidecar.spec
        self.precision = sidecar.precision
        self._trt = trt
        self._cuda = cuda or load_cuda(index, cuda_binding)
        self._stream = None
        self._shape: tuple[int, ...] | None = None  # shape the buffers below were made for
        self._d_in = self._d_out = 0
        self._h_in: np.ndarray | None = None
        self._h_out: np.ndarray | None = None
        try:
            if self.checked:
                info = self._cuda.device_info()
                check_engine_compat(sidecar, trt.__version__, info, allow_other_gpu)
            self._load()
        except BaseException:
            self.close()
            raise
        self.name = f"tensorrt:{sidecar.precision}:{self._cuda.name}"

    def _load(self) -> None:
        trt, p = self._trt, self.path
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(p.read_bytes())
        if self._engine is None:
            why = (
                "corrupt plan?"
                if self.checked
                else (
                    "corrupt, or built by another TensorRT version or for another GPU: without a "
                    "sidecar that is not known before loading"
                )
            )
            raise InputError(f"{p}: TensorRT could not deserialise this engine ({why})")
        self._input, self._output = self._io_names()
        self._in_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._input)))
        self._out_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._output)))
        pmin, _, pmax = self._engine.get_tensor_profile_shape(self._input, 0)
        self.profile_min, self.profile_max = tuple(pmin), tuple(pmax)
        self.max_input_hw = (int(pmax[2]), int(pmax[3]))
        self.min_input_hw = (int(pmin[2]), int(pmin[3]))
        self.max_batch = int(pmax[0])
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise UnavailableError(f"{p}: TensorRT could not create an execution context")
        self._stream = self._cuda.stream_create()

    def _io_names(self) -> tuple[str, str]:
        mode = self._trt.TensorIOMode
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(f"{self.path}: expected one input and one output, got {names}")
        return inputs[0], outputs[0]

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        lo, hi = self.profile_min, self.profile_max
        if len(shape) != 4 or any(not (a <= s <= b) for s, a, b in zip(shape, lo, hi, strict=True)):
            raise InputError(
                f"input shape {shape} is outside the engine's optimisation profile "
                f"(min {list(lo)}, max {list(hi)}); use tiling or rebuild with a larger profile"
            )

    def _prepare(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Set the input shape and (re)allocate buffers when it changed; the output shape."""
        if shape != self._shape:
            self._free_buffers()
            if not self._context.set_input_shape(self._input, shape):
                raise InputError(f"TensorRT rejected input shape {shape}")
            out_shape = tuple(self._context.get_tensor_shape(self._output))
            self._h_in = self._cuda.alloc_pinned(shape, self._in_dtype)
            self._h_out = self._cuda.alloc_pinned(out_shape, self._out_dtype)
            self._d_in = self._cuda.alloc(self._h_in.nbytes)
            self._d_out = self._cuda.alloc(self._h_out.nbytes)
            self._shape = shape
        assert self._h_out is not None
        return self._h_out.shape

    def _bind(self, x: Any, dtype: np.dtype, shape: tuple[int, ...]) -> DeviceInput:
        """A device array ready for TensorRT's stream: on this GPU, and with our stream waiting
        for the work its producer queued on its own stream."""
        handle = self._cuda.stream_handle(self._stream)
        try:
            d = device_input(x, dtype, shape, consumer_stream=handle)
        except ValueError as e:
            raise InputError(str(e)) from None
        where = d.device if d.device is not None else self._cuda.pointer_device(d.pointer)
        if where != self._device_index:
            held = f"GPU {where}" if where >= 0 else "not in CUDA device memory"
            raise InputError(
                f"device array is {'on ' if where >= 0 else ''}{held}, but this engine runs on "
                f"GPU {self._device_index}: move it there (e.g. tensor.to('cuda:"
                f"{self._device_index}')) or open the model with device='cuda:{max(where, 0)}'"
            )
        if d.stream is not None:
            self._cuda.stream_wait(self._stream, d.stream)
        return d

    def _execute(self, in_ptr: int, out_ptr: int) -> None:
        self._context.set_tensor_address(self._input, in_ptr)
        self._context.set_tensor_address(self._output, out_ptr)
        if not self._context.execute_async_v3(self._cuda.stream_handle(self._stream)):
            raise InputError("TensorRT failed to enqueue the inference (see its log above)")

    def infer(self, batch: Any) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW) float32
        """A host (numpy) or device (`__cuda_array_interface__`) batch -> host float32."""
        shape = tuple(int(s) for s in batch.shape)
        self._check_shape(shape)
        self._prepare(shape)
        assert self._h_in is not None and self._h_out is not None
        if is_device_array(batch):
            inp = self._bind(batch, self._in_dtype, shape)
            in_ptr = inp.pointer
        else:
            np.copyto(self._h_in, batch, casting="same_kind")
            self._cuda.htod_async(self._d_in, self._h_in, self._stream)
            in_ptr = self._d_in
        self._execute(in_ptr, self._d_out)
        self._cuda.dtoh_async(self._h_out, self._d_out, self._stream)
        self._cuda.stream_sync(self._stream)
        return self._h_out.astype(np.float32, copy=True)  # the pinned buffer is reused

    def infer_device(self, batch: Any, out: Any) -> Any:
        """Device batch -> device `out` (both `__cuda_array_interface__`), no host copies."""
        shape = tuple(int(s) for s in batch.shape)
        self._check_shape(shape)
        out_shape = self._prepare(shape)
        inp = self._bind(batch, self._in_dtype, shape)
        # The output too: its producer may still be reading or writing it on its own stream.
        res = self._bind(out, self._out_dtype, tuple(out_shape))
        self._execute(inp.pointer, res.pointer)
        self._cuda.stream_sync(self._stream)
        return out

    def _free_buffers(self) -> None:
        for ptr in (self._d_in, self._d_out):
            if ptr:
                self._cuda.free(ptr)
        for arr in (self._h_in, self._h_out):
            if arr is not None:
                self._cuda.free_pinned(arr)
        self._d_in = self._d_out = 0
        self._h_in = self._h_out = None
        self._shape = None

    def close(self) -> None:
        if getattr(self, "_cuda", None) is None:
            return
        self._free_buffers()
        if getattr(self, "_stream", None) is not None:
            self._cuda.stream_destroy(self._stream)
            self._stream = None
        # Context before engine before runtime: TensorRT's documented destruction order.
        self._context = None
        self._engine = None
        self._runtime = None
        self._cuda.close()
        self._cuda = None  # type: ignore[assignment]
