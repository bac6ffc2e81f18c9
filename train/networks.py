"""Build a network from the `config` section of a checkpoint, and its ModelSpec."""

from __future__ import annotations

from typing import Any

from torch import nn

from perceptual_edge.errors import InputError
from perceptual_edge.spec import ModelSpec, sr_spec, style_spec
from perceptual_edge.train.sr_net import SRNet, SRNetConfig
from perceptual_edge.train.style_net import StyleNet, StyleNetConfig

NETWORKS = ("style", "sr")


def network_config(network: str, **options: Any) -> dict[str, Any]:
    """The checkpoint's `config` dict: {"network": "style"|"sr", **config fields}."""
    if network == "style":
        return {"network": "style", **StyleNetConfig(**options).to_dict()}
    if network == "sr":
        return {"network": "sr", **SRNetConfig(**options).to_dict()}
    raise InputError(f"unknown network {network!r}; choose from {NETWORKS}")


def build_network(config: dict[str, Any]) -> nn.Module:
    d = dict(config)
    network = d.pop("network", None)
    try:
        if network == "style":
            return StyleNet(StyleNetConfig.from_dict(d))
        if network == "sr":
            return SRNet(SRNetConfig.from_dict(d))
    except (TypeError, ValueError) as e:
        raise InputError(f"invalid network config: {e}") from None
    raise InputError(f"unknown network {network!r} in config; expected one of {NETWORKS}")


def spec_for(config: dict[str, Any], **provenance: Any) -> ModelSpec:
    if config.get("network") == "sr":
        return sr_spec(int(config["factor"]), **provenance)
    return style_spec(**provenance)
