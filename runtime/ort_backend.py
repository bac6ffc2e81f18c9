"""ONNX Runtime backend: the embedded default, runs everywhere.

`device="auto"` (or None) tries the execution providers in AUTO_ORDER and keeps the first that
really starts and runs; a GPU provider that is listed but fails to start (or to run a first
small frame) is logged with the reason and skipped. An explicit device that cannot start raises
UnavailableError naming the missing library, never a silent fallback.

GPU providers are configured as ONNX Runtime documents them, not left at their defaults:
- TensorRT EP: registered with the CUDA EP after it (nodes TensorRT cannot take run on CUDA,
  not on the CPU) and the CPU last; an explicit optimisation profile (the same ranges as
  `pe export --trt`), so the engine is built once for every size in it instead of at the first
  run and again for each new shape range; engine and timing caches on disk, so a second
  process loads the engine instead of rebuilding it.
- CUDA EP: cuDNN's HEURISTIC convolution search. ORT's default, EXHAUSTIVE, benchmarks every
  algorithm for each new input shape; with any-size images every new size pays that again.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, OutOfMemoryError, UnavailableError, first_line
from perceptual_edge.fsutil import sha256_file
from perceptual_edge.runtime.backend import SPEC_METADATA_KEY, cache_root, inference_error
from perceptual_edge.runtime.cuda_stack import preload_cuda_libraries
from perceptual_edge.runtime.precision import file_precision
from perceptual_edge.spec import ModelSpec, Profile, default_profile, format_shape

log = logging.getLogger("perceptual_edge.runtime")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
# What device="auto" tries, in order. CUDA first, although the TensorRT EP runs faster once its
# engine exists: its first use builds that engine (a minute or more for a 64..4K profile) without
# the user asking for it, and a build failure or a TensorRT/CUDA mismatch is its most common
# failure. The fast GPU path is asked for by name: a plan from `pe export --trt` (checked by
# `pe verify`, run by the TensorRT backend), or device="tensorrt" here, whose engine is cached.
PROVIDER_ORDER = (CUDA, TENSORRT, CPU)
CACHE_ENV_VAR = "PE_ORT_TRT_CACHE"  # where the TensorRT EP keeps its engines and timing cache
TRT_WORKSPACE_BYTES = 4096 << 20  # the workspace `pe export --trt` gives TensorRT
DEVICE_PROVIDERS = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
# The shared library each GPU provider lives in, inside onnxruntime/capi/.
_PROVIDER_LIBS = {
    CUDA: "libonnxruntime_providers_cuda.so",
    TENSORRT: "libonnxruntime_providers_tensorrt.so",
}
OPT_LEVELS = ("disable", "basic", "extended", "all")


def import_onnxruntime() -> Any:
    """onnxruntime, or an UnavailableError that says which extra brings it: it is not a base
    dependency, because onnxruntime and onnxruntime-gpu install the same module and a base
    dependency on one would break every GPU environment."""
    try:
        import onnxruntime
    except ImportError as e:
        raise UnavailableError(
            f"ONNX Runtime is not installed ({e}): pip install 'perceptual-edge[cpu]', or "
            "[cuda13] / [cuda12] on an NVIDIA GPU machine (README, GPU stack)"
        ) from None
    onnxruntime.set_default_logger_severity(log_severity())
    return onnxruntime


def log_severity() -> int:
    """ONNX Runtime's log level for our sessions: 4 (fatal only), because every error it logs
    also comes back as the exception that `pe` turns into one line, and its coloured log lines
    and allocator dumps on stderr would bury that line; 2 (warnings) with PE_DEBUG=1."""
    return 2 if os.environ.get("PE_DEBUG") == "1" else 4


def read_onnx_spec(path: str | Path, session: Any = None) -> ModelSpec:
    """The ModelSpec stored in an ONNX file's metadata_props."""
    ort = import_onnxruntime()

    sess = session or ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    if SPEC_METADATA_KEY not in meta:
        raise InputError(f"{path}: ONNX file has no perceptual-edge model spec in its metadata")
    return ModelSpec.from_json(meta[SPEC_METADATA_KEY])


