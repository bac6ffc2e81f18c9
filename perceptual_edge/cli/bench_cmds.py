"""`pe bench` and `pe doctor`: parse, call runtime.bench / runtime.doctor, print."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perceptual_edge.cli.common import comma_list, parse_sizes, pe_command
from perceptual_edge.errors import InputError


def _torch_reference(checkpoint: Path, threads: int | None):
    """PyTorch eager on the CPU, for --vs-torch (torch is imported only here)."""
    from perceptual_edge.runtime.ort_backend import physical_cores

    try:
        import torch

        from perceptual_edge.train.checkpoint import load_model
    except ImportError as e:
        from perceptual_edge.errors import UnavailableError

        raise UnavailableError(f"--vs-torch needs torch ({e})") from None
    torch.set_num_threads(threads or physical_cores())
    model, spec = load_model(checkpoint)
    model.eval()

    def run(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch))

    return run, spec


def _gatys(model: Path, sizes, style, iterations, loss_net, vgg_weights, device, as_json) -> None:
    from perceptual_edge.paper.gatys_bench import format_speed_table, gatys_speed_table

    if model.suffix.lower() not in (".pth", ".pt"):
        raise InputError(f"--gatys needs a .pth checkpoint, got {model}")
    square = sorted({h for h, w in sizes if h == w})
    if len(square) != len(sizes):
        raise InputError("--gatys takes square sizes only (e.g. 256,512,1024)")
    its = [int(i) for i in iterations.split(",") if i.strip()]
    result = gatys_speed_table(
        model,
        style=style,
        sizes=square,
        iterations=its,
        device=device,
        loss_net=loss_net,
        vgg_weights=vgg_weights,
    )
    typer.echo(json.dumps(result) if as_json else format_speed_table(result))


def register(app: typer.Typer) -> None:
    @pe_command(app, "bench")
    def bench(
        model: Path = typer.Argument(..., help="An .onnx or .engine file (.pth with --gatys)."),
        sizes: str = typer.Option(
            "256,512,1024,1920x1080", help="Comma-separated sizes: N (square) or WxH."
        ),
        runs: int = typer.Option(3, min=1, help="Timed warm runs per size (median reported)."),
        warmup: int = typer.Option(1, min=0, help="Untimed runs per size first."),
        backend: str = typer.Option("auto", help="auto, onnxruntime, openvino or tensorrt."),
        backends: str = typer.Option(
            None,
            "--backends",
            help="Side by side in one run: comma-separated backends (e.g. onnxruntime,openvino).",
        ),
        precision: str = typer.Option(
            None,
            "--precision",
            help="Comma-separated: fp32, fp16, bf16, int8 (int8 reads MODEL.int8.onnx beside "
            "MODEL); with --backends or alone, every combination side by side.",
        ),
        device: str = typer.Option(None, help="cpu, cuda, tensorrt (default: auto)."),
        threads: int = typer.Option(None, min=1, help="CPU threads (default: physical cores)."),
        vs_torch: Path = typer.Option(
            None, "--vs-torch", help="Also time this checkpoint in PyTorch eager; add the ratio."
        ),
        no_flops: bool = typer.Option(False, "--no-flops", help="Skip the FLOP count."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        gatys: bool = typer.Option(
            False, "--gatys", help="The paper's Table 1: Gatys optimisation vs the network."
        ),
        style: Path = typer.Option(None, help="--gatys: the style image."),
        iterations: str = typer.Option("100,300,500", help="--gatys: L-BFGS iterations."),
        loss_net: str = typer.Option("random", help="--gatys: vgg16 or random."),
        vgg_weights: Path = typer.Option(None, help="--gatys: VGG-16 weight file."),
    ) -> None:
        """Speed table per input size: s/frame, frames/s, GFLOP/s and its share of SGEMM."""
        from perceptual_edge.runtime.bench import bench_session, format_table

        size_list = parse_sizes(sizes)
        if gatys:
            _gatys(
                model,
                size_list,
                style,
                iterations,
                loss_net,
                vgg_weights,
                device or "auto",
                as_json,
            )
            return
        if not model.exists():
            raise InputError(f"{model}: no such file")
        from perceptual_edge.runtime import Session

        options = {"threads": threads} if threads and model.suffix.lower() == ".onnx" else {}
        reference = None
        if vs_torch is not None:
            reference, ref_spec = _torch_reference(vs_torch, threads)
        if backends or precision:
            from perceptual_edge.runtime.bench_matrix import bench_matrix, format_matrix

            result = bench_matrix(
                model,
                comma_list(backends or backend),
                comma_list(precision or "auto"),
                size_list,
                runs=runs,
                warmup=warmup,
                reference=reference,
                threads=threads,
            )
            typer.echo(json.dumps(result) if as_json else format_matrix(result))
            return
        with Session(model, backend=backend, device=device, **options) as session:
            if vs_torch is not None and ref_spec.kind != session.spec.kind:
                raise InputError(
                    f"--vs-torch {vs_torch} is a {ref_spec.kind} network, {model} is not"
                )
            result = bench_session(
                session, size_list, runs=runs, warmup=warmup, reference=reference,
                count_flops=not no_flops,
            )  # fmt: skip
        typer.echo(json.dumps(result) if as_json else format_table(result))

    @pe_command(app, "doctor")
    def doctor(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """What this machine can run, and why not: runtimes, GPUs, video, torch, VGG-16 weights."""
        from perceptual_edge.runtime.doctor import doctor_report, format_report

        report = doctor_report()
        typer.echo(json.dumps(report) if as_json else format_report(report))
