"""Tiled vs whole-image PSNR, time and memory, for the style and SR networks.

    python tests/benchmarks/runtime_tiling.py [--tiles 256,512] [--trained-steps 500]
    python tests/benchmarks/runtime_tiling.py --memory-8k

Networks: style (instance norm), style (batch norm), SR x4 and x8, each with seeded random
weights (tests/helpers.py make_checkpoint) and, for style and SR x4, also trained for
--trained-steps steps here (`pe train`, 128-px crops of ../shared/data/train, batch 2, random
VGG-16 weights: no ImageNet weights can be downloaded on this machine). Each is exported with
`pe export` (ONNX + the segment program) and run through `Session` on ONNX Runtime (CPU):
untiled, and with --tile N, which runs the segment program (exact tiles). `blended` rows run the
same ONNX without its segment program beside it: tiles normalised per tile and feathered over a
64-pixel overlap, the behaviour before exact tiles (and still the fallback).

Times (s_whole, s_tiled) are of warm sessions (graphs opened, memory arenas grown by one run
before), one run each, not alternated: a rough ratio; --memory-8k times in separate processes.

Photos: every photo in ../shared/data/content (SR: downscaled by the factor, bicubic, so the
output has the photo's size), and a 3840x2880 image (tubingen.jpg upscaled with bicubic: no photo
that wide is in shared/data) for the style networks. --memory-8k runs a 7680x4320 image (the same
upscale) through the style network in 512-pixel tiles in a child process and reports its peak
RSS (VmHWM), and the 4K untiled and tiled times of that child for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CONTENT = SHARED / "content"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def upscaled(width: int, height: int) -> np.ndarray:
    from PIL import Image

    from perceptual_edge.image import load_image

    img = Image.fromarray(load_image(CONTENT / "tubingen.jpg"))
    return np.asarray(img.resize((width, height), Image.Resampling.BICUBIC))


def export(ckpt: Path, out: Path) -> Path:
    from perceptual_edge.export.pipeline import export_checkpoint

    export_checkpoint(ckpt, out, engine=False, overwrite=True)
    return out / f"{ckpt.stem}.onnx"


def train(tmp: Path, network: str, steps: int) -> Path:
    out = tmp / f"{network}_trained.pth"
    data = SHARED / "train" / ("bsds500_test" if network == "style" else "t91")
    cmd = [
        sys.executable,
        "-m",
        "perceptual_edge",
        "train",
        network,
        "--data",
        str(data),
        "-o",
        str(out),
        "--iterations",
        str(steps),
        "--image-size",
        "128",
        "--batch-size",
        "2",
        "--loss-net",
        "random",
        "--sample-every",
        "0",
        "--checkpoint-every",
        "0",
        "-q",
    ]
    cmd += ["--style", str(SHARED / "styles" / "wave.jpg")] if network == "style" else []
    cmd += ["--factor", "4"] if network == "sr" else []  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def compare(onnx: Path, bare: Path, img: np.ndarray, tiles: list[int], row: dict) -> list[dict]:
    from perceptual_edge.runtime import Session

    rows = []
    with Session(onnx) as s:
        s.run(img[:64, :64], tile=32)  # opens the segment graphs: not part of the timing
        s.run(img)  # warms the whole-image run's memory arena likewise
        t0 = time.perf_counter()
        whole = s.run(img)
        t_whole = time.perf_counter() - t0
        for tile in tiles:
            t0 = time.perf_counter()
            y = s.run(img, tile=tile)
            t_tiled = time.perf_counter() - t0
            assert s.last_run_exact
            rows.append({**row, "tile": tile, "mode": "exact", "psnr": round(psnr(whole, y), 1),
                         "s_whole": round(t_whole, 2), "s_tiled": round(t_tiled, 2)})  # fmt: skip
    import warnings

    with Session(bare) as s, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tile in tiles:
            y = s.run(img, tile=tile, tile_overlap=64 // max(1, s.spec.scale))
            rows.append({**row, "tile": tile, "mode": "blended", "psnr": round(psnr(whole, y), 1)})
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def peak_rss_gib() -> float:
    """VmHWM of this process (getrusage's ru_maxrss would carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return float("nan")


def memory_child(tile: int) -> None:
    """In a child process: 4K untiled and tiled times, then the 8K tiled run; peak RSS."""
    from perceptual_edge.runtime import Session

    onnx = Path(sys.argv[sys.argv.index("--child") + 1])
    out = {}
    with Session(onnx) as s:
        img4k = upscaled(3840, 2160)
        t0 = time.perf_counter()
        s.run(img4k, tile=tile)
        out["s_4k_tiled"] = round(time.perf_counter() - t0, 1)
        rss_before = peak_rss_gib()
        del img4k
        img = upscaled(7680, 4320)
        t0 = time.perf_counter()
        y = s.run(img, tile=tile)
        out["s_8k_tiled"] = round(time.perf_counter() - t0, 1)
        out["shape"] = list(y.shape)
    out["peak_rss_gib"] = peak_rss_gib()
    out["peak_rss_gib_before_8k"] = rss_before
    print(json.dumps(out))


def memory_8k(tmp: Path, tile: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.runtime import Session

    onnx = export(make_checkpoint(tmp / "style.pth", "style"), tmp)
    with Session(onnx) as s:  # the untiled 4K run, for the time ratio
        img = upscaled(3840, 2160)
        t0 = time.perf_counter()
        s.run(img)
        t_whole = time.perf_counter() - t0
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(onnx), "--tile", str(tile)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    r = json.loads(child.stdout.strip().splitlines()[-1])
    r["s_4k_whole"] = round(t_whole, 1)
    r["tiled_vs_whole_4k"] = round(r["s_4k_tiled"] / t_whole, 2)
    print(json.dumps({"memory_8k": r, "tile": tile}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="256,512")
    ap.add_argument("--trained-steps", type=int, default=500)
    ap.add_argument("--photos", default=",".join(sorted(p.name for p in CONTENT.glob("*.jpg"))))
    ap.add_argument("--no-4k", action="store_true", help="skip the 3840x2880 image")
    ap.add_argument("--memory-8k", action="store_true")
    ap.add_argument("--tile", type=int, default=512, help="--memory-8k's tile")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return memory_child(args.tile)
    tiles = [int(t) for t in args.tiles.split(",")]
    with tempfile.TemporaryDirectory(prefix="pe-tiling-") as d:
        tmp = Path(d)
        if args.memory_8k:
            return memory_8k(tmp, args.tile)
        sys.path.insert(0, str(ROOT / "tests"))
        from helpers import make_checkpoint
        from PIL import Image

        from perceptual_edge.image import load_image

        ckpts = {
            ("style", "random"): make_checkpoint(tmp / "style.pth", "style"),
            ("style-bn", "random"): make_checkpoint(tmp / "style_bn.pth", "style", norm="batch"),
            ("sr4", "random"): make_checkpoint(tmp / "sr4.pth", "sr", factor=4),
            ("sr8", "random"): make_checkpoint(tmp / "sr8.pth", "sr", factor=8),
        }
        if args.trained_steps:
            ckpts[("style", f"trained {args.trained_steps}")] = train(
                tmp, "style", args.trained_steps
            )
            ckpts[("sr4", f"trained {args.trained_steps}")] = train(tmp, "sr", args.trained_steps)
        results = []
        for (net, weights), ckpt in ckpts.items():
            sub = tmp / f"{net}_{weights.split()[0]}"
            onnx = export(ckpt, sub)
            bare = sub / "bare" / onnx.name
            bare.parent.mkdir()
            shutil.copy(onnx, bare)
            f = int(net[2:]) if net.startswith("sr") else 1
            photos = [(n, load_image(CONTENT / n)) for n in args.photos.split(",")]
            if not args.no_4k and f == 1:
                photos.append(("tubingen@3840x2880", upscaled(3840, 2880)))
            for name, photo in photos:
                img = photo
                if f > 1:
                    size = (photo.shape[1] // f, photo.shape[0] // f)
                    img = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BICUBIC))
                row = {"net": net, "weights": weights, "photo": name, "input": list(img.shape[:2])}
                results += compare(onnx, bare, img, tiles, row)
        exact = [r["psnr"] for r in results if r["mode"] == "exact"]
        print(json.dumps({"exact_min_psnr": min(exact), "cases": len(exact)}))


if __name__ == "__main__":
    main()