def physical_cores(sysfs: Path = Path("/sys/devices/system/cpu")) -> int:
    """Physical cores this process may use (hyper-threads share one core's FMA units, so more
    intra-op threads than cores only adds contention): the distinct sibling sets of the CPUs in
    this process's affinity mask, a CPU without topology information counting as its own core."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for c in cpus:
        sib = sysfs / f"cpu{c}" / "topology" / "thread_siblings_list"
        try:
            cores.add(sib.read_text().strip())
        except OSError:
            cores.add(str(c))
    return max(1, len(cores))


def provider_library_error(provider: str) -> str | None:
    """Why a GPU provider's shared library cannot load here (the dynamic loader names the
    missing CUDA/cuDNN/TensorRT library), or None if it loads or is not a separate library."""
    lib = _PROVIDER_LIBS.get(provider)
    if lib is None:
        return None
    import onnxruntime as ort

    path = Path(ort.__file__).parent / "capi" / lib
    if not path.exists():
        return f"{lib} is not part of this onnxruntime build (install perceptual-edge[cuda13])"
    preload_cuda_libraries()  # pip's CUDA/cuDNN wheels are not on the loader's path by themselves
    try:
        ctypes.CDLL(str(path))
    except OSError as e:
        return str(e)
    return None


def session_options(
    threads: int | None = None, optimization: str = "all", spinning: bool = False
) -> Any:
    """Options measured to help on CPU (see tests/benchmarks/runtime_cpu.py and cpu_load.py): all
    graph optimisations (NCHWc conv layouts and fusions), intra-op threads = physical cores,
    sequential execution (this graph is a chain: parallel mode only adds scheduling), memory arena
    and pattern on, and no spin-waiting: ORT's idle pool threads otherwise busy-wait between
    operators, which costs nothing on an idle machine but, when another process wants the same
    cores, burns the time slices the working thread needs (measured: see README, "CPU load")."""
    import onnxruntime as ort

    if optimization not in OPT_LEVELS:
        raise InputError(f"unknown optimisation level {optimization!r}; choose {OPT_LEVELS}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = int(threads) if threads else physical_cores()
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.log_severity_level = log_severity()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def parse_device(device: str) -> tuple[str, int]:
    """'cuda' -> ('cuda', 0); 'tensorrt:1' -> ('tensorrt', 1): the GPU index as CUDA counts
    them (after CUDA_VISIBLE_DEVICES)."""
    name, _, index = device.lower().partition(":")
    if name not in DEVICE_PROVIDERS or (index and (not index.isdigit() or name == "cpu")):
        raise InputError(
            f"unknown device {device!r}; choose auto, cpu, cuda or tensorrt (cuda:N, tensorrt:N "
            "for GPU N)"
        )
    return name, int(index or 0)


def tensorrt_library_version() -> str | None:
    """The version of the libnvinfer the TensorRT EP would load (it links libnvinfer.so.10),
    e.g. '10.9.0', or None where it cannot be loaded."""
    for lib in ("libnvinfer.so.10", "libnvinfer.so"):
        try:
            v = int(ctypes.CDLL(lib).getInferLibVersion())
        except (OSError, AttributeError):
            continue
        # NV_TENSORRT_VERSION: major * 10000 + minor * 100 + patch since TensorRT 10.
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    return None


def trt_cache_dir(path: Path) -> Path | None:
    """The folder the TensorRT EP keeps this model's engine and timing cache in, or None where
    it cannot be made (then every process builds the engine again; said in the log).

    ONNX Runtime documents that cached engines must be thrown away when the model, ONNX
    Runtime or TensorRT changes (it names the files by GPU architecture itself), so each
    combination gets its own folder: $PE_ORT_TRT_CACHE or ~/.cache/perceptual-edge/ort-tensorrt,
    then MODEL-SHA256[:16]/ort-VERSION_trt-VERSION."""
    import onnxruntime as ort

    env = os.environ.get(CACHE_ENV_VAR)
    root = Path(os.path.expanduser(env)) if env else cache_root() / "ort-tensorrt"
    versions = f"ort-{ort.__version__}_trt-{tensorrt_library_version()}"
    try:
        d = root / sha256_file(path)[:16] / versions
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log.warning("TensorRT EP engine cache disabled (%s: %s); each run builds it again", root, e)
        return None
    return d


def provider_options(
    provider: str, profile: Profile, input_name: str, device_id: int, cache: Path | None
) -> dict[str, str]:
    """The options ONNX Runtime gets for one GPU provider (the module docstring says why)."""
    if provider == CUDA:
        return {"device_id": str(device_id), "cudnn_conv_algo_search": "HEURISTIC"}
    if provider != TENSORRT:
        return {}

    def shapes(shape: tuple[int, int, int, int]) -> str:
        return f"{input_name}:{format_shape(shape)}"

    opts = {
        "device_id": str(device_id),
        "trt_max_workspace_size": str(TRT_WORKSPACE_BYTES),
        "trt_profile_min_shapes": shapes(profile.min),
        "trt_profile_opt_shapes": shapes(profile.opt),
        "trt_profile_max_shapes": shapes(profile.max),
    }
    if cache is not None:
        opts |= {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": str(cache),
        }
    return opts


class OrtBackend:
    """One onnxruntime.InferenceSession. Safe for one calling thread at a time."""

    # Dynamic height, width and batch: any size. The TensorRT EP narrows them to its profile.
    max_input_hw: tuple[int, int] | None = None
    min_input_hw: tuple[int, int] | None = None
    max_batch: int | None = None

    def __init__(
        self,
        path: str | Path,
        device: str | None = None,
        threads: int | None = None,
        optimization: str = "all",
        spinning: bool = False,
    ) -> None:
        ort = import_onnxruntime()

        p = self.path = Path(path)  # checked by the Session (runtime.backend.check_model_path)
        self.precision = file_precision(p)  # ONNX Runtime computes in the graph's own types
        self._opts = session_options(threads, optimization, spinning)
        self._contract: tuple[ModelSpec, str, str] | None = None  # spec, input name, input type
        available = ort.get_available_providers()
        if device is None or device == "auto":
            self._sess = self._open_auto(available)
        else:
            self._sess = self._open_explicit(device, available)
        used = self._sess.get_providers()[0]
        self.name = f"onnxruntime:{used}"
        self.device = "cpu" if used == CPU else "gpu"
        self.spec = read_onnx_spec(p, self._sess)
        self._input = self._sess.get_inputs()[0]
        self._output = self._sess.get_outputs()[0].name
        self._in_dtype = np.float16 if "float16" in self._input.type else np.float32
        if used == TENSORRT:
            profile = default_profile(self.spec)
            self.min_input_hw = (profile.min[2], profile.min[3])
            self.max_input_hw = (profile.max[2], profile.max[3])
            self.max_batch = profile.max[0]

    def _create(self, providers: list[Any]) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(
                str(self.path), sess_options=self._opts, providers=providers
            )
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/... types
            first = first_line(e)
            raise InputError(f"{self.path}: ONNX Runtime cannot load this file ({first})") from None

    def _read_contract(self) -> tuple[ModelSpec, str, str]:
        """The spec and the graph input, read on the CPU before a GPU provider is configured."""
        if self._contract is None:
            sess = self._create([CPU])
            inp = sess.get_inputs()[0]
            self._contract = (read_onnx_spec(self.path, sess), inp.name, inp.type)
        return self._contract

    def _gpu_providers(self, provider: str, device_id: int) -> list[Any]:
        """[(provider, options), ...] as ONNX Runtime documents the registration order: the
        TensorRT EP with the CUDA EP after it, the CPU last (shape arithmetic lives there)."""
        spec, input_name, _ = self._read_contract()
        profile = default_profile(spec)
        chain = [TENSORRT, CUDA] if provider == TENSORRT else [provider]
        cache = None
        if provider == TENSORRT:
            cache = trt_cache_dir(self.path)
            log.info(
                "TensorRT EP: building or loading the engine for %s..%s%s",
                format_shape(profile.min),
                format_shape(profile.max),
                f" (cached in {cache})" if cache else "",
            )
        return [(p, provider_options(p, profile, input_name, device_id, cache)) for p in chain] + [
            CPU
        ]

    def _start(self, provider: str, device_id: int) -> Any:
        """A session whose first provider is `provider`, checked by running one small frame:
        the TensorRT EP may build its engine only at the first run, and a failure there must
        count as this provider not starting, before `auto` has settled on it."""
        sess = self._create(self._gpu_providers(provider, device_id))
        if sess.get_providers()[0] != provider:
            raise UnavailableError(
                f"ONNX Runtime could not start {provider} (it fell back to "
                f"{sess.get_providers()[0]}); check the CUDA/cuDNN/TensorRT libraries"
            )
        spec, input_name, input_type = self._read_contract()
        _, c, h, w = default_profile(spec).min
        dtype = np.float16 if "float16" in input_type else np.float32
        try:
            sess.run(None, {input_name: np.zeros((1, c, h, w), dtype)})
        except Exception as e:
            raise UnavailableError(
                f"{provider} started but could not run a {h}x{w} frame ({first_line(e)})"
            ) from None
        return sess

    def _open_auto(self, available: list[str]) -> Any:
        for provider in PROVIDER_ORDER:
            if provider not in available:
                continue
            if provider == CPU:
                return self._create([provider])
            why = provider_library_error(provider)
            if why is None:
                try:
                    return self._start(provider, 0)
                except (InputError, UnavailableError) as e:
                    why = str(e)
            log.warning("auto: skipping %s: %s", provider, why)
        raise UnavailableError("ONNX Runtime has no usable execution provider here")

    def _open_explicit(self, device: str, available: list[str]) -> Any:
        name, device_id = parse_device(device)
        provider = DEVICE_PROVIDERS[name]
        if provider not in available:
            raise UnavailableError(
                f"ONNX Runtime here has no {provider} (available: {', '.join(available)}); "
                "install onnxruntime-gpu through perceptual-edge[cuda13] (or [cuda12] on a driver "
                "older than R580) in an "
                "environment without the CPU onnxruntime, for GPU inference"
            )
        if provider == CPU:
            return self._create([provider])
        why = provider_library_error(provider)
        if why is not None:
            raise UnavailableError(f"{provider} cannot load: {why}")
        return self._start(provider, device_id)

    def infer(self, batch: np.ndarray) -> np.ndarray:  # (N, 3, H, W) -> (N, 3, sH, sW)
        x = np.ascontiguousarray(batch, dtype=self._in_dtype)
        try:
            (y,) = self._sess.run([self._output], {self._input.name: x})
        except Exception as e:  # a shape the graph rejects, an allocation that failed
            error = inference_error(self.path, x.shape, e)
            if isinstance(error, OutOfMemoryError):
                self._release_arena()
            raise error from None
        return y.astype(np.float32, copy=False)

    def _release_arena(self) -> None:
        """Give the memory a failed run left in ONNX Runtime's CPU arena back to the system, so
        that what comes next (the Session's retry in tiles) has it: the arena keeps every
        region it grew, ~2 GiB after a 4000x4000 style run failed under a 3 GB limit, and
        frees unused ones only at the end of a run that asks for it. So: one smallest-size
        run with arena shrinkage on (measured: 2.9 -> 0.76 GB virtual, 2.35 -> 0.29 GB RSS)."""
        import onnxruntime as ort

        side = max(self.spec.min_size, self.spec.multiple, *(self.min_input_hw or (0,)))
        tiny = np.zeros((1, 3, side, side), self._in_dtype)
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        try:
            self._sess.run([self._output], {self._input.name: tiny}, options)
        except Exception as e:  # nothing to give back is no worse than before
            log.info("could not shrink ONNX Runtime's arena (%s)", first_line(e))

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]
