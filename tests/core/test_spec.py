import json

import pytest

from perceptual_edge.errors import InputError
from perceptual_edge.spec import SPEC_VERSION, ModelSpec, Provenance, sr_spec, style_spec


def test_json_round_trip_keeps_every_field():
    spec = sr_spec(8, style_image_sha256=None, loss_net="random", loss_net_weights="random:seed=0")
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert again.output_size(10, 7) == (80, 56)
    assert again.provenance.loss_net == "random"


def test_style_spec_contract():
    s = style_spec(style_image_sha256="ab" * 32)
    d = json.loads(s.to_json())
    assert d["kind"] == "style" and d["multiple"] == 4 and d["scale"] == 1
    assert d["layout"] == "NCHW" and d["channel_order"] == "RGB"
    assert d["input_range"] == [0.0, 255.0] and d["output_range"] == [0.0, 255.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "gan"},
        {"kind": "style", "scale": 4},
        {"kind": "sr", "scale": 3},
        {"kind": "style", "unknown_field": 1},
        {"kind": "style", "version": SPEC_VERSION + 1},
    ],
)
def test_invalid_specs_are_input_errors(bad):
    with pytest.raises(InputError):
        ModelSpec.from_dict(bad)


def test_not_json_is_input_error():
    with pytest.raises(InputError):
        ModelSpec.from_json("{not json")
    with pytest.raises(InputError):
        ModelSpec.from_json("[1, 2]")


def test_with_provenance_is_a_copy():
    s = style_spec()
    t = s.with_provenance(steps=10)
    assert s.provenance.steps == 0 and t.provenance.steps == 10
    assert isinstance(t.provenance, Provenance)
