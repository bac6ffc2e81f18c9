"""`pe train` and `pe stylize` spell their defaults as literals (so `pe --help` need not import
torch); they must stay equal to train/defaults.py, the one source the library uses."""

import inspect

from perceptual_edge.cli import paper_cmds, train_cmds
from perceptual_edge.train import defaults as D


def _defaults(func) -> dict[str, object]:
    out = {}
    for name, p in inspect.signature(func).parameters.items():
        opt = p.default
        out[name] = getattr(opt, "default", opt)  # a typer.Option, or a plain default
    return out


def test_train_style_defaults_match_the_library():
    d = _defaults(train_cmds.style_cmd)
    assert d["content_weight"] == D.CONTENT_WEIGHT and d["style_weight"] == D.STYLE_WEIGHT
    assert d["tv_weight"] == D.TV_WEIGHT and d["content_layer"] == D.STYLE_CONTENT_LAYER
    assert d["style_layers"] == ",".join(D.STYLE_LAYERS)
    assert d["image_size"] == D.IMAGE_SIZE and d["batch_size"] == D.BATCH_SIZE
    assert d["lr"] == D.LR


def test_train_sr_and_stylize_defaults_match_the_library():
    sr = _defaults(train_cmds.sr_cmd)
    assert sr["content_layer"] == D.SR_CONTENT_LAYER and sr["image_size"] == D.SR_PATCH
    st = _defaults(paper_cmds._stylize)
    assert st["style_weight"] == D.STYLE_WEIGHT and st["content_layer"] == D.STYLE_CONTENT_LAYER
    assert st["tv_weight"] == D.TV_WEIGHT and st["content_weight"] == D.CONTENT_WEIGHT
    assert st["style_layers"] == ",".join(D.STYLE_LAYERS)
