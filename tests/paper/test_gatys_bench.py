"""Table 1 functions (`pe bench --gatys` calls exactly these): measured vs extrapolated times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceptual_edge.errors import InputError
from perceptual_edge.image import save_image
from perceptual_edge.paper.gatys_bench import format_speed_table, gatys_speed_table
from perceptual_edge.samples import style_image


@pytest.fixture(scope="module")
def table(style_ckpt: Path) -> dict:
    return gatys_speed_table(
        style_ckpt, sizes=(32, 42), iterations=(2, 3, 7), measure=3, device="cpu"
    )


def test_rows_measured_and_extrapolated(table):
    assert table["device"] == "cpu" and table["loss_net"] == "random"
    assert table["loss_net_weights"] == "random:seed=0"
    assert json.loads(json.dumps(table)) == table  # JSON-ready for `pe bench --gatys --json`
    assert [r["size"] for r in table["rows"]] == [32, 44]  # measured at the network's multiple
    for r in table["rows"]:
        g = r["gatys"]
        assert not g["2"]["extrapolated"] and not g["3"]["extrapolated"]
        assert g["7"]["extrapolated"]
        assert g["3"]["seconds"] == pytest.approx(3 * r["lbfgs_iteration_s"])
        assert g["7"]["seconds"] == pytest.approx(7 * r["lbfgs_iteration_s"])
        assert 0 < g["2"]["seconds"] <= g["3"]["seconds"]
        for n in ("2", "3", "7"):
            assert g[n]["speedup"] == pytest.approx(g[n]["seconds"] / r["feedforward_s"])
        assert r["feedforward_s"] > 0 and r["loss_net_forward_s"] > 0
        assert r["loss_net_forward_backward_s"] > r["loss_net_forward_s"]
        assert 0.0 <= r["overhead_fraction"] < 1.0


def test_format_says_what_is_extrapolated(table):
    text = format_speed_table(table)
    lines = text.splitlines()
    assert "random" in lines[0] and "CPU" in lines[0]
    assert "Gatys 7 it (s)" in lines[1] and "loss-net fwd+bwd" in lines[1]
    row = lines[2].split()
    assert row[0] == "32x32" and not row[1].endswith("*") and row[3].endswith("*")
    assert lines[-1].startswith("* extrapolated from 3 measured")
    only_measured = dict(table, iterations=[2, 3])
    only_measured["rows"] = [
        dict(r, gatys={k: v for k, v in r["gatys"].items() if k != "7"}) for r in table["rows"]
    ]
    assert "extrapolated" not in format_speed_table(only_measured)


def test_custom_style_and_bad_arguments(style_ckpt: Path, sr4_ckpt: Path, tmp_path: Path):
    style = save_image(style_image(20, 30), tmp_path / "s.png")
    t = gatys_speed_table(style_ckpt, style, sizes=(24,), iterations=(1,), measure=1, device="cpu")
    assert not t["rows"][0]["gatys"]["1"]["extrapolated"]
    for kwargs, match in (
        ({"measure": 0}, "measure"),
        ({"sizes": (8,)}, "sizes"),
        ({"iterations": (0,)}, "iteration"),
        ({"sizes": ()}, "at least one"),
    ):
        with pytest.raises(InputError, match=match):
            gatys_speed_table(style_ckpt, device="cpu", **kwargs)
    with pytest.raises(InputError, match="style"):
        gatys_speed_table(sr4_ckpt, sizes=(32,), iterations=(1,), measure=1, device="cpu")
    with pytest.raises(InputError, match="no such file"):
        gatys_speed_table(tmp_path / "missing.pth", sizes=(32,), iterations=(1,), measure=1)
