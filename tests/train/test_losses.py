"""Loss terms against values worked out by hand on tiny tensors (scale convention of losses.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from perceptual_edge.train.losses import (  # noqa: E402
    gram,
    squared_error,
    style_loss,
    total_variation,
)


def test_gram_by_hand() -> None:
    # One image, C=2, H=1, W=2: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / (C*H*W=4).
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    g = gram(f)
    assert g.shape == (1, 2, 2)
    assert torch.allclose(g, torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))


def test_gram_gradient_is_the_symmetric_product_rule() -> None:
    # gram's backward is written by hand (one matmul for dG + dG^T): checked numerically in
    # float64, and against autograd through a plain bmm, with a non-symmetric upstream gradient.
    from perceptual_edge.train.losses import _Gram

    f = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _Gram.apply(t, 15.0), (f,))
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    w = torch.randn(2, 3, 3)
    (gram(x) * w).sum().backward()
    ours, x.grad = x.grad, None
    flat = x.reshape(2, 3, 20)
    (torch.bmm(flat, flat.transpose(1, 2)) / 60 * w).sum().backward()
    assert torch.allclose(ours, x.grad, atol=1e-6)


def test_feature_loss_by_hand() -> None:
    y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    t = torch.tensor([[[[0.0, 2.0], [3.0, 6.0]]]])
    # squared differences 1, 0, 0, 4 -> sum 5 / (C*H*W = 4)
    assert squared_error(y, t).item() == pytest.approx(1.25)
    # Averaged over the batch: a second, identical pair leaves the value unchanged.
    assert squared_error(torch.cat([y, y]), torch.cat([t, t])).item() == pytest.approx(1.25)


def test_style_loss_by_hand() -> None:
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # gram [[1.25, 2.75], [2.75, 6.25]]
    target = torch.zeros(1, 2, 2)
    # mean of squared Gram entries: (1.5625 + 2 * 7.5625 + 39.0625) / 4 = 13.9375
    loss = style_loss({"a": f}, {"a": target}, ["a"])
    assert loss.item() == pytest.approx(13.9375)
    # Summed over layers; a target Gram of shape (1, C, C) is shared by the whole batch.
    two = style_loss({"a": f, "b": f}, {"a": target, "b": gram(f)}, ["a", "b"])
    assert two.item() == pytest.approx(13.9375)
    batch = style_loss({"a": torch.cat([f, f])}, {"a": target}, ["a"])
    assert batch.item() == pytest.approx(13.9375)


def test_total_variation_by_hand() -> None:
    y = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])  # (1, 1, 2, 2)
    # vertical: (3-0)^2 + (5-1)^2 = 25; horizontal: (1-0)^2 + (5-3)^2 = 5; / (C*H*W = 4)
    assert total_variation(y).item() == pytest.approx(7.5)
    assert total_variation(torch.full((2, 3, 4, 4), 9.0)).item() == 0.0


def test_pixel_loss_by_hand() -> None:
    y = torch.tensor([[[[10.0, 0.0]], [[0.0, 0.0]], [[0.0, 2.0]]]])  # (1, 3, 1, 2)
    t = torch.zeros_like(y)
    # (100 + 4) / (C*H*W = 6)
    assert squared_error(y, t).item() == pytest.approx(104 / 6)


def test_style_objective_matches_the_loss_functions() -> None:
    """The fast step (no-grad, truncated content branch) gives the plain step's values."""
    from perceptual_edge.train.objectives import StyleObjective
    from perceptual_edge.train.vgg import load_loss_network

    torch.manual_seed(0)
    vgg = load_loss_network("random")
    style = torch.rand(1, 3, 32, 40) * 255
    x = torch.rand(2, 3, 32, 32) * 255
    y = (torch.rand(2, 3, 32, 32) * 255).requires_grad_()
    layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    obj = StyleObjective(vgg, style, "relu3_3", layers, 1.0, 1e5, 1e-6)
    got = obj(y, x)
    fy, fx, fs = vgg(y), vgg(x), vgg(style)
    content = squared_error(fy["relu3_3"], fx["relu3_3"])
    sl = style_loss(fy, {k: gram(v) for k, v in fs.items()}, layers)
    tv = total_variation(y)
    assert got["content"].item() == pytest.approx(content.item(), rel=1e-5)
    assert got["style"].item() == pytest.approx(sl.item(), rel=1e-5)
    assert got["loss"].item() == pytest.approx((content + 1e5 * sl + 1e-6 * tv).item(), rel=1e-5)
    got["loss"].backward()
    g_fast = y.grad.clone()
    y.grad = None
    (content + 1e5 * sl + 1e-6 * tv).backward()
    assert torch.allclose(g_fast, y.grad, rtol=1e-4, atol=1e-6)
