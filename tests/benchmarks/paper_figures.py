"""The paper's Fig. 5 and Table 1 for a tiny style network, offline, from scratch.

    python tests/benchmarks/paper_figures.py                       # -> paper-figures/
    python tests/benchmarks/paper_figures.py --out figs --steps 1000 \
        --sizes 64,128,256 --iterations 300
    python tests/benchmarks/paper_figures.py --model wave.pth --style wave.jpg --loss-net vgg16 ...

1. writes the project's generated sample images (training set, a separate evaluation set and
   the sample style image) into OUT;
2. trains a tiny style network with `pe train style --loss-net random` (skipped with --model);
3. runs `pe eval objective` on the evaluation set -> OUT/fig5/objective.{png,json,csv};
4. measures Table 1 with the functions behind `pe bench --gatys` -> OUT/table1.{txt,json}.

With the random loss network the numbers show that the pipeline works, not the paper's values:
the plot and the table both say which loss network was used. The defaults took about 17 minutes
on a 2-core CPU shared with other work (OMP_NUM_THREADS=1): training 7, Fig. 5 8, Table 1 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str]) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"  ({time.perf_counter() - t:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("paper-figures"))
    ap.add_argument("--model", type=Path, help="Use this style checkpoint instead of training.")
    ap.add_argument("--style", type=Path, help="Its style image (default: the sample style).")
    ap.add_argument("--steps", type=int, default=300, help="Training steps of the tiny model.")
    ap.add_argument("--train-size", type=int, default=64, help="Training crop size.")
    ap.add_argument("--images", type=int, default=6, help="Evaluation images (the paper: 50).")
    ap.add_argument("--sizes", default="64,128", help="Fig. 5 sizes (the paper: 256,512,1024).")
    ap.add_argument("--iterations", type=int, default=100, help="Fig. 5 baseline iterations.")
    ap.add_argument("--table-sizes", default="64,128,256", help="Table 1 sizes.")
    ap.add_argument("--table-iterations", default="100,300,500")
    ap.add_argument("--measure", type=int, default=5, help="Timed L-BFGS iterations per size.")
    ap.add_argument("--loss-net", default="random", help="random (offline) or vgg16.")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)

    from perceptual_edge.image import save_image
    from perceptual_edge.paper.gatys_bench import format_speed_table, gatys_speed_table
    from perceptual_edge.samples import style_image, write_sample_dataset

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pe = [sys.executable, "-m", "perceptual_edge"]
    style = args.style or save_image(style_image(), out / "style.png", overwrite=True)
    evaluation = out / "eval_images"
    # A different seed from the training set: the network is scored on images it never saw.
    write_sample_dataset(evaluation, count=args.images, height=192, width=224, seed=1000)

    model = args.model
    if model is None:
        model = out / "tiny_style.pth"
        write_sample_dataset(out / "train_images", count=16, height=96, width=96, seed=0)
        run([*pe, "train", "style", "--style", str(style), "--data", str(out / "train_images"),
             "-o", str(model), "--loss-net", args.loss_net, "--image-size", str(args.train_size),
             "--iterations", str(args.steps), "--checkpoint-every", "0", "--sample-every", "0",
             "--device", args.device, "--overwrite"])  # fmt: skip

    run([*pe, "eval", "objective", "--model", str(model), "--style", str(style),
         "--images", str(evaluation), "--sizes", args.sizes, "--iterations", str(args.iterations),
         "-o", str(out / "fig5"), "--loss-net", args.loss_net, "--device", args.device,
         "--overwrite"])  # fmt: skip

    print("+ Table 1 (gatys_speed_table, as `pe bench --gatys`)", flush=True)
    table = gatys_speed_table(
        model,
        style,
        sizes=[int(s) for s in args.table_sizes.split(",")],
        iterations=[int(n) for n in args.table_iterations.split(",")],
        measure=args.measure,
        device=args.device,
        loss_net=args.loss_net,
    )
    text = format_speed_table(table)
    (out / "table1.txt").write_text(text + "\n")
    (out / "table1.json").write_text(json.dumps(table, indent=1) + "\n")
    print(text)
    print(f"wrote {out / 'fig5' / 'objective.png'}, {out / 'table1.txt'}, {out / 'table1.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
