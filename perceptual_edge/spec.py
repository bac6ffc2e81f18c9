"""ModelSpec: the I/O contract every artifact (checkpoint, ONNX, engine, golden file) carries.

One convention, written down once (see `perceptual_edge.image` for the named constants):
inputs and outputs are float32 NCHW RGB tensors in 0..255; the network itself needs its
spatial size to be a multiple of `multiple` (4 for the style net with two stride-2
convolutions, 1 for the SR net); an SR net's output is `scale` times the input size.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from perceptual_edge.errors import InputError
from perceptual_edge.image import CHANNEL_ORDER, LAYOUT, PIXEL_MAX, PIXEL_MIN

SPEC_VERSION = 1
Kind = Literal["style", "sr"]


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from: enough to tell two trained networks apart."""

    source: str = "pe-train"  # pe-train | pytorch-examples | ...
    style_image_sha256: str | None = None  # style nets: hash of the style image file
    loss_net: str = "vgg16"  # vgg16 | random
    loss_net_weights: str = "unknown"  # sha256 of the VGG-16 weight file, or "random:seed=N"
    steps: int = 0  # optimiser steps taken
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    kind: Kind
    scale: int = 1
    input_name: str = "input"
    output_name: str = "output"
    layout: str = LAYOUT
    channel_order: str = CHANNEL_ORDER
    input_range: tuple[float, float] = (PIXEL_MIN, PIXEL_MAX)
    output_range: tuple[float, float] = (PIXEL_MIN, PIXEL_MAX)
    multiple: int = 4
    min_size: int = 16  # smallest side the network accepts (reflection pads need room)
    provenance: Provenance = field(default_factory=Provenance)
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        if self.kind not in ("style", "sr"):
            raise InputError(f"model spec: unknown kind {self.kind!r}")
        if self.kind == "style" and self.scale != 1:
            raise InputError("model spec: a style network has scale 1")
        if self.kind == "sr" and self.scale not in (2, 4, 8):
            raise InputError(f"model spec: unsupported SR scale {self.scale}")
        if self.multiple < 1 or self.min_size < 1:
            raise InputError("model spec: multiple and min_size must be >= 1")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.scale, width * self.scale

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_range"] = list(self.input_range)
        d["output_range"] = list(self.output_range)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        try:
            d = dict(d)
            version = int(d.get("version", SPEC_VERSION))
            if version > SPEC_VERSION:
                raise InputError(
                    f"model spec version {version} is newer than this pe understands "
                    f"({SPEC_VERSION}); upgrade perceptual-edge"
                )
            prov = Provenance(**d.pop("provenance", {}) or {})
            full = (PIXEL_MIN, PIXEL_MAX)
            d["input_range"] = tuple(float(v) for v in d.get("input_range", full))
            d["output_range"] = tuple(float(v) for v in d.get("output_range", full))
            return cls(provenance=prov, **d)
        except InputError:
            raise
        except (TypeError, ValueError, KeyError) as e:
            raise InputError(f"not a valid model spec: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"model spec is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise InputError("model spec JSON is not an object")
        return cls.from_dict(d)

    def with_provenance(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, provenance=dataclasses.replace(self.provenance, **changes))


def style_spec(**provenance: Any) -> ModelSpec:
    return ModelSpec(kind="style", scale=1, multiple=4, provenance=Provenance(**provenance))


def sr_spec(scale: int, **provenance: Any) -> ModelSpec:
    return ModelSpec(
        kind="sr", scale=scale, multiple=1, min_size=8, provenance=Provenance(**provenance)
    )


# The TensorRT optimisation profile over (N, C, H, W): shared by `pe export --trt` and the
# runtime (ONNX Runtime's TensorRT execution provider builds from the same ranges).
Shape = tuple[int, int, int, int]
DEFAULT_MIN: Shape = (1, 3, 64, 64)
DEFAULT_OPT: Shape = (1, 3, 512, 512)
DEFAULT_MAX: Shape = (1, 3, 2160, 3840)  # 4K UHD


def format_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimisation profile for the network's single input."""

    min: Shape
    opt: Shape
    max: Shape

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def default_profile(spec: ModelSpec) -> Profile:
    """The style net: 64x64 .. 4K, tuned for 512x512. SR nets: the same output sizes."""
    s = spec.scale

    def fit(shape: Shape) -> Shape:
        n, c, h, w = shape
        m = spec.multiple
        h, w = max(spec.min_size, h // s), max(spec.min_size, w // s)
        return (n, c, h - h % m, w - w % m)

    return Profile(fit(DEFAULT_MIN), fit(DEFAULT_OPT), fit(DEFAULT_MAX))
