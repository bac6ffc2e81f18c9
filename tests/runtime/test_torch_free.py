"""The runtime never imports torch, train or export (checked in fresh interpreters: "is torch
importable" proves nothing, what matters is whether it ends up in sys.modules)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "perceptual_edge.train", "perceptual_edge.export", "onnx")
# The CLI (an application) reads the training defaults to print `--help`: that module, and the
# lazy package above it, are the only parts of train/ it may load without training.
CLI_TRAIN_MODULES = ("perceptual_edge.train", "perceptual_edge.train.defaults")


def run_py(code: str, python: str = sys.executable, timeout: int = 120, cwd: Path | None = None):
    # Run outside the source tree unless asked: `python -c` puts the cwd first on sys.path,
    # where the bare perceptual_edge/ folder would shadow the installed package.
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=cwd or "/"
    )


def loaded(modules_expr: str, cli: bool = False) -> str:
    """Code that runs `modules_expr` and prints the forbidden modules it loaded (none: "")."""
    allowed = CLI_TRAIN_MODULES if cli else ()
    return (
        "import sys\n"
        f"{modules_expr}\n"
        f"bad = [m for m in sys.modules if m in {FORBIDDEN!r} and m not in {allowed!r}]\n"
        f"bad += [m for m in sys.modules if m.startswith('perceptual_edge.train.')\n"
        f"        and m not in {allowed!r}]\n"
        "print(','.join(sorted(bad)))\n"
    )


def test_import_runtime_does_not_load_torch():
    p = run_py(
        loaded(
            "import perceptual_edge.runtime\n"
            "import perceptual_edge.runtime.tiling, perceptual_edge.runtime.bench\n"
            "import perceptual_edge.runtime.trt_backend, perceptual_edge.runtime.doctor\n"
            "import perceptual_edge.runtime.openvino_backend, perceptual_edge.runtime.precision\n"
            "import perceptual_edge.runtime.bench_matrix, perceptual_edge.runtime.peaks"
        )
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "", f"runtime imported {p.stdout.strip()}"


def test_pe_run_help_does_not_load_torch():
    code = loaded(
        "from perceptual_edge.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['run', '--help'])\n"
        "assert r.exit_code == 0, r.output",
        cli=True,
    )
    p = run_py(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "", f"`pe run --help` imported {p.stdout.strip()}"


def test_running_an_onnx_model_does_not_load_torch(style_onnx):
    code = loaded(
        "import numpy as np\nfrom perceptual_edge.runtime import Session\n"
        f"s = Session({str(style_onnx)!r})\n"
        "assert s.run(np.zeros((20, 30, 3), np.uint8), tile=16).shape == (20, 30, 3)"
    )
    p = run_py(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "", f"running a Session imported {p.stdout.strip()}"


@pytest.mark.slow
def test_fresh_venv_without_torch_runs_an_onnx_model(style_onnx, tmp_path):
    """Install the package with only its base (runtime) dependencies into a fresh venv, without
    system site-packages, and run a model end to end there. Needs the base dependencies from
    the pip cache or the package registry; skips with the reason when pip cannot get them."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    src = tmp_path / "src"  # a copy, so the build never writes into the working tree
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "*.egg-info", "__pycache__", "build", "tests"
        ),
    )
    pip = subprocess.run(
        [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0:
        tail = (pip.stderr or pip.stdout).strip().splitlines()[-1:]
        pytest.skip(f"pip could not install the runtime dependencies here: {tail}")
    p = run_py("import torch", python=py)
    assert p.returncode != 0, (
        "torch is installed in the fresh venv; the base install must not pull it"
    )
    code = loaded(
        "import numpy as np\nfrom perceptual_edge.runtime import Session\n"
        f"with Session({str(style_onnx)!r}) as s:\n"
        "    out = s.run(np.full((33, 47, 3), 128, np.uint8))\n"
        "assert out.shape == (33, 47, 3) and out.dtype == np.uint8"
    )
    p = run_py(code, python=py, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""
    cli = subprocess.run(
        [str(env_dir / "bin" / "pe"), "doctor"], capture_output=True, text=True, timeout=120
    )
    assert cli.returncode == 0, cli.stderr
    assert "torch: not installed" in cli.stdout
