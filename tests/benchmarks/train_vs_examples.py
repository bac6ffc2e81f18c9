"""`pe train style` against pytorch/examples' fast_neural_style training loop, side by side.

    python tests/benchmarks/train_vs_examples.py [--photos DIR] [--rounds 2]

The baseline is pytorch/examples' `neural_style/neural_style.py train` as its code does it
(read from github.com/pytorch/examples, fast_neural_style/neural_style/{neural_style,vgg,utils,
transformer_net}.py), written here without torchvision, which is not installed here:
- data: an ImageFolder of the photos; each decoded with PIL in the main process (DataLoader,
  batch 4, no workers, no shuffle), Resize(256) (shorter side, bilinear with antialias, what
  torchvision's Resize does to a PIL image), CenterCrop(256), ToTensor, x255;
- TransformerNet: 9x9/32, 3x3/64 s2, 3x3/128 s2, five residual blocks, two nearest-upsample +
  3x3 convs, 9x9/3, reflection padding and affine instance norm throughout, no output
  activation;
- Vgg16: torchvision's vgg16 features 0..22 as four slices, run in full (to relu4_3) on the
  normalised output batch and on the normalised content batch, every step, requires_grad off;
- losses: MSELoss on relu2_2 x content weight 1e5; Gram by batched matmul / (C*H*W) against the
  style Grams, MSELoss per layer x style weight 1e10; no total variation; Adam lr 1e-3;
  `.item()` of both losses every step (as its running averages do).
Its VGG weights are the same random ones `--loss-net random` gives pe (pretrained weights cannot
be downloaded here; the cost does not depend on the values).

`pe train style` runs as the user runs it (its CLI, in a subprocess): its own data pipeline,
network, objective and defaults (mixed precision where the CPU has BF16; `--no-amp` rows show
float32), with the baseline's settings where they differ: --content-layer relu2_2
--tv-weight 0 --image-size 256 --batch-size 4 --loss-net random. A row at the project's defaults
(content relu3_3, TV on) is printed too.

Seconds per step = (time of a 14-step run - time of a 4-step run) / 10 for each side, both
whole processes, so start-up, loading and the final checkpoint cancel out. Sides alternate
within each round; every figure of every round is printed, and the ratio uses the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
LONG, SHORT = 14, 4


# ----------------------------------------------------------------- the pytorch/examples side


def examples_parts() -> dict:
    """pytorch/examples' TransformerNet, Vgg16, gram_matrix, normalize_batch and its image
    loading (Resize + CenterCrop + ToTensor + x255), as its code has them."""
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn

    class ConvLayer(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
            super().__init__()
            self.reflection_pad = nn.ReflectionPad2d(k // 2)
            self.conv2d = nn.Conv2d(cin, cout, k, stride)

        def forward(self, x):
            return self.conv2d(self.reflection_pad(x))

    class ResidualBlock(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1, self.in1 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
            self.conv2, self.in2 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = self.relu(self.in1(self.conv1(x)))
            return self.in2(self.conv2(out)) + x

    class UpsampleConvLayer(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, upsample: int) -> None:
            super().__init__()
            self.upsample = upsample
            self.reflection_pad = nn.ReflectionPad2d(k // 2)
            self.conv2d = nn.Conv2d(cin, cout, k, 1)

        def forward(self, x):
            x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
            return self.conv2d(self.reflection_pad(x))

    class TransformerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
            self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
            self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
            self.res = nn.Sequential(*[ResidualBlock(128) for _ in range(5)])
            self.deconv1 = UpsampleConvLayer(128, 64, 3, 2)
            self.in4 = nn.InstanceNorm2d(64, affine=True)
            self.deconv2 = UpsampleConvLayer(64, 32, 3, 2)
            self.in5 = nn.InstanceNorm2d(32, affine=True)
            self.deconv3 = ConvLayer(32, 3, 9, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.relu(self.in1(self.conv1(x)))
            y = self.relu(self.in2(self.conv2(y)))
            y = self.res(self.relu(self.in3(self.conv3(y))))
            y = self.relu(self.in4(self.deconv1(y)))
            y = self.relu(self.in5(self.deconv2(y)))
            return self.deconv3(y)

    class Vgg16(nn.Module):
        def __init__(self, features: nn.Sequential) -> None:
            super().__init__()
            cuts = (0, 4, 9, 16, 23)
            self.slices = nn.ModuleList(
                nn.Sequential(*[features[i] for i in range(a, b)])
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)
            )
            for p in self.parameters():
                p.requires_grad = False

        def forward(self, x):
            out = []
            for s in self.slices:
                x = s(x)
                out.append(x)
            return out  # relu1_2, relu2_2, relu3_3, relu4_3

    def gram_matrix(y):
        b, ch, h, w = y.size()
        f = y.view(b, ch, w * h)
        return f.bmm(f.transpose(1, 2)) / (ch * h * w)

    def normalize_batch(batch):
        mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
        std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
        batch = batch.div_(255.0)
        return (batch - mean) / std

    def load(path: Path, size: int | None) -> torch.Tensor:
        img = Image.open(path).convert("RGB")
        if size is not None:  # Resize(size) on a PIL image: shorter side, bilinear, antialias
            w, h = img.size
            s = size / min(w, h)
            img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
            w, h = img.size  # CenterCrop(size)
            left, top = round((w - size) / 2), round((h - size) / 2)
            img = img.crop((left, top, left + size, top + size))
        a = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0  # ToTensor
        return torch.from_numpy(a.copy()).mul(255)

    class Folder(torch.utils.data.Dataset):  # ImageFolder: (image, class index)
        def __init__(self, root: Path) -> None:
            self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".png"))

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int):
            return load(self.files[i], 256), 0

    return dict(TransformerNet=TransformerNet, Vgg16=Vgg16, gram_matrix=gram_matrix,
                normalize_batch=normalize_batch, load=load, Folder=Folder)  # fmt: skip


def examples_train(photos: Path, style_path: Path, steps: int) -> None:
    import numpy as np
    import torch
    from torch import nn

    from perceptual_edge.train.vgg import load_loss_network

    e = examples_parts()
    TransformerNet, Vgg16, Folder = e["TransformerNet"], e["Vgg16"], e["Folder"]
    gram_matrix, normalize_batch, load = e["gram_matrix"], e["normalize_batch"], e["load"]
    np.random.seed(42)
    torch.manual_seed(42)
    loader = torch.utils.data.DataLoader(Folder(photos), batch_size=4)
    transformer = TransformerNet()
    optimizer = torch.optim.Adam(transformer.parameters(), 1e-3)
    mse = nn.MSELoss()
    vgg = Vgg16(load_loss_network("random", ["relu4_3"], None).features)
    style = load(style_path, None).repeat(4, 1, 1, 1)
    gram_style = [gram_matrix(y) for y in vgg(normalize_batch(style))]
    done = 0
    while done < steps:
        for x, _ in loader:
            n = len(x)
            optimizer.zero_grad()
            y = normalize_batch(transformer(x))
            x = normalize_batch(x)
            fy, fx = vgg(y), vgg(x)
            content = 1e5 * mse(fy[1], fx[1])
            style_loss = 0.0
            for ft, gm in zip(fy, gram_style, strict=True):
                style_loss += mse(gram_matrix(ft), gm[:n, :, :])
            style_loss *= 1e10
            (content + style_loss).backward()
            optimizer.step()
            content.item(), style_loss.item()
            done += 1
            if done == steps:
                break


# ----------------------------------------------------------------- the timing


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=SHARED / "train" / "bsds500_test")
    ap.add_argument("--count", type=int, default=56, help="photos used (the issue used 56)")
    ap.add_argument("--style", type=Path, default=SHARED / "styles" / "wave.jpg")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--examples-steps", type=int, help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.examples_steps:
        examples_train(args.folder, args.style, args.examples_steps)
        return

    import torch

    work = Path(tempfile.mkdtemp(prefix="pe-train-bench-"))
    folder = work / "photos" / "all"  # ImageFolder wants class subfolders
    folder.mkdir(parents=True)
    for p in sorted(args.photos.glob("*.jpg"))[: args.count]:
        os.symlink(p.resolve(), folder / p.name)
    me = [sys.executable, str(Path(__file__).resolve())]

    def examples(steps: int) -> list[str]:
        return [*me, "--examples-steps", str(steps), "--folder", str(work / "photos"),
                "--style", str(args.style)]  # fmt: skip

    def pe(steps: int, *extra: str) -> list[str]:
        out = work / f"pe{steps}.pth"
        return [sys.executable, "-m", "perceptual_edge", "train", "style", "--style",
                str(args.style), "--data", str(work / "photos"), "-o", str(out), "--overwrite",
                "--iterations", str(steps), "--loss-net", "random", "--image-size", "256",
                "--batch-size", "4", "-q", *extra]  # fmt: skip

    equal = ("--content-layer", "relu2_2", "--tv-weight", "0")
    sides = {
        "pytorch/examples": examples,
        "pe train (equal settings)": lambda n: pe(n, *equal),
        "pe train (equal settings, --no-amp)": lambda n: pe(n, *equal, "--no-amp"),
        "pe train (project defaults)": lambda n: pe(n),
    }
    per_step: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.rounds):
        order = list(sides.items())
        if r % 2:
            order.reverse()
        for name, cmd in order:
            long, short = timed(cmd(LONG)), timed(cmd(SHORT))
            per_step[name].append((long - short) / (LONG - SHORT))
            print(f"round {r + 1}: {name}: {per_step[name][-1]:.2f} s/step", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in per_step.items()}
    base = med["pytorch/examples"]
    print(
        f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"256x256, batch 4, {args.count} photos, random VGG-16, {args.rounds} rounds"
    )
    for name, v in per_step.items():
        spread = ", ".join(f"{x:.2f}" for x in v)
        print(f"{name:38s} {med[name]:.2f} s/step ({spread})  {base / med[name]:.2f}x the baseline")


if __name__ == "__main__":
    main()
