"""N steps straight == N/2 steps + a real kill + --resume + the rest, bit for bit, on CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

STEPS = 6


def _cmd(style: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "perceptual_edge", "train", "style",
        "--style", str(style), "--data", str(data), "-o", str(out),
        "--image-size", "32", "--batch-size", "2", "--iterations", str(STEPS),
        "--loss-net", "random", "--checkpoint-every", "3", "--sample-every", "0",
        "--log-every", "1", "--device", "cpu", "-q", *extra,
    ]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WORLD_SIZE", None)
    env.update(extra)
    return env


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(**env), timeout=300)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"trainer exited early: {proc.stderr.read() if proc.stderr else ''}"
            )
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.05)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_identical(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ after resume: {different[:3]}"


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, tiny_style: Path, tiny_data: Path) -> Path:
    out = tmp_path_factory.mktemp("straight") / "full.pth"
    r = _run(_cmd(tiny_style, tiny_data, out))
    assert r.returncode == 0, r.stderr
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["train_state"]["step"] == STEPS
    assert ckpt["spec"]["provenance"]["steps"] == STEPS
    return out


def test_sigkill_then_resume_is_bit_identical(
    straight: Path, tiny_style: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "half.pth"
    # The hook holds the process right after its step-3 checkpoint, so SIGKILL lands there.
    proc = subprocess.Popen(
        _cmd(tiny_style, tiny_data, out),
        env=_env(PE_TRAIN_SLEEP_AFTER_CHECKPOINT="60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    half = torch.load(out, map_location="cpu", weights_only=True)
    assert half["train_state"]["step"] == STEPS // 2
    # Resuming into the same file continues the run: no --overwrite needed.
    r = _run(_cmd(tiny_style, tiny_data, out, "--resume", str(out)))
    assert r.returncode == 0, r.stderr
    _assert_identical(straight, out)
    # The log has one line per step, with nothing duplicated from the lost half.
    lines = (tmp_path / "half.log.jsonl").read_text().splitlines()
    assert len(lines) == STEPS


def test_sigterm_saves_and_resume_is_bit_identical(
    straight: Path, tiny_style: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """SIGTERM (what `kill`, systemd and Kubernetes send) to a real `pe train` process: it saves,
    says so in one line, exits 143, and --resume finishes bit for bit. A process of its own, as
    in real use: in the shared pytest process, an earlier test's OpenVINO had left the main
    thread in a state where delivering a signal crashed it (SIGSEGV, not our handler)."""
    out = tmp_path / "term.pth"
    proc = subprocess.Popen(
        _cmd(tiny_style, tiny_data, out),
        env=_env(PE_TRAIN_SLEEP_AFTER_CHECKPOINT="60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    step = torch.load(out, map_location="cpu", weights_only=True)["train_state"]["step"]
    assert 3 <= step < STEPS
    r = _run(_cmd(tiny_style, tiny_data, out, "--resume", str(out)))
    assert r.returncode == 0, r.stderr
    _assert_identical(straight, out)
