"""Training data: any folder of images, a resumable deterministic sampler, style and SR batches.

- A folder is scanned recursively (`perceptual_edge.image.iter_image_files`); each file's header
  is opened once, and files Pillow cannot identify are skipped and counted. A file that passes
  the header check but fails to decode later (truncated) is also skipped: its slot in a batch
  is filled by the next readable file of the (fixed) file list, so batch sizes, data order and
  the ranks of a multi-process run never drift apart.
- Style batches: shorter side resized to `image_size` (Pillow bilinear, antialiased), then a
  centre crop to `image_size` x `image_size` (the paper: 256x256 COCO images).
- SR batches: a random `patch` x `patch` HR crop (the paper: 288). Images whose shorter side is
  smaller than the patch are upscaled (bicubic) until it fits, rather than skipped, so that small
  data sets (T91, Set14) still train. LR = Gaussian blur (sigma 1.0, 7x7 separable kernel from
  the exact Gaussian, reflect borders) of the HR patch, then Pillow's bicubic downsampling by
  the factor (Keys a=-0.5, antialiased: the kernel is widened by the factor, as MATLAB's
  `imresize` does; at the borders Pillow renormalises the weights where MATLAB mirrors), then
  rounded to 8 bits like a real LR image.
- Order: the permutation of epoch e is `numpy.random.default_rng([seed, e])`; a random crop
  uses `default_rng([seed, e, position])`. The sampler state (seed, epoch, position) is all a
  checkpoint needs to restore the exact data order; with K processes, rank r takes items
  [r*B, (r+1)*B) of every global batch of K*B items, so K processes of batch B see the same
  images per step as one process of batch K*B.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, PeError
from perceptual_edge.image import (
    gaussian_blur,
    iter_image_files,
    load_image,
    resize,
    resize_center_crop,
    shorter_side_size,
)

SR_BLUR_SIGMA = 1.0
# Holding out a few images for --sample-every only when the folder is big enough not to miss them.
HOLDOUT_COUNT = 4
HOLDOUT_MIN_FILES = 40


@dataclass
class ImageFolder:
    """The usable image files of a folder (sorted, recursive) and how many were skipped."""

    root: Path
    files: list[Path]
    skipped: int
    holdout: list[Path]

    def __len__(self) -> int:
        return len(self.files)


def _header_ok(path: Path) -> bool:
    from PIL import Image

    try:
        if path.stat().st_size == 0:
            return False
        with Image.open(path) as img:
            return img.width > 0 and img.height > 0
    except Exception:  # any failure to identify the file means "not usable", never fatal
        return False


def scan_folder(root: str | os.PathLike[str], holdout: bool = True) -> ImageFolder:
    """List the readable images under `root`; raise InputError if there are none."""
    p = Path(root)
    if not p.exists():
        raise InputError(f"data folder {p} does not exist")
    if not p.is_dir():
        raise InputError(f"--data {p}: not a folder")
    usable: list[Path] = []
    skipped = 0
    for f in iter_image_files(p):
        if _header_ok(f):
            usable.append(f)
        else:
            skipped += 1
    if not usable:
        extra = f" ({skipped} unreadable files skipped)" if skipped else ""
        raise InputError(f"data folder {p} has no usable images{extra}")
    held: list[Path] = []
    if holdout and len(usable) >= HOLDOUT_MIN_FILES:
        # Evenly spaced, so the held-out images are not all from one sub-folder.
        step = len(usable) // HOLDOUT_COUNT
        idx = {i * step for i in range(HOLDOUT_COUNT)}
        held = [usable[i] for i in sorted(idx)]
        usable = [f for i, f in enumerate(usable) if i not in idx]
    return ImageFolder(p, usable, skipped, held)


# ---------------------------------------------------------------------------- preprocessing


def make_lr(hr: np.ndarray, factor: int, sigma: float = SR_BLUR_SIGMA) -> np.ndarray:
    """HR (H, W, 3) uint8 -> LR (H/f, W/f, 3) uint8: blur, bicubic downsampling, 8-bit rounding."""
    h, w = hr.shape[0] // factor, hr.shape[1] // factor
    # Reflect borders (the edge pixel not repeated), then Pillow's antialiased bicubic on floats.
    lr = resize(gaussian_blur(hr, sigma, border="reflect"), h, w, "bicubic")
    return np.clip(np.rint(lr), 0, 255).astype(np.uint8)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return image[top : top + size, left : left + size]


# ---------------------------------------------------------------------------- sampler


@dataclass
class SamplerState:
    seed: int
    epoch: int = 0
    position: int = 0  # index into the epoch's permutation of the next global batch

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerState:
        return cls(seed=int(d["seed"]), epoch=int(d["epoch"]), position=int(d["position"]))


class Sampler:
    """Deterministic, resumable, shardable: yields per-step lists of (epoch, position, index)."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        state: SamplerState,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if n < batch_size * world:
            raise InputError(
                f"{n} usable images is fewer than one batch ({batch_size} x {world} processes)"
            )
        self.n, self.batch_size, self.rank, self.world = n, batch_size, rank, world
        self.state = SamplerState(**state.to_dict())
        self._perm_epoch = -1
        self._perm = np.arange(0)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.state.seed, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def next_batch(self) -> list[tuple[int, int, int]]:
        """This rank's items of the next global batch; advances the state (drop_last)."""
        s = self.state
        if s.position + self.global_batch > self.n:
            s.epoch, s.position = s.epoch + 1, 0
        perm = self._permutation(s.epoch)
        start = s.position + self.rank * self.batch_size
        items = [(s.epoch, start + i, int(perm[start + i])) for i in range(self.batch_size)]
        s.position += self.global_batch
        return items


