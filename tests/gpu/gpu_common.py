"""What every step of tests/gpu/acceptance.py shares: the step runner, skips and the checks for
a library or a CUDA device. Its own module so that the step modules and the script share one
`Skip` class (the script runs as __main__, which a step module cannot import by name)."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


class Skip(Exception):
    """A step that cannot run here; the message says why."""


def need(module: str, why: str | None = None) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as e:
        raise Skip(why or f"{module} is not importable ({type(e).__name__}: {e})") from None


def torch_cuda() -> Any:
    torch = need("torch")
    if not torch.cuda.is_available():
        raise Skip("PyTorch has no CUDA device here")
    return torch


class Run:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.steps: dict[str, dict[str, Any]] = {}
        self.state: dict[str, Any] = {}

    def step(self, name: str, fn: Callable[[], dict[str, Any] | None]) -> None:
        t0 = time.perf_counter()
        try:
            out = {"status": "ok", **(fn() or {})}
        except Skip as e:
            out = {"status": "skipped", "reason": str(e)}
        except Exception as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            out = {"status": "failed", "error": f"{type(e).__name__}: {e} ({where})"}
        out["seconds"] = round(time.perf_counter() - t0, 2)
        self.steps[name] = out
        detail = out.get("reason") or out.get("error") or ""
        print(f"[{out['status']:>7}] {name} ({out['seconds']} s) {detail}", file=sys.stderr)
