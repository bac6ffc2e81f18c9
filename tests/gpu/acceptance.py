"""The GPU acceptance run: one command for the first machine with an NVIDIA GPU.

    python tests/gpu/acceptance.py --json out.json [--work DIR] [--no-int8]

From an installed environment (`make setup`, then `pip install -e ".[cuda13]"` or `[cuda12]`
in an environment without the CPU onnxruntime), in a few minutes: a random-weight style network
of the real architecture is exported to FP32/FP16 ONNX (and INT8 where calibration photos are
found), engines are built through the TensorRT API and, where `trtexec` is on PATH, through the
command `pe export` prints; every GPU backend (TensorRT via cuda-python and via pycuda, ONNX
Runtime's CUDA and TensorRT providers) runs against the golden file at the thresholds of its
precision; a clip goes through `pe run` end to end; `pe bench`'s timing runs at 1080p and 4K
with FPS and the share of this GPU's FP16 tensor peak (measured here with a large FP16 matmul
in PyTorch, not taken from a datasheet); and PyTorch CUDA checks the reference backend, a few
mixed-precision training steps, `pe train style`'s seconds per step (and the paper's 40k-step
run that implies), and the CUDA memory helpers.

Every step reports ok (with its figures), failed (one line) or skipped (with the reason: the
library or the GPU it needs is absent), so the same command runs, and says what it could not
do, on a machine without a GPU (tests/test_gpu_acceptance.py runs it so on every CI). The JSON
report holds everything; the exit status is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from gpu_common import SHARED, Run, Skip, need, torch_cuda
from train_steps import train_speed_step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIZES = [(1080, 1920), (2160, 3840)]


def report_dict(report: Any) -> dict[str, Any]:
    return {
        "artifact": Path(report.artifact).name,
        "backend": report.backend,
        "passed": report.passed,
        "precision": report.precision,
        "min_psnr_db": round(min(c.psnr for c in report.cases), 2),
        "threshold_db": report.threshold_db,
    }


def env_step(run: Run) -> dict[str, Any]:
    from perceptual_edge.runtime.doctor import doctor_report

    r = doctor_report()
    return {
        "python": platform.python_version(),
        "gpus": r["gpus"],
        "cuda_stack": r["cuda_stack"],
        "onnxruntime": r["onnxruntime"],
        "tensorrt": r["tensorrt"],
        "cuda_bindings": r["cuda_bindings"],
    }


def export_step(run: Run, int8: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_checkpoint

    from perceptual_edge.export import export_checkpoint
    from perceptual_edge.export.int8 import Int8Options

    ckpt = make_checkpoint(run.work / "style.pth", "style")
    photos = SHARED / "content"
    options = Int8Options(calibration=photos) if int8 and photos.is_dir() else None
    result = export_checkpoint(ckpt, run.work / "out", fp16=True, int8=options, overwrite=True)
    run.state["export"] = result
    return {
        "artifacts": [p.name for p in (result.onnx, result.fp16_onnx, result.int8_onnx) if p],
        "engine": result.engine.name if result.engine else None,
        "engine_skipped": result.engine_skipped,
        "int8": "built" if result.int8_onnx else ("no --int8" if not int8 else "no photos"),
        "reports": [report_dict(r) for r in result.reports],
        "passed": result.passed,
        "trtexec_command": result.trtexec,
    }


def exported() -> Any:
    raise Skip("the export step did not finish")


def trtexec_step(run: Run) -> dict[str, Any]:
    from perceptual_edge.export.tensorrt import default_profile, format_command, trtexec_command
    from perceptual_edge.export.verify import verify

    result = run.state.get("export") or exported()
    exe = shutil.which("trtexec")
    if exe is None:
        raise Skip("trtexec is not on PATH (it comes with TensorRT's tar/deb packages, not pip)")
    from perceptual_edge.runtime.ort_backend import read_onnx_spec

    spec = read_onnx_spec(result.fp16_onnx)
    plan = run.work / "out" / "style.trtexec.fp16.engine"
    cmd = trtexec_command(
        result.fp16_onnx, plan, default_profile(spec), spec.input_name, 4096, None, "fp16"
    )
    line = format_command(cmd)
    proc = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"trtexec exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    rep = verify(result.golden, plan, backend="tensorrt")  # no sidecar: contract from the .onnx
    return {"command": line, **report_dict(rep)}


def backends_step(run: Run) -> dict[str, Any]:
    from perceptual_edge.export.verify import THRESHOLDS, compare, reference_from, verify
    from perceptual_edge.runtime import Session

    result = run.state.get("export") or exported()
    golden = reference_from(result.golden)
    rows: dict[str, Any] = {}
    onnx_files = [p for p in (result.onnx, result.fp16_onnx) if p]
    for device in ("cuda", "tensorrt"):
        for f in onnx_files:
            key = f"onnxruntime:{device}:{f.name}"
            try:
                rows[key] = report_dict(verify(golden, f, backend="onnxruntime", device=device))
            except Exception as e:
                rows[key] = {"skipped_or_failed": f"{type(e).__name__}: {e}"}
    if result.engine is not None:
        for binding in ("cuda-python", "pycuda"):
            key = f"tensorrt:{binding}"
            try:
                with Session(result.engine, cuda_binding=binding) as s:
                    limit = THRESHOLDS[s.precision]
                    cases = [
                        compare(y, s.run_batch(x), limit.psnr_db, limit.ssim, "golden")
                        for x, y in zip(golden.inputs, golden.outputs, strict=True)
                    ]
                rows[key] = {
                    "passed": all(c.passed for c in cases),
                    "min_psnr_db": round(min(c.psnr for c in cases), 2),
                }
            except Exception as e:
                rows[key] = {"skipped_or_failed": f"{type(e).__name__}: {e}"}
    ran = {k: v for k, v in rows.items() if "passed" in v}
    if not ran:
        why = "; ".join(f"{k}: {v['skipped_or_failed']}" for k, v in rows.items())
        raise Skip(f"no GPU backend could start: {why}")
    if not all(v["passed"] for v in ran.values()):
        raise RuntimeError(f"verification failed: {json.dumps(ran)}")
    return {"backends": rows}


def gpu_artifact(run: Run) -> tuple[Path, dict[str, Any]]:
    result = run.state.get("export") or exported()
    if result.engine is not None:
        return result.engine, {}
    ort = need("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise Skip("no TensorRT engine and no ONNX Runtime CUDA provider here")
    return result.fp16_onnx, {"device": "cuda"}


def video_step(run: Run) -> dict[str, Any]:
    av = need("av")
    clip = SHARED / "video" / "fox.mp4"
    if not clip.is_file():
        raise Skip(f"{clip} not found")
    model, opts = gpu_artifact(run)
    out = run.work / "fox.styled.mp4"
    cmd = [sys.executable, "-m", "perceptual_edge", "run", str(model), "--input", str(clip)]
    cmd += ["-o", str(out), "--overwrite"] + (["--device", opts["device"]] if opts else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"pe run exited {proc.returncode}: {proc.stderr.strip()[-300:]}")

    def frames(p: Path) -> int:
        with av.open(str(p)) as c:
            return sum(1 for _ in c.decode(video=0))

    n_in, n_out = frames(clip), frames(out)
    if n_in != n_out:
        raise RuntimeError(f"{n_in} frames in, {n_out} out")
    return {"model": model.name, "frames": n_out, "seconds": round(secs, 2)}


def peak_step(run: Run) -> dict[str, Any]:
    torch = torch_cuda()
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / 10)
    tflops = 2 * n**3 / best / 1e12
    run.state["peak_gflops"] = tflops * 1e3
    return {"fp16_matmul_tflops": round(tflops, 1), "gpu": torch.cuda.get_device_name()}


def bench_step(run: Run) -> dict[str, Any]:
    from perceptual_edge.runtime import Session
    from perceptual_edge.runtime.bench import bench_session

    model, opts = gpu_artifact(run)
    peak = run.state.get("peak_gflops")
    with Session(model, **opts) as s:
        # bench_session reports GFLOP/s as a share of the peak it is given: here the GPU's.
        r = bench_session(s, sizes=SIZES, runs=5, warmup=2, sgemm=peak or float("nan"))
    rows = [
        {
            "size": f"{row['width']}x{row['height']}",
            "fps": round(row["fps"], 1),
            "seconds": round(row["seconds"], 5),
            "gflops": round(row.get("gflops", float("nan")), 1),
            "share_of_fp16_tensor_peak": round(row["sgemm_fraction"], 3) if peak else None,
        }
        for row in r["results"]
    ]
    return {"backend": r["backend"], "model": model.name, "results": rows}


def torch_step(run: Run) -> dict[str, Any]:
    torch = torch_cuda()
    from perceptual_edge.export.verify import THRESHOLDS, compare, reference_from
    from perceptual_edge.models import open_model
    from perceptual_edge.train import build_network, network_config

    result = run.state.get("export") or exported()
    golden = reference_from(result.golden)
    with open_model(run.work / "style.pth", backend="torch", device="cuda") as s:
        limit = THRESHOLDS["fp32"]
        cases = [
            compare(y, s.run_batch(x), limit.psnr_db, limit.ssim, "golden")
            for x, y in zip(golden.inputs, golden.outputs, strict=True)
        ]
    # A few mixed-precision training steps of the style network (loss: a fixed target).
    net = build_network(network_config("style")).cuda()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=not bf16)
    x = torch.rand(2, 3, 128, 128, device="cuda") * 255
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=dtype):
            y = net(x)
        loss = torch.nn.functional.mse_loss(y.float(), x)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss))
    if not all(np.isfinite(losses)):
        raise RuntimeError(f"non-finite AMP losses {losses}")
    return {
        "reference_on_cuda_passed": all(c.passed for c in cases),
        "reference_min_psnr_db": round(min(c.psnr for c in cases), 2),
        "amp_dtype": str(dtype),
        "amp_losses": [round(v, 2) for v in losses],
    }


def cuda_mem_step(run: Run) -> dict[str, Any]:
    from perceptual_edge.errors import UnavailableError
    from perceptual_edge.runtime.cuda_mem import BINDINGS, load_cuda

    rows = {}
    for name in BINDINGS:
        try:
            cuda = load_cuda(0, name)
        except UnavailableError as e:
            rows[name] = f"skipped: {e}"
            continue
        try:
            x = np.arange(4096, dtype=np.float32)
            host = cuda.alloc_pinned(x.shape, x.dtype)
            back = cuda.alloc_pinned(x.shape, x.dtype)
            host[:] = x
            stream = cuda.stream_create()
            ptr = cuda.alloc(x.nbytes)
            cuda.htod_async(ptr, host, stream)
            cuda.stream_wait(stream, cuda.stream_handle(stream))
            cuda.dtoh_async(back, ptr, stream)
            cuda.stream_sync(stream)
            ok = bool(np.array_equal(back, x)) and cuda.pointer_device(ptr) == 0
            cuda.free(ptr)
            cuda.free_pinned(host)
            cuda.free_pinned(back)
            cuda.stream_destroy(stream)
            rows[name] = "ok" if ok else "failed: round trip differs"
        finally:
            cuda.close()
    if all(v.startswith("skipped") for v in rows.values()):
        raise Skip("; ".join(f"{k}: {v}" for k, v in rows.items()))
    if any(v.startswith("failed") for v in rows.values()):
        raise RuntimeError(json.dumps(rows))
    return {"bindings": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, required=True, help="where the report is written")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--no-int8", action="store_true", help="skip the INT8 export")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="pe-acceptance-"))
    work.mkdir(parents=True, exist_ok=True)
    run = Run(work)
    t0 = time.perf_counter()
    run.step("environment", lambda: env_step(run))
    run.step("export", lambda: export_step(run, int8=not args.no_int8))
    run.step("trtexec", lambda: trtexec_step(run))
    run.step("backends", lambda: backends_step(run))
    run.step("video", lambda: video_step(run))
    run.step("gpu_fp16_peak", lambda: peak_step(run))
    run.step("bench", lambda: bench_step(run))
    run.step("torch_cuda", lambda: torch_step(run))
    run.step("train_speed", lambda: train_speed_step(run))
    run.step("cuda_memory", lambda: cuda_mem_step(run))
    counts = {s: sum(v["status"] == s for v in run.steps.values()) for s in ("ok", "failed")}
    counts["skipped"] = len(run.steps) - counts["ok"] - counts["failed"]
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": platform.platform(),
        "work": str(work),
        "summary": counts,
        "steps": run.steps,
    }
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"{counts} in {report['seconds']} s; report: {args.json}", file=sys.stderr)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
