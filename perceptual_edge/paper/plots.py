"""Figures of the paper, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.fsutil import atomic_path


def loss_net_label(result: dict[str, Any]) -> str:
    """Say plainly which loss network the numbers were measured on."""
    if result.get("loss_net") == "random":
        return f"loss network: RANDOM VGG-16 ({result.get('loss_net_weights', 'random')})"
    weights = str(result.get("loss_net_weights", "unknown"))
    return f"loss network: VGG-16 ImageNet ({weights[:19]})"


def plot_objective(
    result: dict[str, Any], path: str | os.PathLike[str], overwrite: bool = False
) -> Path:
    """Fig. 5: the Eq. 5 objective of the baseline against L-BFGS iterations (mean and a band
    of one std over the images), with horizontal lines for the network and the content image;
    one panel per size, log y-axis."""
    import matplotlib

    matplotlib.use("Agg")  # headless, and no GUI toolkit import
    import matplotlib.pyplot as plt

    entries = result["sizes"]
    n = len(entries)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    for ax, e in zip(axes[0], entries, strict=True):
        mean = np.asarray(e["baseline_mean"], dtype=np.float64)
        std = np.asarray(e["baseline_std"], dtype=np.float64)
        it = np.arange(len(mean))
        # A log axis cannot show mean - std <= 0: floor the band at a fraction of the mean.
        lo = np.maximum(mean - std, mean * 0.05)
        ax.fill_between(it, lo, mean + std, color="tab:blue", alpha=0.25, linewidth=0)
        ax.plot(it, mean, color="tab:blue", label="Gatys et al. (L-BFGS)")
        for key, colour, style, label in (
            ("network", "tab:red", "-", "feed-forward network"),
            ("content", "0.3", "--", "content image"),
        ):
            m, s = e[f"{key}_mean"], e[f"{key}_std"]
            ax.axhline(m, color=colour, linestyle=style, label=label)
            ax.axhspan(max(m - s, m * 0.05), m + s, color=colour, alpha=0.08, linewidth=0)
        fb = e.get("first_beat")
        if fb is not None:
            ax.axvline(fb, color="tab:red", linestyle=":", linewidth=1)
            note = f"baseline beats network at iteration {fb}"
        else:
            note = f"baseline never beats network within {len(mean) - 1}"
        ax.set_title(f"{e['size']}x{e['size']}\n{note}", fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("L-BFGS iteration")
        ax.set_xlim(0, len(mean) - 1)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("Eq. 5 objective")
    axes[0][0].legend(fontsize=8, loc="upper right")
    images = len(result.get("images", [])) or len(entries[0]["network"])
    fig.suptitle(f"Objective vs L-BFGS iteration, {images} images — {loss_net_label(result)}",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    p = Path(path)
    try:
        with atomic_path(p, overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return p
