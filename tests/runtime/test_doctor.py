import json
import subprocess
import sys

from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.runtime import doctor

runner = CliRunner()


def test_doctor_json_says_what_runs_here():
    r = runner.invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (
        d["onnxruntime"]["ok"] and d["onnxruntime"]["providers"]["CPUExecutionProvider"]["usable"]
    )
    assert d["can_run"][".onnx on CPU"] == "yes"
    assert d["python"]["version"].startswith("3.")
    for key in ("tensorrt", "cuda_bindings", "gpus", "pyav", "torch", "vgg16_weights"):
        assert key in d
    if not d["tensorrt"]["ok"]:
        assert d["tensorrt"]["error"] and d["can_run"][".engine (TensorRT)"].startswith("no: ")


def test_doctor_table_says_what_the_json_says():
    d = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    r = runner.invoke(app, ["doctor"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()

    def line_of(label: str) -> str:
        found = [ln for ln in lines if ln.strip().startswith(label)]
        assert len(found) == 1, (label, r.stdout)
        return found[0]

    assert d["onnxruntime"]["version"] in line_of("onnxruntime:")
    assert d["onnxruntime"]["auto_picks"] in line_of("auto picks:")
    cores = d["cpu_cores"]
    assert f"{cores['physical']} physical, {cores['logical']} logical" in line_of("CPU cores:")
    assert lines.index("Can run:") < len(lines) - len(d["can_run"])
    for what, answer in d["can_run"].items():
        assert line_of(what).split(None, len(what.split()))[-1] == answer


def test_doctor_does_not_import_torch():
    code = (
        "import sys\nfrom perceptual_edge.runtime.doctor import doctor_report\n"
        "r = doctor_report()\nassert 'torch' not in sys.modules, 'torch imported'\n"
        "print(r['torch']['present'])"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_vgg_lookup_matches_train_and_torch(tmp_path, monkeypatch):
    import torch

    from perceptual_edge.train import vgg

    assert doctor.VGG16_ENV_VAR == vgg.ENV_VAR and doctor.VGG16_FILENAME == vgg.VGG16_FILENAME
    monkeypatch.delenv("TORCH_HUB", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    assert doctor.torch_hub_dir() == __import__("pathlib").Path(torch.hub.get_dir())
    monkeypatch.delenv(doctor.VGG16_ENV_VAR, raising=False)
    assert not doctor.check_vgg16()["found"]
    f = tmp_path / "th" / "hub" / "checkpoints" / doctor.VGG16_FILENAME
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    assert doctor.check_vgg16() == {"found": True, "path": str(f), "via": "torch hub cache"}
    monkeypatch.setenv(doctor.VGG16_ENV_VAR, str(f))
    assert doctor.check_vgg16()["via"] == doctor.VGG16_ENV_VAR


def test_cpu_features_and_openvino_in_the_report():
    from perceptual_edge.hardware import cpu_features, cpu_has_bf16, cpu_has_int8_dot
    from perceptual_edge.runtime.doctor import doctor_report, format_report

    zen4 = "processor: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n"
    f = cpu_features(zen4)
    assert f["avx512_bf16"] and f["avx512_vnni"] and not f["amx_bf16"]
    assert cpu_has_bf16(f) and cpu_has_int8_dot(f)
    zen3 = cpu_features("flags : fpu avx avx2 fma\n")
    assert zen3["avx2"] and not cpu_has_bf16(zen3) and not cpu_has_int8_dot(zen3)
    assert not any(cpu_features("").values())  # unreadable: nothing claimed
    r = doctor_report()
    assert set(r["cpu_features"]) >= {"avx2", "avx512_bf16", "amx_bf16", "avx512_vnni"}
    assert "openvino" in r and r["cpu_path"]
    text = format_report(r)
    assert "CPU features:" in text and "fastest CPU path here:" in text
    if r["openvino"]["ok"]:
        assert "CPU" in r["openvino"]["devices"]
        assert r["can_run"][".onnx via OpenVINO"] == "yes"


def test_cpu_path_follows_the_measured_ranking():
    def report(caps, **features):
        return {"openvino": {"ok": True, "devices": {"CPU": {"capabilities": caps}}},
                "cpu_features": features}  # fmt: skip

    bf16 = doctor.cpu_path(report(["FP32", "BF16", "INT8"], avx512_bf16=True, avx512_vnni=True))
    assert bf16.startswith("openvino bf16") and "VNNI/AMX" in bf16
    vnni = doctor.cpu_path(report(["FP32", "INT8"], avx_vnni=True))
    assert vnni.startswith("openvino int8") and "VNNI/AMX" in vnni and "no BF16" in vnni
    # BF16 units the plugin does not offer (or flags without units) do not count.
    assert doctor.cpu_path(report(["FP32", "INT8"], avx512_bf16=True)).startswith("openvino int8")
    assert "no VNNI" in doctor.cpu_path(report(["FP32", "INT8"], avx2=True))
    assert doctor.cpu_path({"openvino": {"ok": False}}).startswith("onnxruntime fp32")
