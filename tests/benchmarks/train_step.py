"""Images/s of one style-training step: ours vs a plain eager step, side by side in one run.

    python tests/benchmarks/train_step.py --loss-net random            # 256x256, batch 4, CPU

The plain step is written the way pytorch/examples' fast_neural_style does it: the VGG-16 loss
network runs in full (to relu4_3) on both the output batch and the content batch every step,
outside no_grad, contiguous (NCHW) tensors, out-of-place ReLUs, no caching. Ours is the step
`pe train` runs (`perceptual_edge.train.objectives.StyleObjective`): the content branch under
no_grad and only up to the content layer, in-place ReLUs; channels_last as `pe train` uses it
(CUDA only; `--channels-last on` tries it on CPU).
Both optimise the same objective (same layers and weights, checked below) with the same
network and Adam. The two are timed in alternating rounds so that machine noise (other
processes, turbo) hits both alike; the figure is the median step time of each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from perceptual_edge.train import build_network, load_loss_network, network_config
from perceptual_edge.train import defaults as D
from perceptual_edge.train.losses import gram, squared_error, style_loss, total_variation
from perceptual_edge.train.objectives import StyleObjective


class PlainStep:
    """pytorch/examples-style: full VGG on y and on x, everything under autograd."""

    def __init__(self, vgg, style: torch.Tensor, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = build_network(network_config("style")).train()
        self.vgg = vgg
        self.opt = torch.optim.Adam(self.net.parameters(), lr=D.LR)
        self.target = {k: gram(v) for k, v in vgg(style).items()}

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.net(x)
        fy, fx = self.vgg(y), self.vgg(x)  # the full network, twice
        content = squared_error(fy[D.STYLE_CONTENT_LAYER], fx[D.STYLE_CONTENT_LAYER])
        loss = (
            D.CONTENT_WEIGHT * content
            + D.STYLE_WEIGHT * style_loss(fy, self.target, D.STYLE_LAYERS)
            + D.TV_WEIGHT * total_variation(y)
        )
        return y, loss

    def __call__(self, x: torch.Tensor) -> float:
        self.opt.zero_grad()
        _, loss = self.losses(x)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


class OurStep:
    def __init__(self, vgg, style: torch.Tensor, seed: int, channels_last: bool) -> None:
        torch.manual_seed(seed)
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net = build_network(network_config("style")).train().to(memory_format=self.fmt)
        vgg = vgg.to(memory_format=self.fmt)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=D.LR)
        self.objective = StyleObjective(
            vgg, style, D.STYLE_CONTENT_LAYER, D.STYLE_LAYERS,
            D.CONTENT_WEIGHT, D.STYLE_WEIGHT, D.TV_WEIGHT,
        )  # fmt: skip

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous(memory_format=self.fmt)
        y = self.net(x)
        return y, self.objective(y, x)["loss"]

    def __call__(self, x: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        _, loss = self.losses(x)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=D.IMAGE_SIZE)
    ap.add_argument("--batch", type=int, default=D.BATCH_SIZE)
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per round and side")
    ap.add_argument("--loss-net", default="random", choices=["random", "vgg16"])
    ap.add_argument("--vgg-weights", default=None)
    ap.add_argument(
        "--channels-last",
        choices=["auto", "on", "off"],
        default="auto",
        help="auto: what pe train does (on for CUDA only; this benchmark runs on CPU: off)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.channels_last == "auto":
        args.channels_last = "off"

    layers = (*D.STYLE_LAYERS, D.STYLE_CONTENT_LAYER)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=gen) * 255  # (N, 3, S, S)
    style = torch.rand(1, 3, args.size, args.size, generator=gen) * 255
    plain = PlainStep(load_loss_network(args.loss_net, layers, args.vgg_weights), style, 0)
    ours = OurStep(
        load_loss_network(args.loss_net, layers, args.vgg_weights), style, 0,
        args.channels_last == "on",
    )  # fmt: skip

    # Same objective: equal loss and gradient on the same weights before any step.
    with torch.no_grad():
        _, lp = plain.losses(x)
        _, lo = ours.losses(x)
    rel = abs(float(lp) - float(lo)) / abs(float(lp))
    print(f"objective check: plain {float(lp):.6g} ours {float(lo):.6g} (rel diff {rel:.1e})")

    times: dict[str, list[float]] = {"plain": [], "ours": []}
    # Process CPU time as well: on a shared machine it is far less noisy than wall time.
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    for fn in (plain, ours):  # warm-up: oneDNN primitive creation, allocator
        fn(x)
    for r in range(args.rounds):
        order = [("plain", plain), ("ours", ours)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            for _ in range(args.steps):
                t, c = time.perf_counter(), time.process_time()
                fn(x)
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    ips = {k: args.batch / v for k, v in med.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.size}x{args.size}, batch {args.batch}, loss net {args.loss_net}, "
        f"channels_last {args.channels_last}, {len(times['plain'])} timed steps each"
    )
    for k, label in (("plain", "plain eager step"), ("ours", "ours (pe train) ")):
        print(
            f"{label}: {med[k]:.3f} s/step  {ips[k]:.3f} images/s  (CPU time {cmed[k]:.3f} s/step)"
        )
    print(
        f"speed-up        : {ips['ours'] / ips['plain']:.2f}x wall, "
        f"{cmed['plain'] / cmed['ours']:.2f}x CPU time"
    )


if __name__ == "__main__":
    main()
