"""The three floors and the direction of every import between them, lazy imports included.

    contract      perceptual_edge/{spec,image,video,errors,fsutil,progress,samples,metrics,hardware}
    stages        train/ (+contract), runtime/ (+contract, never torch), export/ (+train, runtime)
    applications  perceptual_edge/cli/, paper/, demo.py, models.py, __main__.py, __init__.py

Every `import` and `from ... import` anywhere in a module (inside functions too) is read from
the syntax tree, so a lazy import cannot hide; `importlib.import_module("...")` with a literal
name counts as well. Files over the 400-line guide are listed too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {  # source folder -> package it installs as
    "perceptual_edge": "perceptual_edge",
    "train": "perceptual_edge.train",
    "export": "perceptual_edge.export",
    "runtime": "perceptual_edge.runtime",
}
CONTRACT = (
    "spec",
    "image",
    "video",
    "errors",
    "fsutil",
    "progress",
    "samples",
    "metrics",
    "hardware",
)
APPLICATIONS = ("cli", "paper", "demo", "models", "__main__")
ALLOWED = {
    "contract": {"contract"},
    "train": {"contract", "train"},
    "runtime": {"contract", "runtime"},
    "export": {"contract", "train", "runtime", "export"},
    "application": {"contract", "train", "runtime", "export", "application"},
}
NO_TORCH = {"contract", "runtime"}  # they must run on an edge box without PyTorch
MAX_LINES = 400


def floor(module: str) -> str:
    """The floor of a perceptual_edge module name."""
    parts = module.split(".")
    if parts[0] != "perceptual_edge":
        raise ValueError(module)
    if len(parts) == 1:
        return "application"  # the package facade: lazy re-exports for embedding apps
    head = parts[1]
    if head in ("train", "export", "runtime"):
        return head
    if head in CONTRACT:
        return "contract"
    if head in APPLICATIONS:
        return "application"
    raise AssertionError(f"{module}: not assigned to a floor (add it to CONTRACT/APPLICATIONS)")


def sources() -> dict[str, Path]:
    """Module name -> file, for every module of the installed package."""
    out: dict[str, Path] = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def imported_names(package: str, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth; `package` is
    where relative imports start (the module itself for an __init__, else its parent)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.append((node.lineno, base))
            # `from perceptual_edge import train` imports the subpackage itself
            names += [(node.lineno, f"{base}.{a.name}") for a in node.names if base]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append((node.lineno, node.args[0].value))
    return names


def violations(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import that points the wrong way, as 'module:line imports name (floor -> floor)';
    `modules` maps a module name to (source, is_package)."""
    found = []
    for module, (source, is_package) in modules.items():
        mine = floor(module)
        package = module if is_package else module.rsplit(".", 1)[0]
        for line, name in imported_names(package, source):
            top = name.split(".")[0]
            if top in ("torch", "torchvision") and mine in NO_TORCH:
                found.append(f"{module}:{line} imports {name} ({mine} must not import torch)")
            if top in ("train", "export", "runtime"):
                found.append(f"{module}:{line} imports bare {name!r}; use perceptual_edge.{name}")
            if top != "perceptual_edge" or name in ("perceptual_edge",):
                continue
            try:
                theirs = floor(name)
            except AssertionError:
                # `from perceptual_edge.x import Name`: Name is an attribute, not a module
                theirs = floor(name.rsplit(".", 1)[0])
            if theirs not in ALLOWED[mine]:
                found.append(f"{module}:{line} imports {name} ({mine} -> {theirs})")
    return found


def _read_all() -> dict[str, tuple[str, bool]]:
    return {
        m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in sources().items()
    }


def test_every_import_points_down() -> None:
    assert violations(_read_all()) == []


def test_a_lazy_forbidden_import_is_caught() -> None:
    """The check fails when a forbidden import is added, even one hidden inside a function."""
    modules = _read_all()

    def add(module: str, code: str) -> None:
        source, is_package = modules[module]
        modules[module] = (source + code, is_package)

    add(
        "perceptual_edge.runtime.session",
        "\n\ndef _sneaky():\n    from perceptual_edge.train.checkpoint import load_model\n"
        "    import torch\n    return load_model, torch\n",
    )
    add("perceptual_edge.image", "\n\ndef _also():\n    import perceptual_edge.runtime\n")
    add(
        "perceptual_edge.train.loop",
        "\nimportlib.import_module('perceptual_edge.runtime.session')\n",
    )
    add("perceptual_edge.video.reader", "\nfrom perceptual_edge import models\n")
    found = violations(modules)
    assert any("session" in v and "perceptual_edge.train.checkpoint" in v for v in found)
    assert any("session" in v and "must not import torch" in v for v in found)
    assert any(v.startswith("perceptual_edge.image:") and "contract -> runtime" in v for v in found)
    assert any(v.startswith("perceptual_edge.train.loop:") for v in found)
    assert any(v.startswith("perceptual_edge.video.reader:") for v in found)


def test_relative_imports_resolve() -> None:
    names = imported_names(
        "perceptual_edge.runtime", "from .tiling import x\nfrom .. import spec\n"
    )
    assert (1, "perceptual_edge.runtime.tiling") in names
    assert (2, "perceptual_edge.spec") in names


def test_files_stay_under_the_line_guide() -> None:
    files = [*sources().values(), *sorted((ROOT / "tests").rglob("*.py"))]
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in files}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert long == {}
