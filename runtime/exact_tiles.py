"""Exact tiled inference: tiles whose output equals the whole-image run's, in bounded memory.

Runs the segment program that `pe export` writes beside the ONNX (`NAME.segments/`, made by
perceptual_edge.export.segments): the network one convolution at a time, each over the whole
image in tiles, its output kept whole (in memory, or in a temporary file when large), and the
instance-norm statistics of that output summed in float64 over every tile before the next step
uses them. Each convolution reads its input with exactly its own kernel's halo, the reflection
padding gathered at the image border only and the x2 upsampling gathered by index, so every
value is the one the whole-image run computes, up to float rounding (measured >= 50 dB PSNR
against the untiled run for every network and tile size: tests/benchmarks/runtime_tiling.py).

Memory: the tiles of one step, one band of rows (tile rows x the full width) of its input and
output, and the stored activations; an activation larger than the in-memory budget
($PE_TILE_MEMORY_MB, default 512 in all) goes to a temporary file in $PE_TILE_TMPDIR (default:
the system's) through positioned reads and writes, so it sits in the page cache, not in the
process. Compute: the untiled network's plus the halos (a few pixels per step).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime.tile_stores import TMPDIR_ENV, ArrayBuffer, Store

PLAN_VERSION = 1
MEMORY_ENV = "PE_TILE_MEMORY_MB"
BAND_BYTES = 160 << 20
Conv = Callable[[np.ndarray], np.ndarray]  # (1, Cin, h, w) float32 -> (1, Cout, h', w')


def segments_for(model_path: str | Path) -> Path | None:
    """The `NAME.segments/` folder of a model file (wave.onnx, wave.fp16.onnx, wave.engine all
    map to wave.segments/), or None if there is none."""
    from perceptual_edge.runtime.precision import base_stem

    p = Path(model_path)
    stem = base_stem(p) if p.suffix.lower() == ".onnx" else p.name.split(".")[0]
    folder = p.with_name(f"{stem}.segments")
    return folder if (folder / "plan.json").is_file() else None


# ------------------------------------------------------------------------ index arithmetic


def _reflect(q: np.ndarray, length: int) -> np.ndarray:
    q = np.where(q < 0, -q, q)
    return np.where(q >= length, 2 * (length - 1) - q, q)


def source_indices(
    j0: int, j1: int, length: int, kernel: int, stride: int, up: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Along one axis: the source indices an output range [j0, j1) of one convolution reads
    (its reflection padding and x2 upsampling resolved), and for `zeros` upsampling (a
    transposed convolution) the mask of the positions that are real pixels, not inserted zeros.
    `length` is the source's length."""
    pad = kernel // 2
    q = np.arange(stride * j0 - pad, stride * (j1 - 1) - pad + kernel)
    if up is None:
        return _reflect(q, length), None
    if up == "nearest":
        return _reflect(q, 2 * length) // 2, None
    if up == "zeros":  # z[m] = x[m / 2] for even m inside the image, else 0
        real = (q >= 0) & (q < 2 * length) & (q % 2 == 0)
        return np.clip(q // 2, 0, length - 1), real
    raise InputError(f"segments: unknown upsampling {up!r}")


def output_length(length: int, stride: int, up: str | None) -> int:
    n = 2 * length if up else length
    return -(-n // stride)


# ------------------------------------------------------------------------ the program


class SegmentProgram:
    """A loaded `NAME.segments/` folder; `run` takes one padded image at a time."""

    def __init__(self, folder: str | Path, open_conv: Callable[[Path], Conv]) -> None:
        self.folder = Path(folder)
        try:
            plan = json.loads((self.folder / "plan.json").read_text())
            with np.load(self.folder / "norms.npz", allow_pickle=False) as z:
                self.norms = {k: np.asarray(z[k], np.float64) for k in z.files}
        except (OSError, ValueError) as e:
            raise InputError(f"{self.folder}: unreadable segment program ({e})") from None
        if plan.get("version") != PLAN_VERSION:
            raise InputError(
                f"{self.folder}: segment program version {plan.get('version')}, this runtime "
                f"reads {PLAN_VERSION}; export the model again"
            )
        self.plan = plan
        self.scale = int(plan["scale"])
        self.steps: list[dict[str, Any]] = plan["steps"]
        self._open_conv = open_conv
        self._convs: dict[str, Conv] = {}

    def conv(self, graph: str) -> Conv:
        if graph not in self._convs:
            path = self.folder / graph
            if not path.is_file():
                raise InputError(f"{self.folder}: missing {graph}; export the model again")
            self._convs[graph] = self._open_conv(path)
        return self._convs[graph]

    def run(
        self, image: np.ndarray, out: np.ndarray, tile: int, memory_mb: float | None = None
    ) -> None:
        """image: (3, H, W) uint8 or float32 (padded to the network's multiple); out: the
        (3, sH, sW) array (float32) the network's output is written into; activations over
        `memory_mb` (default $PE_TILE_MEMORY_MB, 512) in all go to a temporary file."""
        if memory_mb is None:
            memory_mb = float(os.environ.get(MEMORY_ENV, "512"))
        memory = int(memory_mb * 2**20)
        store = Store(memory, os.environ.get(TMPDIR_ENV) or None)
        stats: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        store.buffers["input"] = ArrayBuffer(image)
        try:
            for step in self.steps:
                op = step["op"]
                if op == "conv":
                    self._conv_step(step, store, stats, out, tile)
                elif op == "norm":
                    self._norm_step(step, store, stats, tile)
                elif op == "free":
                    for name in step["bufs"]:
                        store.free(name)
                elif op != "output":
                    raise InputError(f"{self.folder}: unknown step {op!r}")
        finally:
            store.buffers.pop("input", None)
            store.buffers.pop("output", None)
            store.close()

    def _conv_step(
        self, step: dict[str, Any], store: Store, stats: dict, out: np.ndarray, tile: int
    ) -> None:
        src = store.buffers[step["src"]]
        _, hs, ws = src.shape
        k, s, up = step["kernel"], step["stride"], step["up"]
        ho, wo = output_length(hs, s, up), output_length(ws, s, up)
        cout = step["channels"]
        final = step.get("post") is not None
        if final:
            if out.shape != (cout, ho, wo):
                raise InputError(f"segments: output {out.shape}, expected {(cout, ho, wo)}")
            dst: Any = ArrayBuffer(out)
            store.buffers["output"] = dst
        else:
            dst = store.new(step["dst"], (cout, ho, wo))
        conv = self.conv(step["graph"])
        cols = [(i0, min(i0 + tile, wo)) for i0 in range(0, wo, tile)]
        col_idx = [source_indices(i0, i1, ws, k, s, up) for i0, i1 in cols]
        s1 = np.zeros(cout, np.float64)
        s2 = np.zeros(cout, np.float64)
        direct = isinstance(dst, ArrayBuffer)  # write tiles in place, no band copy
        # A band of output rows reads its input rows over the full width (and holds its output
        # rows when they go to a file): at most BAND_BYTES, so an 8K image's band is shorter
        # than its tiles are wide.
        cin = src.shape[0]
        per_row = 4 * (cin * ws * s / (2 if up else 1) + (0 if direct else cout * wo))
        band_rows = int(max(8, min(tile, BAND_BYTES // per_row)))
        for j0 in range(0, ho, band_rows):
            j1 = min(j0 + band_rows, ho)
            rows, rmask = source_indices(j0, j1, hs, k, s, up)
            lo, hi = int(rows.min()), int(rows.max()) + 1
            band = src.read_rows(lo, hi)  # (Cin, hi - lo, Ws)
            out_band = dst.data[:, j0:j1] if direct else np.empty((cout, j1 - j0, wo), np.float32)
            for (i0, i1), (cidx, cmask) in zip(cols, col_idx, strict=True):
                x = _gather(band, rows - lo, cidx)  # (1, Cin, h + k - 1, w + k - 1)
                if rmask is not None and cmask is not None:
                    x *= (rmask[:, None] & cmask[None, :]).astype(np.float32)
                y = conv(x)[0]  # (Cout, h, w)
                if y.shape != (cout, j1 - j0, i1 - i0):
                    raise InputError(f"segments: {step['graph']} returned {y.shape}")
                out_band[:, :, i0:i1] = y
                if not final:
                    s1 += y.sum(axis=(1, 2), dtype=np.float64)
                    s2 += np.einsum("chw,chw->c", y, y, dtype=np.float64)
            if final:
                _post(out_band, step["post"])
            if not direct:
                dst.write_rows(j0, out_band)
        stats[step["dst"]] = (s1, s2, ho * wo)

    def _norm_step(self, step: dict[str, Any], store: Store, stats: dict, tile: int) -> None:
        i = step["norm"]
        weight, bias = self.norms[f"weight{i}"], self.norms[f"bias{i}"]
        if step["kind"] == "instance":
            s1, s2, n = stats[step["buf"]]
            mean = s1 / n
            var = np.maximum(s2 / n - mean * mean, 0.0)  # the biased variance, as the layer
        else:
            mean, var = self.norms[f"mean{i}"], self.norms[f"var{i}"]
        scale = weight / np.sqrt(var + step["eps"])
        shift = (bias - mean * scale).astype(np.float32)[:, None, None]
        scale = scale.astype(np.float32)[:, None, None]
        buf = store.buffers[step["buf"]]
        into = store.buffers[step["into"]] if step.get("into") else None
        c, h, w = buf.shape
        rows = max(1, min(tile, (64 << 20) // (4 * c * w)))  # bands of <= 64 MiB
        for y0 in range(0, h, rows):
            y1 = min(y0 + rows, h)
            v = buf.read_rows(y0, y1)
            v = v * scale
            v += shift
            if step["relu"]:
                np.maximum(v, 0.0, out=v)
            if into is not None:
                v += into.read_rows(y0, y1)
                into.write_rows(y0, v)
            else:
                buf.write_rows(y0, v)


def _runs(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """(output offset, source start, length) of the runs of consecutive indices in idx."""
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(idx)]))
    return [(int(a), int(idx[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]


def _gather(band: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """band[:, rows][:, :, cols] as a contiguous float32 (1, C, len(rows), len(cols)), copied
    once: a tile is a plain block inside the image plus a few reflected rows and columns at its
    border, each copied as a block; upsampled indices (every one repeated) go through take."""
    rr, cr = _runs(rows), _runs(cols)
    if len(rr) * len(cr) > 256:  # nearest upsampling: runs of one
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        x = np.take(np.take(band[:, :, c0:c1], rows, axis=1), cols - c0, axis=2)
        return np.ascontiguousarray(x[None], dtype=np.float32)
    out = np.empty((1, band.shape[0], len(rows), len(cols)), np.float32)
    for ro, r0, rn in rr:
        for co, c0, cn in cr:
            out[0, :, ro : ro + rn, co : co + cn] = band[:, r0 : r0 + rn, c0 : c0 + cn]
    return out


def _post(band: np.ndarray, kind: str) -> None:
    """The output activation (train/layers.py `output_activation`, inference mode)."""
    if kind == "tanh":
        np.tanh(band, out=band)
        band += 1.0
        band *= 127.5
    elif kind == "clamp":
        np.clip(band, 0.0, 255.0, out=band)
    else:
        raise InputError(f"segments: unknown output activation {kind!r}")


# ------------------------------------------------------------------------ runners


_SHARED_ARENA = False


def _shared_cpu_arena(ort: Any) -> bool:
    """One CPU arena for all segment sessions (registered once per process): an arena per
    session would keep each graph's largest tile, and none makes every call map and fault in
    fresh pages (measured: 512-pixel tiles 2-3x slower than with an arena)."""
    global _SHARED_ARENA
    if not _SHARED_ARENA:
        try:
            info = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            # max_mem 0 (no limit), extend strategy 1 (kSameAsRequested: no doubling), defaults
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))
            _SHARED_ARENA = True
        except Exception:  # an older build without the API: per-session arenas then
            return False
    return True


def ort_conv_opener(providers: list[Any] | None = None) -> Callable[[Path], Conv]:
    """Each segment graph as an ONNX Runtime session, all sharing one CPU memory arena."""
    from perceptual_edge.runtime.ort_backend import import_onnxruntime, log_severity

    ort = import_onnxruntime()
    shared = _shared_cpu_arena(ort)

    def open_conv(path: Path) -> Conv:
        opts = ort.SessionOptions()
        if shared:
            opts.add_session_config_entry("session.use_env_allocators", "1")
        opts.log_severity_level = log_severity()
        sess = ort.InferenceSession(
            str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"]
        )
        return lambda x: sess.run(["y"], {"x": x})[0]

    return open_conv


def openvino_conv_opener(device: str = "CPU") -> Callable[[Path], Conv]:
    try:
        import openvino as ov
    except ImportError as e:
        raise UnavailableError(f"OpenVINO is not installed ({e})") from None
    core = ov.Core()

    def open_conv(path: Path) -> Conv:
        compiled = core.compile_model(str(path), device, {"INFERENCE_PRECISION_HINT": "f32"})
        request = compiled.create_infer_request()

        def run(x: np.ndarray) -> np.ndarray:
            return np.array(request.infer({0: x})[compiled.output(0)], copy=True)

        return run

    return open_conv


def opener_for(backend_name: str) -> Callable[[Path], Conv]:
    """Where a Session's segment graphs run, from its backend's name: OpenVINO's on the same
    OpenVINO device; ONNX Runtime's on the same provider (CUDA for the TensorRT provider, which
    would build an engine per graph and shape); a TensorRT engine's or the PyTorch reference's
    through ONNX Runtime, on CUDA where its build has it."""
    kind, _, rest = backend_name.partition(":")
    if kind == "openvino":
        return openvino_conv_opener(rest.split(":")[0] or "CPU")
    if kind in ("onnxruntime", "tensorrt", "torch"):
        from perceptual_edge.runtime.ort_backend import import_onnxruntime

        cuda = "CUDAExecutionProvider"
        gpu = (
            rest != "CPUExecutionProvider"
            and cuda in import_onnxruntime().get_available_providers()
        )
        return ort_conv_opener([cuda, "CPUExecutionProvider"] if gpu else None)
    raise InputError(f"exact tiling: no runner for backend {backend_name!r}")


def to_image(out: np.ndarray, rows: int = 256) -> np.ndarray:
    """(3, H, W) float32 0..255 -> (H, W, 3) uint8, rounded, in row chunks (no full-size
    float temporaries)."""
    c, h, w = out.shape
    img = np.empty((h, w, c), np.uint8)
    for y0 in range(0, h, rows):
        part = np.rint(out[:, y0 : y0 + rows])
        np.clip(part, 0.0, 255.0, out=part)
        img[y0 : y0 + rows] = part.transpose(1, 2, 0)
    return img


def run_exact(
    program: SegmentProgram, batch: np.ndarray, tile: int, memory_mb: float | None = None
) -> np.ndarray:  # (N, 3, H, W) padded -> (N, 3, sH, sW) float32
    n, _, h, w = batch.shape
    s = program.scale
    out = np.empty((n, 3, h * s, w * s), np.float32)
    for i in range(n):
        program.run(batch[i], out[i], tile, memory_mb)
    return out
