"""Session: load a model artifact once, then run images or batches through it.

    with Session("wave.onnx") as s:
        out = s.run(image)                    # (H, W, 3) uint8 -> (H, W, 3) uint8 (x scale for SR)
        y = s.run(batch)                      # (N, 3, H, W) float32 0..255 -> float32
        big = s.run(photo, tile=512)          # bounded memory, the whole-image result

Any size in, same size out: inputs are reflect-padded to the network's multiple (and minimum
size) and the output is cropped back. An input larger than a TensorRT engine's optimisation
profile is tiled automatically (a warning says so, and `last_run_tiled` is set).

Tiles are exact when the model has its segment program beside it (`NAME.segments/`, written by
`pe export`; runtime/exact_tiles.py): the output equals the untiled run's, instance norm
included. Without it, tiles are blended with feathered overlaps (runtime/tiling.py), which an
instance-norm network renders differently from the whole image (a warning says so).

Threads: a Session is safe to use from one thread at a time; use one Session per thread for
parallel inference. Loading (file -> backend) is kept apart from running (backend -> outputs);
`close()` (or leaving the `with` block) frees the backend's device memory.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, OutOfMemoryError, UnavailableError
from perceptual_edge.image import batch_to_image, crop_to, image_to_batch, pad_to_multiple
from perceptual_edge.runtime import tiling
from perceptual_edge.runtime.backend import Backend, artifact_kind, check_model_path
from perceptual_edge.runtime.precision import artifact_for, check_precision
from perceptual_edge.spec import ModelSpec

log = logging.getLogger("perceptual_edge.runtime")

# The tile a whole-image run that ran out of memory is retried in: an 8K image in 512-pixel
# exact tiles peaks at 1.87 GiB on ONNX Runtime CPU (README, Run).
OOM_TILE = 512
# ... keeping at most this many MiB of activations in memory (the rest in a temporary file):
# memory is known to be short then ($PE_TILE_MEMORY_MB, 512 by default, is for planned runs).
OOM_MEMORY_MB = 64.0
BACKENDS = ("auto", "onnxruntime", "ort", "openvino", "ov", "tensorrt", "trt")


def open_backend(
    path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    precision: str = "auto",
    **options: Any,
) -> Backend:
    """The backend table: file type and `backend` name -> one backend class. `path` is the
    file to load as is (`Session` resolves a precision's sibling file first)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    p = check_model_path(path)
    kind = artifact_kind(p)
    if kind == "checkpoint":
        raise InputError(
            f"{p}: a PyTorch checkpoint; the torch-free runtime runs .onnx and .engine files "
            "(export it with `pe export`, or open it with perceptual_edge.models.open_model)"
        )
    precision = check_precision(precision)
    if kind == "engine" and precision != "auto":
        raise InputError("--precision applies to .onnx files; an engine's is fixed at its build")
    if backend in ("openvino", "ov") and kind == "onnx":
        from perceptual_edge.runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(p, device=device, precision=precision, **options)
    if backend in ("auto", "onnxruntime", "ort") and kind == "onnx":
        from perceptual_edge.runtime.ort_backend import OrtBackend

        if precision == "bf16":
            raise UnavailableError("bf16 runs through OpenVINO only (--backend openvino)")
        return OrtBackend(p, device=device, **options)
    if backend in ("auto", "tensorrt", "trt") and kind == "engine":
        from perceptual_edge.runtime.trt_backend import TrtBackend

        return TrtBackend(p, device=device, **options)
    raise InputError(f"backend {backend!r} cannot load a {kind} file ({p})")


class Session:
    def __init__(
        self,
        path: str | Path,
        backend: str = "auto",
        device: str | None = None,
        precision: str = "auto",
        **options: Any,
    ) -> None:
        # e.g. wave.onnx with precision int8 -> wave.int8.onnx (see runtime/precision.py)
        path = artifact_for(path, precision)
        self._attach(Path(path), open_backend(path, backend, device, precision, **options))

    @classmethod
    def from_backend(cls, backend: Backend, path: str | Path) -> Session:
        """A Session over a backend opened elsewhere (e.g. the PyTorch reference, which the
        torch-free runtime cannot import): same padding, tiling and conversions."""
        session = cls.__new__(cls)
        session._attach(Path(path), backend)
        return session

    def _attach(self, path: Path, backend: Backend) -> None:
        self.path = path
        self._backend: Backend | None = backend
        self.spec: ModelSpec = backend.spec
        # What the numbers are computed in (OpenVINO's bf16 hint can differ from the file's).
        self.precision: str = backend.precision
        self.last_run_tiled = False  # whether the last run() was tiled (asked for or automatic)
        self.last_run_exact = False  # whether those tiles ran the exact segment program
        self._program: Any = None  # the segment program: None = not looked for, False = none
        self._warned_unit_range = False
        log.info("session %s: backend %s", path.name, backend.name)

    @property
    def backend_name(self) -> str:
        return self._require().name

    @property
    def max_input_hw(self) -> tuple[int, int] | None:
        """The largest (H, W) the backend accepts (a TensorRT profile's max), or None if any."""
        return self._require().max_input_hw

    @property
    def min_input_hw(self) -> tuple[int, int] | None:
        """The smallest (H, W) the backend accepts (a TensorRT profile's min; smaller inputs are
        padded up to it and cropped back), or None if any."""
        return self._require().min_input_hw

    @property
    def max_batch(self) -> int | None:
        """The largest batch the backend accepts in one call, or None if unbounded."""
        return self._require().max_batch

    def _require(self) -> Backend:
        if self._backend is None:
            raise InputError("this Session is closed")
        return self._backend

    def _infer_padded(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32, any size -> (N, 3, sH, sW): pad, infer in allowed chunks, crop."""
        backend = self._require()
        # Pad small inputs up to what the network needs and what the backend accepts: a
        # TensorRT profile's minimum (64 by default) is larger than the network's own (16).
        min_side = max(self.spec.min_size, *(backend.min_input_hw or (0,)))
        padded, (h, w) = pad_to_multiple(
            np.asarray(batch, dtype=np.float32), self.spec.multiple, min_side
        )
        limit = self.max_batch or padded.shape[0]
        if padded.shape[0] <= limit:
            out = backend.infer(padded)
        else:
            out = np.concatenate(
                [backend.infer(padded[i : i + limit]) for i in range(0, padded.shape[0], limit)]
            )
        s = self.spec.scale
        return crop_to(out, h * s, w * s)

    def _whole_or_exact(
        self, whole: Callable[[], np.ndarray], exact: Callable[..., np.ndarray]
    ) -> np.ndarray:
        """whole(), and, when the backend runs out of memory and the segment program is beside
        the model, exact(program, tile): the same picture in bounded memory, with a warning.
        Without the program the one-line OutOfMemoryError (exit 6, "use --tile") stands. The
        retry runs after the except block, so that the failed run's frames (and the arrays
        they hold) are gone first."""
        from perceptual_edge.runtime import exact_tiles

        try:
            return whole()
        except OutOfMemoryError as e:
            if exact_tiles.segments_for(self.path) is None:
                raise
            tile = tiling.round_tile(OOM_TILE, self.spec)
            h, w = e.hw or (0, 0)
            log.warning(
                "%s: memory ran out running a %dx%d input whole; running it in exact "
                "%d-pixel tiles instead (the same picture)",
                self.path.name,
                w,
                h,
                tile,
            )
        self.last_run_tiled = True
        return exact(self._exact_program(), tile, OOM_MEMORY_MB)

    def _check_values(self, batch: np.ndarray) -> None:
        """NaN or Inf in a float batch is an error (they would come out as NaN); a float batch
        whose values are all <= 1 is most likely 0..1 instead of 0..255: warned once."""
        if batch.dtype.kind != "f":
            return
        if not np.isfinite(batch).all():
            raise InputError("the batch contains NaN or Inf values; inputs are RGB in 0..255")
        if not self._warned_unit_range and 0.0 < float(batch.max()) <= 1.0:
            self._warned_unit_range = True
            msg = (
                "the float batch's values are all <= 1: inputs are RGB in 0..255 "
                "(multiply 0..1 images by 255)"
            )
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=4)

    def _exact_program(self) -> Any:
        """The segment program beside the model, opened on first use, or None (with a warning
        that blended tiles are approximate)."""
        if self._program is None:
            from perceptual_edge.runtime import exact_tiles

            folder = exact_tiles.segments_for(self.path)
            if folder is None:
                msg = (
                    f"{self.path.name}: no {self.path.name.split('.')[0]}.segments/ beside it, so "
                    "tiles are blended and normalised per tile (an instance-norm network then "
                    "renders them differently from the whole image); `pe export` writes it"
                )
                log.warning(msg)
                warnings.warn(msg, RuntimeWarning, stacklevel=4)
                self._program = False
            else:
                opener = exact_tiles.opener_for(self._require().name)
                self._program = exact_tiles.SegmentProgram(folder, opener)
        return self._program or None

    def _run_exact(
        self, program: Any, batch: np.ndarray, tile: int, memory_mb: float | None = None
    ) -> np.ndarray:
        """(N, 3, H, W) uint8/float -> (N, 3, sH, sW) float32 through the segment program."""
        from perceptual_edge.runtime.exact_tiles import run_exact

        padded, (h, w) = pad_to_multiple(batch, self.spec.multiple, self.spec.min_size)
        s = self.spec.scale
        self.last_run_exact = True
        return crop_to(run_exact(program, padded, tile, memory_mb), h * s, w * s)

    def _tile_plan(self, h: int, w: int, tile: int | None, tile_overlap: int | None) -> int | None:
        """The tile size to use for an h x w input, or None to run it whole."""
        max_hw = self.max_input_hw
        if tile is not None:
            t = tiling.round_tile(tile, self.spec)
            if max_hw is not None and t > min(max_hw):
                raise InputError(
                    f"tile {t} is larger than the engine's profile ({max_hw[0]}x{max_hw[1]})"
                )
            return t
        if not tiling.needs_tiling(h, w, max_hw, self.spec):
            return None
        assert max_hw is not None
        t = min(max_hw) - min(max_hw) % self.spec.multiple  # largest tile the profile accepts
        msg = (
            f"input {h}x{w} exceeds the engine's profile maximum {max_hw[0]}x{max_hw[1]}; "
            f"running it in {t}x{t} tiles"
        )
        log.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return t

    def run_batch(
        self, batch: np.ndarray, tile: int | None = None, tile_overlap: int | None = None
    ) -> np.ndarray:
        """(N, 3, H, W) float32 0..255, any H and W -> (N, 3, sH, sW) float32.

        With `tile`, the batch runs in overlapping tile x tile pieces blended with linear
        ramps (`tile_overlap` pixels; default tile/8). A CUDA device array
        (`__cuda_array_interface__` or DLPack) goes to the backend as is, without a host copy:
        it must already fit the network (multiple, profile) and the backend must take it.
        """
        shape = tuple(getattr(batch, "shape", ()))
        if len(shape) != 4 or shape[1] != 3:
            raise InputError(f"expected an (N, 3, H, W) batch, got shape {_shape(batch)}")
        if _is_device_array(batch):
            return self._require().infer(batch)  # type: ignore[return-value]
        if batch.shape[2] < 1 or batch.shape[3] < 1 or batch.shape[0] < 1:
            raise InputError(f"empty batch (shape {batch.shape})")
        self._check_values(batch)
        t = self._tile_plan(batch.shape[2], batch.shape[3], tile, tile_overlap)
        self.last_run_tiled = t is not None
        self.last_run_exact = False
        if t is None:
            return self._whole_or_exact(
                lambda: self._infer_padded(batch),
                lambda program, tile, memory_mb: self._run_exact(
                    program, np.asarray(batch, dtype=np.float32), tile, memory_mb
                ),
            )
        program = self._exact_program()
        if program is not None:
            return self._run_exact(program, np.asarray(batch, dtype=np.float32), t)
        return tiling.run_tiled(self._infer_padded, batch, self.spec, t, tile_overlap)

    def run(
        self, x: np.ndarray, tile: int | None = None, tile_overlap: int | None = None
    ) -> np.ndarray:
        """An (H, W, 3) uint8 image -> uint8 image, or an NCHW float batch -> float batch."""
        if not hasattr(x, "ndim"):
            raise InputError(f"expected a numpy array, got {type(x).__name__}")
        if x.ndim == 3:
            if x.dtype != np.uint8:
                raise InputError("an (H, W, 3) image must be uint8; pass floats as NCHW batches")
            if x.shape[2] != 3:
                raise InputError(f"expected an (H, W, 3) RGB image, got shape {x.shape}")
            if x.shape[0] < 1 or x.shape[1] < 1:
                raise InputError(f"empty image (shape {x.shape})")
            t = self._tile_plan(x.shape[0], x.shape[1], tile, tile_overlap)
            self.last_run_tiled = t is not None
            self.last_run_exact = False
            from perceptual_edge.runtime.exact_tiles import to_image

            def exact(program: Any, tile: int, memory_mb: float | None = None) -> np.ndarray:
                batch = x.transpose(2, 0, 1)[None]
                return to_image(self._run_exact(program, batch, tile, memory_mb)[0])

            if t is None:
                return self._whole_or_exact(
                    lambda: batch_to_image(self._infer_padded(image_to_batch(x))), exact
                )
            program = self._exact_program()
            if program is not None:
                return exact(program, t)
            return tiling.run_tiled_image(self._infer_padded, x, self.spec, t, tile_overlap)
        if x.ndim == 4:
            return self.run_batch(x, tile=tile, tile_overlap=tile_overlap)
        raise InputError(f"expected (H, W, 3) uint8 or (N, 3, H, W) float, got shape {x.shape}")

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._backend.name if self._backend is not None else "closed"
        return (
            f"Session({str(self.path)!r}, {state}, kind={self.spec.kind}, scale={self.spec.scale})"
        )


def _is_device_array(x: object) -> bool:
    from perceptual_edge.runtime.cuda_mem import is_device_array

    return is_device_array(x)


def _shape(x: object) -> object:
    return getattr(x, "shape", type(x).__name__)
