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


def test_doctor_table():
    r = runner.invoke(app, ["doctor"])
    assert r.exit_code == 0, r.output
    for word in ("onnxruntime", "TensorRT", "cuda-python", "pycuda", "GPU", "PyAV", "torch",
                 "VGG-16", "Can run"):  # fmt: skip
        assert word in r.stdout


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
