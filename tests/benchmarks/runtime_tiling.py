"""Tiled vs whole-image PSNR on real photos, for the style and x4 SR networks.

    python tests/benchmarks/runtime_tiling.py [--tiles 256,512] [--overlap 64] [--global-stats]

Networks: seeded random-weight checkpoints (tests/helpers.py make_checkpoint), exported to
ONNX; photos from ../shared/data/content (SR: a 192x256 crop, so the whole x4 output fits).
Plain tiling normalises each tile with its own instance-norm statistics. --global-stats adds
an experiment (needs the `onnx` package): the graph is rewritten so that every
InstanceNormalization takes its mean/variance as inputs, computed once on the whole image (or
on a downscaled copy); it separates the cost of per-tile statistics from seam effects.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONTENT = ROOT.parent / "shared" / "data" / "content"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def stats_graphs(onnx_path: Path):
    """(stats model bytes, tile model bytes, number of norms): see the module docstring."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    base = onnx.load(str(onnx_path))
    stats, tiles = onnx.ModelProto(), onnx.ModelProto()
    stats.CopyFrom(base)
    tiles.CopyFrom(base)
    g = stats.graph
    g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "pe_axes"))
    norms = [n for n in g.node if n.op_type == "InstanceNormalization"]
    for k, n in enumerate(norms):
        x = n.input[0]
        g.node.extend(
            [
                helper.make_node("ReduceMean", [x, "pe_axes"], [f"pe_mean{k}"]),
                helper.make_node("Sub", [x, f"pe_mean{k}"], [f"pe_d{k}"]),
                helper.make_node("Mul", [f"pe_d{k}", f"pe_d{k}"], [f"pe_sq{k}"]),
                helper.make_node("ReduceMean", [f"pe_sq{k}", "pe_axes"], [f"pe_var{k}"]),
            ]
        )
        for name in (f"pe_mean{k}", f"pe_var{k}"):
            g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    g = tiles.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes, k = [], 0
    for n in g.node:
        if n.op_type != "InstanceNormalization":
            nodes.append(n)
            continue
        x, s, b = n.input
        eps = next(a.f for a in n.attribute if a.name == "epsilon")
        c = inits[s].size
        g.initializer.extend(
            [
                numpy_helper.from_array(inits[s].reshape(1, c, 1, 1), f"pe_s{k}"),
                numpy_helper.from_array(inits[b].reshape(1, c, 1, 1), f"pe_b{k}"),
                numpy_helper.from_array(np.array(eps, np.float32), f"pe_eps{k}"),
            ]
        )
        for name in (f"pe_mean{k}", f"pe_var{k}"):
            g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, c, 1, 1]))
        nodes += [
            helper.make_node("Add", [f"pe_var{k}", f"pe_eps{k}"], [f"pe_ve{k}"]),
            helper.make_node("Sqrt", [f"pe_ve{k}"], [f"pe_sd{k}"]),
            helper.make_node("Div", [f"pe_s{k}", f"pe_sd{k}"], [f"pe_g{k}"]),
            helper.make_node("Sub", [x, f"pe_mean{k}"], [f"pe_xc{k}"]),
            helper.make_node("Mul", [f"pe_xc{k}", f"pe_g{k}"], [f"pe_xn{k}"]),
            helper.make_node("Add", [f"pe_xn{k}", f"pe_b{k}"], [n.output[0]]),
        ]
        k += 1
    del g.node[:]
    g.node.extend(nodes)
    return stats.SerializeToString(), tiles.SerializeToString(), len(norms)


def global_stats_psnr(onnx_path, spec, img, whole, tiles, overlap, downscales) -> list[dict]:
    import onnxruntime as ort
    from PIL import Image

    from perceptual_edge.image import batch_to_image, crop_to, image_to_batch, pad_to_multiple
    from perceptual_edge.runtime.tiling import run_tiled

    stats_b, tiles_b, n = stats_graphs(onnx_path)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    stats = ort.InferenceSession(stats_b, so, providers=["CPUExecutionProvider"])
    tiled = ort.InferenceSession(tiles_b, so, providers=["CPUExecutionProvider"])
    rows = []
    for ds in downscales:
        small = img
        if ds > 1:
            size = (img.shape[1] // ds, img.shape[0] // ds)
            small = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
        sp, _ = pad_to_multiple(image_to_batch(small), spec.multiple, spec.min_size)
        outs = stats.run(None, {"input": sp})[1:]
        feeds = {f"pe_mean{k}": outs[2 * k] for k in range(n)}
        feeds |= {f"pe_var{k}": outs[2 * k + 1] for k in range(n)}

        def infer(t, feeds=feeds):
            tp, (th, tw) = pad_to_multiple(t, spec.multiple, spec.min_size)
            y = tiled.run(None, {"input": tp, **feeds})[0]
            return crop_to(y, th * spec.scale, tw * spec.scale)

        for tile in tiles:
            y = batch_to_image(run_tiled(infer, image_to_batch(img), spec, tile, overlap))
            rows.append({"stats_from": f"whole/{ds}", "tile": tile, "psnr": psnr(whole, y)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="256,512")
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--photos", default="chicago.jpg,tubingen.jpg")
    ap.add_argument("--global-stats", action="store_true")
    args = ap.parse_args()
    tiles = [int(t) for t in args.tiles.split(",")]
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.export import onnx_from_checkpoint
    from perceptual_edge.image import load_image
    from perceptual_edge.runtime import Session

    results = []
    with tempfile.TemporaryDirectory(prefix="pe-tiling-") as d:
        tmp = Path(d)
        models = {
            "style": onnx_from_checkpoint(make_checkpoint(tmp / "s.pth"), tmp / "s.onnx"),
            "sr4": onnx_from_checkpoint(
                make_checkpoint(tmp / "r.pth", "sr", factor=4), tmp / "r.onnx"
            ),
        }
        for name in args.photos.split(","):
            photo = load_image(CONTENT / name)
            for kind, onnx in models.items():
                img = photo if kind == "style" else photo[:192, :256]
                sr_tiles = [t // 4 for t in tiles]  # same output tile size as the style net
                with Session(onnx) as s:
                    whole = s.run(img)
                    for tile in tiles if kind == "style" else sr_tiles:
                        ov = args.overlap if kind == "style" else args.overlap // 4
                        y = s.run(img, tile=tile, tile_overlap=ov)
                        row = {"photo": name, "net": kind, "size": list(img.shape[:2])}
                        row.update(tile=tile, overlap=ov, stats_from="tile", psnr=psnr(whole, y))
                        results.append(row)
                        print(json.dumps(row))
                    if args.global_stats and kind == "style":
                        for r in global_stats_psnr(
                            onnx, s.spec, img, whole, tiles, args.overlap, (1, 2, 4)
                        ):
                            r.update(photo=name, net=kind, overlap=args.overlap)
                            results.append(r)
                            print(json.dumps(r))


if __name__ == "__main__":
    main()
