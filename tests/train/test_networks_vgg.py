"""Network shapes for every variant, VGG-16 names and weight resolution, checkpoint safety."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from perceptual_edge.errors import InputError, UnavailableError  # noqa: E402
from perceptual_edge.train import (  # noqa: E402
    Checkpoint,
    build_network,
    load_checkpoint,
    network_config,
    save_checkpoint,
    spec_for,
)
from perceptual_edge.train import vgg as vgg_mod  # noqa: E402


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("upsample", ["nearest-conv", "deconv"])
@pytest.mark.parametrize("output", ["tanh", "clamp"])
def test_style_net_variants(norm: str, upsample: str, output: str) -> None:
    net = build_network(network_config("style", norm=norm, upsample=upsample, output=output))
    net.eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 20, 28) * 255)
    assert y.shape == (2, 3, 20, 28)
    assert float(y.min()) >= 0 and float(y.max()) <= 255


@pytest.mark.parametrize("factor", [4, 8])
@pytest.mark.parametrize("upsample", ["nearest-conv", "deconv"])
def test_sr_net_variants(factor: int, upsample: str) -> None:
    net = build_network(network_config("sr", factor=factor, upsample=upsample, norm="batch"))
    net.eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 9, 11) * 255)
    assert y.shape == (1, 3, 9 * factor, 11 * factor)
    ups = [k for k in net.state_dict() if k.startswith("up.") and k.endswith("conv.weight")]
    assert len(ups) == {4: 2, 8: 3}[factor]


def test_vgg_layer_names_and_torchvision_keys() -> None:
    names = vgg_mod.LAYER_NAMES
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    idx = vgg_mod.LAYER_INDEX
    # torchvision's vgg16.features indices
    assert (idx["relu1_2"], idx["relu2_2"], idx["relu3_3"], idx["relu4_3"]) == (3, 8, 15, 22)
    net = vgg_mod.VGG16Features(["relu4_3"])
    keys = list(net.state_dict())
    assert keys[0] == "features.0.weight" and keys[-1] == "features.21.bias"
    assert len(keys) == 20  # 10 convolutions up to conv4_3


def _fake_vgg_file(path: Path) -> Path:
    net = vgg_mod.VGG16Features(["relu4_3"])
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry more keys
    torch.save(state, path)
    return path


def test_vgg_weight_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(vgg_mod.ENV_VAR, raising=False)
    # Nothing anywhere, offline: one message that says how to provide the file.
    with pytest.raises(UnavailableError) as e:
        vgg_mod.resolve_vgg16_weights()
    msg = str(e.value)
    assert "--vgg-weights" in msg and vgg_mod.ENV_VAR in msg and "--loss-net random" in msg
    assert "\n" not in msg
    # The hub cache under $TORCH_HOME.
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / vgg_mod.VGG16_FILENAME
    cached.parent.mkdir(parents=True, exist_ok=True)
    _fake_vgg_file(cached)
    assert vgg_mod.resolve_vgg16_weights() == cached
    # The environment variable beats the cache; an explicit path beats both.
    env_file = _fake_vgg_file(tmp_path / "env.pth")
    monkeypatch.setenv(vgg_mod.ENV_VAR, str(env_file))
    assert vgg_mod.resolve_vgg16_weights() == env_file
    explicit = _fake_vgg_file(tmp_path / "explicit.pth")
    assert vgg_mod.resolve_vgg16_weights(explicit) == explicit
    with pytest.raises(InputError, match="no such file"):
        vgg_mod.resolve_vgg16_weights(tmp_path / "missing.pth")
    monkeypatch.setenv(vgg_mod.ENV_VAR, str(tmp_path / "missing.pth"))
    with pytest.raises(InputError, match=vgg_mod.ENV_VAR):
        vgg_mod.resolve_vgg16_weights()
    # Loading records the file's hash; "random" is explicit and says so.
    net = vgg_mod.load_loss_network("vgg16", ["relu2_2"], explicit)
    assert net.weights_id == f"sha256:{vgg_mod.sha256_file(explicit)}"
    assert vgg_mod.load_loss_network("random").weights_id == "random:seed=0"


def test_vgg_download_is_used_when_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append(url)
        _fake_vgg_file(Path(dst))

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(vgg_mod.ENV_VAR, raising=False)
    p = vgg_mod.resolve_vgg16_weights()
    assert calls == [vgg_mod.VGG16_URL] and p.name == vgg_mod.VGG16_FILENAME


def test_checkpoint_round_trip_and_refusal_of_code(tmp_path: Path) -> None:
    config = network_config("sr", factor=4)
    net = build_network(config)
    spec = spec_for(config, loss_net="random", loss_net_weights="random:seed=0", steps=7)
    ts = {"step": 7, "optimizer": {"state": {}, "param_groups": []}, "sampler": {"seed": 0}}
    path = save_checkpoint(Checkpoint(spec, config, net.state_dict(), ts), tmp_path / "a.pth")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == 1 and raw["train_state"]["step"] == 7
    back = load_checkpoint(path)
    assert back.spec == spec and back.config == config
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict[k], v)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"format": 1, "x": Evil()}, evil, pickle_module=pickle)
    with pytest.raises(InputError, match="refused"):
        load_checkpoint(evil)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_checkpoint(tmp_path / "empty.pth")
    truncated = tmp_path / "trunc.pth"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputError):
        load_checkpoint(truncated)