# ---------------------------------------------------------------------------- batches


class BatchSource:
    """Turns sampler items into uint8 arrays; counts files that fail to decode."""

    def __init__(
        self,
        folder: ImageFolder,
        task: str,
        image_size: int,
        factor: int = 4,
        seed: int = 0,
        max_pixels: int = 64_000_000,
        threads: int = 1,
    ) -> None:
        if task not in ("style", "sr"):
            raise ValueError(f"unknown task {task!r}")
        if task == "sr" and image_size % factor:
            raise InputError(f"SR patch size {image_size} is not a multiple of --factor {factor}")
        self.folder, self.task, self.size, self.factor, self.seed = (
            folder,
            task,
            image_size,
            factor,
            seed,
        )
        self.max_pixels = max_pixels
        self.bad: set[int] = set()
        # Images of a batch decode in parallel when threads > 1 (Pillow and the resize release
        # the GIL). Each item depends only on (epoch, position, index), and a file that fails
        # fails for every thread alike, so the batch is the same for any thread count.
        self._pool = ThreadPoolExecutor(threads, "pe-decode") if threads > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _load(self, index: int) -> np.ndarray:
        """The first decodable file at or after `index` (wrapping), as (H, W, 3) uint8."""
        n = len(self.folder.files)
        for k in range(n):
            i = (index + k) % n
            if i in self.bad:
                continue
            try:
                return load_image(self.folder.files[i], max_pixels=self.max_pixels)
            except PeError:
                self.bad.add(i)
        raise InputError(f"data folder {self.folder.root} has no decodable images")

    def item(self, epoch: int, position: int, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(HWC uint8 target, HWC uint8 LR input or None for style)."""
        image = self._load(index)
        if self.task == "style":
            return resize_center_crop(image, self.size), None
        rng = np.random.default_rng([self.seed, epoch, position])
        if min(image.shape[:2]) < self.size:  # upscale small images to the patch, never skip
            image = resize(image, *shorter_side_size(*image.shape[:2], self.size, self.size))
        hr = random_crop(image, self.size, rng)
        return np.ascontiguousarray(hr), make_lr(hr, self.factor)

    def batch(self, items: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 3, S, S) uint8 targets and (N, 3, S/f, S/f) uint8 LR inputs (SR only)."""
        if self._pool is not None:
            pairs = list(self._pool.map(lambda it: self.item(*it), items))
        else:
            pairs = [self.item(*it) for it in items]
        hr = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
        if self.task == "style":
            return np.ascontiguousarray(hr), None
        lr = np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2)  # type: ignore[misc]
        return np.ascontiguousarray(hr), np.ascontiguousarray(lr)


def iter_batches(
    source: BatchSource, sampler: Sampler, steps: int, prefetch: int = 2
) -> Iterator[tuple[np.ndarray, np.ndarray | None, SamplerState]]:
    """`steps` batches, each with the sampler state *after* it (what a checkpoint stores).

    Decoding runs in one background thread (Pillow releases the GIL) `prefetch` batches ahead;
    the order is fixed by the sampler, so prefetching never changes what a step sees.
    """
    if prefetch <= 0:
        for _ in range(steps):
            items = sampler.next_batch()
            yield (*source.batch(items), SamplerState(**sampler.state.to_dict()))
        return

    q: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def work() -> None:
        try:
            for _ in range(steps):
                if stop.is_set():
                    return
                items = sampler.next_batch()
                out = (*source.batch(items), SamplerState(**sampler.state.to_dict()))
                while not stop.is_set():
                    try:
                        q.put(out, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # re-raised in the consumer, where it can be reported
            q.put(e)

    t = threading.Thread(target=work, name="pe-data", daemon=True)
    t.start()
    try:
        for _ in range(steps):
            got = q.get()
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        t.join(timeout=5)
