"""Triton Inference Server model repositories for our ONNX files and TensorRT plans.

    REPO/NAME_onnx/config.pbtxt    platform "onnxruntime_onnx"
    REPO/NAME_onnx/1/model.onnx
    REPO/NAME_plan/config.pbtxt    platform "tensorrt_plan"     (where an engine was built)
    REPO/NAME_plan/1/model.plan
    REPO/NAME_plan/README.md       the TensorRT version and GPU the plan needs

Triton deserialises a plan only with the TensorRT version that built it (and on that GPU
architecture), so a plan's config carries `parameters { key: "tensorrt_version" ... }` and the
README beside it says which Triton release to use; both come from the plan's NAME.engine.json.

With max_batch_size > 0 Triton owns the batch dimension, so dims are [3, -1, -1] (dynamic
height and width). The config text is checked by parsing it back with `parse_pbtxt`, a
parser for the protobuf text-format subset these files use (Triton's model_config proto is
not available here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.fsutil import atomic_path, write_text_atomic
from perceptual_edge.spec import ModelSpec

PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), ".plan": ("tensorrt_plan", "model.plan")}
DEFAULT_MAX_BATCH = 8
QUEUE_DELAY_US = 100


@dataclass(frozen=True)
class TritonModel:
    name: str
    platform: str
    max_batch_size: int
    input_name: str
    output_name: str
    data_type: str  # TYPE_FP32 | TYPE_FP16
    instance_kind: str  # KIND_GPU | KIND_CPU | KIND_AUTO
    parameters: tuple[tuple[str, str], ...] = ()  # string parameters (a plan's TensorRT version)


def config_text(model: TritonModel) -> str:
    """config.pbtxt for one model."""
    return (
        f'name: "{model.name}"\n'
        f'platform: "{model.platform}"\n'
        f"max_batch_size: {model.max_batch_size}\n"
        "input [\n"
        "  {\n"
        f'    name: "{model.input_name}"\n'
        f"    data_type: {model.data_type}\n"
        "    dims: [ 3, -1, -1 ]\n"
        "  }\n"
        "]\n"
        "output [\n"
        "  {\n"
        f'    name: "{model.output_name}"\n'
        f"    data_type: {model.data_type}\n"
        "    dims: [ 3, -1, -1 ]\n"
        "  }\n"
        "]\n"
        "instance_group [\n"
        "  {\n"
        "    count: 1\n"
        f"    kind: {model.instance_kind}\n"
        "  }\n"
        "]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n"
        "}\n"
    ) + "".join(
        f'parameters {{\n  key: "{key}"\n  value {{ string_value: "{value}" }}\n}}\n'
        for key, value in model.parameters
    )


_TOKEN = re.compile(
    r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([:{}\[\],]))'
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise InputError(
                f"config.pbtxt: unexpected text at offset {pos}: {text[pos : pos + 20]!r}"
            )
        pos = m.end()
        comment, string, ident, number, punct = m.groups()
        if comment:
            continue
        if string is not None:
            out.append(("str", bytes(string[1:-1], "utf-8").decode("unicode_escape")))
        elif ident is not None:
            out.append(("ident", ident))
        elif number is not None:
            out.append(("num", float(number) if any(c in number for c in ".eE") else int(number)))
        else:
            out.append(("punct", punct))
    return out


def parse_pbtxt(text: str) -> dict[str, list[Any]]:
    """Protobuf text format (the subset Triton configs use) -> {field: [values]}.

    Messages become dicts, lists `[a, b]` add each element to the field's values, enum names
    stay strings. Every field maps to a list because any field may repeat.
    """
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, Any] | None:
        return toks[pos] if pos < len(toks) else None

    def take(kind: str, value: Any = None) -> Any:
        nonlocal pos
        t = peek()
        if t is None or t[0] != kind or (value is not None and t[1] != value):
            raise InputError(
                f"config.pbtxt: expected {value or kind}, found {t[1] if t else 'end'}"
            )
        pos += 1
        return t[1]

    def scalar() -> Any:
        t = peek()
        if t is None or t[0] == "punct":
            raise InputError(f"config.pbtxt: expected a value, found {t[1] if t else 'end'}")
        return take(t[0])

    def value() -> list[Any]:
        t = peek()
        if t == ("punct", "{"):
            take("punct", "{")
            msg = message(closing="}")
            take("punct", "}")
            return [msg]
        if t == ("punct", "["):
            take("punct", "[")
            items: list[Any] = []
            while peek() != ("punct", "]"):
                items.extend(value())
                if peek() == ("punct", ","):
                    take("punct", ",")
            take("punct", "]")
            return items
        return [scalar()]

    def message(closing: str | None) -> dict[str, list[Any]]:
        fields: dict[str, list[Any]] = {}
        while peek() is not None and peek() != ("punct", closing):
            t = peek()
            if t is not None and t[0] != "ident":
                raise InputError(
                    f"config.pbtxt: expected a field name, found {t[1]!r} (unbalanced?)"
                )
            name = take("ident")
            if peek() == ("punct", ":"):
                take("punct", ":")
            elif peek() not in (("punct", "{"), ("punct", "[")):
                raise InputError(f"config.pbtxt: expected ':' after {name}")
            fields.setdefault(name, []).extend(value())
        return fields

    result = message(closing=None)
    return result


def check_config(text: str, model: TritonModel) -> None:
    """Parse the written text back and check the fields Triton needs."""
    cfg = parse_pbtxt(text)
    problems = []
    if cfg.get("name") != [model.name]:
        problems.append("name")
    if cfg.get("platform") != [model.platform]:
        problems.append("platform")
    if cfg.get("max_batch_size") != [model.max_batch_size]:
        problems.append("max_batch_size")
    for key, tensor in (("input", model.input_name), ("output", model.output_name)):
        entries = cfg.get(key, [])
        if len(entries) != 1 or entries[0].get("name") != [tensor]:
            problems.append(key)
        elif entries[0].get("dims") != [3, -1, -1]:
            problems.append(f"{key}.dims")
    if not cfg.get("instance_group") or "dynamic_batching" not in cfg:
        problems.append("instance_group/dynamic_batching")
    written = {p["key"][0]: p["value"][0]["string_value"][0] for p in cfg.get("parameters", [])}
    if written != dict(model.parameters):
        problems.append("parameters")
    if problems:
        raise InputError(f"config.pbtxt for {model.name} is wrong in: {', '.join(problems)}")


def triton_model(
    artifact: str | os.PathLike[str],
    repository: str | os.PathLike[str],
    name: str,
    spec: ModelSpec,
    *,
    max_batch_size: int = DEFAULT_MAX_BATCH,
    fp16_io: bool = False,
    overwrite: bool = False,
) -> Path:
    """Add one model (an .onnx or a .plan/.engine) to a Triton repository; its folder path."""
    src = Path(artifact)
    suffix = ".plan" if src.suffix.lower() in (".plan", ".engine", ".trt") else src.suffix.lower()
    if suffix not in PLATFORMS:
        raise InputError(f"{src}: Triton models must be .onnx or TensorRT plans")
    platform, filename = PLATFORMS[suffix]
    folder = Path(repository) / name
    if folder.exists():
        if not overwrite:
            raise OutputExistsError(f"{folder} exists; pass --overwrite to replace it")
        shutil.rmtree(folder)
    (folder / "1").mkdir(parents=True)
    built = plan_record(src) if platform == "tensorrt_plan" else None
    model = TritonModel(
        name=name,
        platform=platform,
        max_batch_size=int(max_batch_size),
        input_name=spec.input_name,
        output_name=spec.output_name,
        data_type="TYPE_FP16" if fp16_io else "TYPE_FP32",
        instance_kind="KIND_GPU" if platform == "tensorrt_plan" else "KIND_AUTO",
        parameters=(("tensorrt_version", built["tensorrt_version"]),) if built else (),
    )
    text = config_text(model)
    check_config(text, model)
    with atomic_path(folder / "1" / filename) as tmp:
        shutil.copyfile(src, tmp)
    write_text_atomic(folder / "config.pbtxt", text)
    if platform == "tensorrt_plan":
        write_text_atomic(folder / "README.md", plan_readme(name, built))
    return folder


def plan_record(plan: Path) -> dict[str, str] | None:
    """TensorRT version and GPU from the plan's NAME.engine.json, or None without one."""
    sidecar = plan.with_name(plan.name + ".json")
    try:
        meta = json.loads(sidecar.read_text())
        gpu = meta.get("gpu", {})
        return {
            "tensorrt_version": str(meta["tensorrt_version"]),
            "gpu": str(gpu.get("name", "unknown")),
            "compute_capability": str(gpu.get("compute_capability", "unknown")),
        }
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def plan_readme(name: str, built: dict[str, str] | None) -> str:
    if built is None:
        return (
            f"# {name}\n\nA TensorRT plan whose TensorRT version is not recorded (no "
            "NAME.engine.json beside it). Triton loads a plan only with the TensorRT version that "
            "built it: use the Triton release that ships that version.\n"
        )
    major_minor = ".".join(built["tensorrt_version"].split(".")[:2])
    return (
        f"# {name}\n\nBuilt with TensorRT {built['tensorrt_version']} on {built['gpu']} "
        f"(compute capability {built['compute_capability']}).\n\n"
        "Triton loads a plan only with the TensorRT version that built it, on a GPU of the same "
        f"compute capability: serve it with a Triton release that ships TensorRT {major_minor} "
        "(NVIDIA's framework support matrix lists which), or rebuild the plan for yours with "
        "`pe export` or the printed trtexec command.\n"
    )
