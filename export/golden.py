"""Golden files: deterministic inputs and the PyTorch reference outputs, for torch-free checks.

    NAME.golden.npz
        format      () int        file format version
        spec        () str        ModelSpec JSON of the checkpoint
        count       () int        number of cases
        input_K     (N, 3, H, W)  float32 0..255, natural-looking generated images
        output_K    (N, 3, sH, sW) float32, the checkpoint's output under the runtime contract

The reference outputs use the same pad-and-crop contract as the runtime Session (reflect-pad
to `spec.multiple` and `spec.min_size`, crop back), so any backend can be compared directly.
Readable with numpy alone (`allow_pickle=False`); `load_golden` never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perceptual_edge.errors import InputError, first_line
from perceptual_edge.fsutil import atomic_path, check_output
from perceptual_edge.image import crop_to, image_to_batch, pad_to_multiple
from perceptual_edge.samples import content_image
from perceptual_edge.spec import ModelSpec

GOLDEN_FORMAT = 1
# (batch, height, width) per case: a square, odd sizes, a batch of two; all inside the default
# TensorRT profile (>= 64 px for the style net). SR nets take the low-resolution side, so their
# cases are smaller (outputs are scale times larger).
STYLE_CASES = ((1, 256, 256), (1, 257, 381), (2, 96, 132), (1, 67, 101))
SR_CASES = ((1, 64, 64), (1, 67, 95), (2, 32, 48), (1, 17, 29))


@dataclass(frozen=True)
class Golden:
    spec: ModelSpec
    inputs: list[np.ndarray]  # each (N, 3, H, W) float32
    outputs: list[np.ndarray]  # each (N, 3, sH, sW) float32
    path: Path | None = None


def golden_inputs(
    spec: ModelSpec, cases: tuple[tuple[int, int, int], ...] | None = None
) -> list[np.ndarray]:
    """Deterministic photo-like batches for `spec` (the same on every machine)."""
    cases = cases or (SR_CASES if spec.kind == "sr" else STYLE_CASES)
    out = []
    for k, (n, h, w) in enumerate(cases):
        imgs = [image_to_batch(content_image(1000 + 10 * k + i, h, w)) for i in range(n)]
        out.append(np.concatenate(imgs, axis=0))  # (N, 3, H, W)
    return out


def reference_outputs(model, spec: ModelSpec, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run a torch module on each batch under the runtime's pad-and-crop contract."""
    import torch

    outs = []
    with torch.no_grad():
        for x in inputs:
            padded, (h, w) = pad_to_multiple(x, spec.multiple, spec.min_size)
            y = model(torch.from_numpy(np.ascontiguousarray(padded))).numpy()
            outs.append(np.ascontiguousarray(crop_to(y, h * spec.scale, w * spec.scale)))
    return outs


def save_golden(golden: Golden, output: str | os.PathLike[str], overwrite: bool = False) -> Path:
    out = check_output(output, overwrite)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(GOLDEN_FORMAT, dtype=np.int64),
        "spec": np.array(golden.spec.to_json()),
        "count": np.array(len(golden.inputs), dtype=np.int64),
    }
    for k, (x, y) in enumerate(zip(golden.inputs, golden.outputs, strict=True)):
        arrays[f"input_{k}"] = x.astype(np.float32)
        arrays[f"output_{k}"] = y.astype(np.float32)
    with atomic_path(out, overwrite) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return out


def golden_from_checkpoint(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    cases: tuple[tuple[int, int, int], ...] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write CKPT.golden.npz: generated inputs and the checkpoint's PyTorch outputs."""
    from perceptual_edge.train.checkpoint import load_checkpoint

    out = check_output(output, overwrite)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build()
    inputs = golden_inputs(ckpt.spec, cases)
    outputs = reference_outputs(model, ckpt.spec, inputs)
    return save_golden(Golden(ckpt.spec, inputs, outputs), out, overwrite)


def is_golden_file(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(".npz")


def load_golden(path: str | os.PathLike[str]) -> Golden:
    """Read a golden file with numpy only; every defect is one InputError line."""
    import zipfile

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            entries = set(z.files)
            for key in ("format", "spec", "count"):
                if key not in entries:
                    raise InputError(
                        f"{p}: not a perceptual-edge golden file (it has no '{key}' entry)"
                    )
            count = int(z["count"])
            needed = [f"{kind}_{k}" for k in range(count) for kind in ("input", "output")]
            for key in needed:
                if key not in entries:
                    raise InputError(f"{p}: golden file is incomplete (no '{key}' entry)")
            fmt = int(z["format"])
            if fmt > GOLDEN_FORMAT:
                raise InputError(
                    f"{p}: golden file format {fmt} is newer than this pe reads ({GOLDEN_FORMAT})"
                )
            spec = ModelSpec.from_json(str(z["spec"]))
            count = int(z["count"])
            inputs = [np.asarray(z[f"input_{k}"], dtype=np.float32) for k in range(count)]
            outputs = [np.asarray(z[f"output_{k}"], dtype=np.float32) for k in range(count)]
    except InputError:
        raise
    except KeyError as e:
        raise InputError(f"{p}: not a perceptual-edge golden file (missing {e})") from None
    except ValueError as e:
        if zipfile.is_zipfile(p) and "pickle" in str(e).lower():  # never take numpy's advice
            raise InputError(
                f"{p}: not a golden file: it holds pickled Python objects, which pe never loads"
            ) from None
        if not zipfile.is_zipfile(p):
            raise InputError(f"{p}: not a readable golden file (not an .npz archive)") from None
        raise InputError(f"{p}: not a readable golden file ({first_line(e)})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{p}: not a readable golden file ({first_line(e)})") from None
    for x, y in zip(inputs, outputs, strict=True):
        if x.ndim != 4 or y.ndim != 4 or y.shape[2:] != spec.output_size(*x.shape[2:]):
            raise InputError(f"{p}: golden file shapes do not fit its spec")
    return Golden(spec, inputs, outputs, p)
