"""Peak memory (max RSS) of stylising an 8K (7680x4320) image on the CPU with tiling.

    python tests/benchmarks/runtime_memory.py [--onnx style.onnx] [--tile 512] [--size 7680x4320]

The measured run happens in a fresh, torch-free child process (only the runtime is imported),
which reports its own peak RSS from resource.getrusage and /proc/self/status (VmHWM). Linux
carries ru_maxrss across exec from the forking process, so the parent stays small: the model
(a seeded random-weight style network exported to ONNX, when --onnx is not given) is made in
another subprocess, and the input is a real photo from ../shared/data/content resized to the
target size and saved as PNG.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT.parent / "shared" / "data" / "content" / "tubingen.jpg"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from perceptual_edge.image import load_image
from perceptual_edge.runtime import Session
onnx, image, tile, overlap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
img = load_image(image)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with Session(onnx) as s:
    out = s.run(img, tile=tile, tile_overlap=overlap)
secs = time.perf_counter() - t
assert out.shape == img.shape
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({
    "vm_hwm_mib": int(hwm[0].split()[1]) / 1024 if hwm else None,
    "height": img.shape[0], "width": img.shape[1], "tile": tile, "overlap": overlap,
    "seconds": secs, "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_after_loading_image_mib": base / 1024,
    "torch_loaded": "torch" in sys.modules,
}))
"""


def make_onnx(out: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.export import onnx_from_checkpoint

    return onnx_from_checkpoint(make_checkpoint(out.with_suffix(".pth")), out)


def make_image(path: Path, height: int, width: int) -> Path:
    from PIL import Image

    with Image.open(PHOTO) as im:
        im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--size", default="7680x4320", help="WxH")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        make_onnx(args.prepare)
        return
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="pe-mem-") as d:
        tmp = Path(d)
        onnx = args.onnx
        if onnx is None:
            onnx = tmp / "style.onnx"
            subprocess.run([sys.executable, __file__, "--prepare", str(onnx)], check=True)
        image = make_image(tmp / "big.png", h, w)
        p = subprocess.run(
            [sys.executable, "-c", CHILD, str(onnx), str(image), str(args.tile), str(args.overlap)],
            capture_output=True,
            text=True,
            cwd="/",
        )
        if p.returncode != 0:
            sys.exit(p.stderr)
        result = json.loads(p.stdout.strip().splitlines()[-1])
        result.pop("backend", None)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
