"""`pe import pytorch-examples`: against an independent reimplementation of their network.

The reference network below is written from ../shared/reference/pytorch-examples-checkpoints.md
alone (module names as in their state dict), not from our train/ code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from perceptual_edge.cli import app
from perceptual_edge.errors import InputError
from perceptual_edge.export.import_pytorch_examples import checkpoint_from_pytorch_examples


class RefConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, upsample: bool = False):
        super().__init__()
        self.k, self.upsample = k, upsample
        self.conv2d = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv2d(F.pad(x, [self.k // 2] * 4, mode="reflect"))


class RefRes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = RefConv(128, 128, 3), nn.InstanceNorm2d(128, affine=True)
        self.conv2, self.in2 = RefConv(128, 128, 3), nn.InstanceNorm2d(128, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))


class RefTransformerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = RefConv(3, 32, 9), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = RefConv(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = RefConv(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res1, self.res2, self.res3, self.res4, self.res5 = (RefRes() for _ in range(5))
        self.deconv1 = RefConv(128, 64, 3, upsample=True)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = RefConv(64, 32, 3, upsample=True)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = RefConv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)  # raw; clamped to 0..255 when saved


def _reference_state(seed: int = 0, stale_stats: bool = True) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    net = RefTransformerNet().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".in" in f".{name}" or name.startswith("in"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p) if name.endswith("weight") else p + 0.1)
            elif name.endswith("bias"):
                p.add_(0.05 * torch.randn_like(p))
        net.deconv3.conv2d.bias.fill_(120.0)  # centre outputs so the clamp is rarely active
        net.deconv3.conv2d.weight.mul_(40.0)
    state = dict(net.state_dict())
    assert len(state) == 62  # the facts file's count
    if stale_stats:  # what checkpoints from older PyTorch versions carry
        for key in [k for k in state if k.endswith(".weight") and "in" in k.split(".")[-2]]:
            prefix = key.rsplit(".", 1)[0]
            n = state[key].shape[0]
            state[f"{prefix}.running_mean"] = torch.randn(n)
            state[f"{prefix}.running_var"] = torch.rand(n) + 0.5
    return net, state


def test_import_matches_the_reference_network(tmp_path: Path, runner) -> None:
    net, state = _reference_state()
    src = tmp_path / "candy.pth"
    torch.save(state, src)
    out = tmp_path / "candy_pe.pth"
    r = runner.invoke(app, ["import", "pytorch-examples", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    from perceptual_edge.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out)
    assert ckpt.spec.kind == "style" and ckpt.spec.provenance.source == "pytorch-examples"
    assert ckpt.config["norm"] == "instance" and ckpt.config["upsample"] == "nearest-conv"
    assert ckpt.config["output"] == "clamp"
    assert not any("running" in k for k in ckpt.state_dict)
    ours = ckpt.build()
    from perceptual_edge.image import image_to_batch
    from perceptual_edge.samples import content_image

    x = torch.from_numpy(image_to_batch(content_image(3, 64, 92)))
    with torch.no_grad():
        ref = net(x).clamp(0, 255)
        got = ours(x)
    assert 0.05 < float((ref > 0).float().mean()) and float((ref < 255).float().mean()) > 0.05
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-3, rtol=0)
    # Overwrite protection.
    r = runner.invoke(app, ["import", "pytorch-examples", str(src), "-o", str(out)])
    assert r.exit_code == 3 and "--overwrite" in r.stderr


def test_import_refuses_what_is_not_a_fast_neural_style_model(
    tmp_path: Path, style_ckpt: Path, runner
) -> None:
    _, state = _reference_state(stale_stats=False)
    cases = {
        "missing": {k: v for k, v in state.items() if not k.startswith("res5.")},
        "extra": {**state, "fc.weight": torch.zeros(3, 3)},
        "shapes": {**state, "conv1.conv2d.weight": torch.zeros(16, 3, 9, 9)},
    }
    needles = {"missing": "missing res5.", "extra": "unexpected keys fc.weight", "shapes": "shapes"}
    for name, sd in cases.items():
        src = tmp_path / f"{name}.pth"
        torch.save(sd, src)
        with pytest.raises(InputError, match=needles[name]):
            checkpoint_from_pytorch_examples(src, tmp_path / f"{name}_out.pth")
        assert not (tmp_path / f"{name}_out.pth").exists()
    r = runner.invoke(
        app, ["import", "pytorch-examples", str(style_ckpt), "-o", str(tmp_path / "o.pth")]
    )
    assert r.exit_code == 2 and "already a perceptual-edge checkpoint" in r.stderr
