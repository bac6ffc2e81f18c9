"""Stable video: `pe run --temporal STRENGTH` and `Stabilizer` for any frame stream.

Frame by frame, a style network repaints its texture on every frame: noise, compression and
motion change it, and instance norm takes new statistics each time. Two measures, both reset
at scene cuts (detected on the input: `scene_cut`):

1. Instance-norm statistics carried across frames: the temporal graph (`NAME.temporal.onnx`,
   export/temporal_graph.py) mixes each norm's mean and variance with the previous frame's,
   keep = STRENGTH / 2 (of the running statistics).
2. Flow-guided blending: the previous *output* warped (bicubic) onto the current frame along
   the optical flow of the input (OpenCV DIS, `perceptual-edge[flow]`) replaces a share
   blend = 0.75 STRENGTH of the new output where the flow is consistent forward and backward
   (occluded and disoccluded pixels take the new output alone), so texture that did not move
   stays put.
3. Detail restored after blending: where the warped and the new texture do not line up
   exactly their average is flatter than either, which washes the style out (fox.mp4: +20%
   style loss at blend 0.6). The blend's fine detail (what a Gaussian of sigma 4 removes) is
   amplified, per 15-px window, back to the new output's energy (`restore_detail`, gain at
   most 2); where the two agree the gain is 1.

Measured per clip by `tests/benchmarks/video_temporal.py` (E_warp, style loss, frames/s; the
README has the table). With --batch N the frames of one call share the statistics carried into
it, and blending runs frame by frame after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError

CUT_THRESHOLD = 0.12  # mean absolute difference of 32x32 grey thumbnails, 0..1


def _thumb(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    ys = np.linspace(0, h - 1, 32).astype(int)
    xs = np.linspace(0, w - 1, 32).astype(int)
    return image[ys][:, xs].astype(np.float32).mean(axis=2) / 255.0


def scene_cut(prev: np.ndarray, cur: np.ndarray) -> bool:
    """Whether `cur` starts a new shot: the two frames' thumbnails differ on average by more
    than CUT_THRESHOLD (a pan or a person moving stays well below it)."""
    if prev.shape != cur.shape:
        return True
    return float(np.abs(_thumb(prev) - _thumb(cur)).mean()) > CUT_THRESHOLD


def temporal_graph_for(model_path: str | Path) -> Path | None:
    from perceptual_edge.runtime.precision import base_stem

    p = Path(model_path)
    stem = base_stem(p) if p.suffix.lower() == ".onnx" else p.name.split(".")[0]
    g = p.with_name(f"{stem}.temporal.onnx")
    return g if g.is_file() else None


Runner = tuple[Callable[[dict], list[np.ndarray]], list[tuple[int, ...]]]


def _ort_runner(path: Path, backend_name: str) -> Runner:
    from perceptual_edge.runtime.ort_backend import import_onnxruntime, log_severity

    ort = import_onnxruntime()
    cuda = "CUDAExecutionProvider"
    gpu = "CPUExecutionProvider" not in backend_name and cuda in ort.get_available_providers()
    opts = ort.SessionOptions()
    opts.log_severity_level = log_severity()
    providers = [cuda, "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    names = [o.name for o in sess.get_outputs()]
    shapes = [tuple(i.shape) for i in sess.get_inputs() if i.name.startswith("prev_mean_")]
    return (lambda feeds: sess.run(names, feeds)), shapes


def _ov_runner(path: Path, device: str) -> Runner:
    try:
        import openvino as ov
    except ImportError as e:
        raise UnavailableError(f"OpenVINO is not installed ({e})") from None
    compiled = ov.Core().compile_model(str(path), device, {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)
    inputs = {i.get_any_name(): i for i in compiled.inputs}

    def run(feeds: dict) -> list[np.ndarray]:
        r = request.infer({inputs[k]: v for k, v in feeds.items()})
        return [np.array(r[o], copy=True) for o in outputs]

    names = sorted((n for n in inputs if n.startswith("prev_mean_")), key=lambda n: int(n[10:]))
    return run, [tuple(inputs[n].get_partial_shape().to_shape()) for n in names]


class Stabilizer:
    """Frames in order -> stabilised frames. `session` is the open model (its spec and its
    backend decide where the temporal graph runs); `strength` in [0, 1) sets both measures.
    `blend` and `keep` override their shares; `detail_sigma` (0: off) and `detail_gain` set the
    detail restoration after blending (module docstring, item 3)."""

    def __init__(
        self,
        session: Any,
        strength: float,
        blend: float | None = None,
        keep: float | None = None,
        detail_sigma: float = 4.0,
        detail_gain: float = 2.0,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise InputError(f"--temporal {strength}: use a strength in [0, 1), e.g. 0.8")
        self.session = session
        # From a sweep on friday.mp4 (tests/benchmarks/video_temporal.py's clips, 320 px): the
        # blending does most of the work; statistics carried alone (keep 0.8, no blending)
        # raised E_warp there by 27%, and keep 0.9 cost 50% of style fidelity. Cubic warping
        # keeps the repeated resampling from blurring the texture (bilinear: +35% style loss
        # at blend 0.7).
        self.keep = 0.5 * float(strength) if keep is None else float(keep)
        self.blend = 0.75 * float(strength) if blend is None else float(blend)
        self.interp = "cubic"
        # Detail restoration (module docstring, item 3); sweep on fox.mp4, 320 px: sigma 2 ->
        # +14% style loss, 4 -> +7%, 6 -> +4%, at E_warp 0.48, 0.51, 0.54 of frame by frame.
        self.detail_sigma = float(detail_sigma)
        self.detail_gain = float(detail_gain)
        graph = temporal_graph_for(session.path)
        name = session.backend_name
        self._graph: Callable[[dict], list[np.ndarray]] | None = None
        self._shapes: list[tuple[int, ...]] = []
        if graph is not None and self.keep > 0:
            if name.startswith("openvino"):
                self._graph, self._shapes = _ov_runner(graph, name.split(":")[1] or "CPU")
            else:
                self._graph, self._shapes = _ort_runner(graph, name)
        self.graph_path = graph
        self._cv2: Any = None
        self._dis: Any = None
        if self.blend > 0:
            from perceptual_edge.runtime.flow import import_cv2

            import_cv2()  # fail now, not at the second frame

        self.reset()

    def reset(self) -> None:
        self._stats: list[np.ndarray] | None = None
        self._prev_in: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.cuts = getattr(self, "cuts", 0)

    def _network(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> network output, carrying the norm statistics."""
        if self._graph is None:
            return self.session.run_batch(batch)
        from perceptual_edge.image import crop_to, pad_to_multiple

        spec = self.session.spec
        padded, (h, w) = pad_to_multiple(
            np.asarray(batch, np.float32), spec.multiple, spec.min_size
        )
        feeds: dict[str, Any] = {spec.input_name: padded}
        if self._stats is None:
            feeds["keep"] = np.array(0.0, np.float32)
            for k, shape in enumerate(self._shapes):
                feeds[f"prev_mean_{k}"] = np.zeros(shape, np.float32)
                feeds[f"prev_var_{k}"] = np.ones(shape, np.float32)
        else:
            feeds["keep"] = np.array(self.keep, np.float32)
            for k in range(len(self._stats) // 2):
                feeds[f"prev_mean_{k}"] = self._stats[2 * k]
                feeds[f"prev_var_{k}"] = self._stats[2 * k + 1]
        out = self._graph(feeds)
        self._stats = [s[-1:] for s in out[1:]]  # the last frame's, for the next call
        return crop_to(out[0], h * spec.scale, w * spec.scale)

    def run_many(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Consecutive (H, W, 3) uint8 frames -> the network's (sH, sW, 3) uint8 outputs."""
        from perceptual_edge.image import batch_to_image, images_to_nchw

        if not frames:
            return []
        outs: list[np.ndarray] = []
        start = 0
        for i, f in enumerate(frames):  # a cut inside the batch splits it
            prev = frames[i - 1] if i else self._prev_in
            if prev is not None and scene_cut(prev, f):
                if i > start:
                    y = self._network(images_to_nchw(frames[start:i]))
                    outs += [batch_to_image(y, j) for j in range(i - start)]
                self._stats = None
                self._prev_out = None
                self.cuts += 1
                start = i
        y = self._network(images_to_nchw(frames[start:]))
        outs += [batch_to_image(y, j) for j in range(len(frames) - start)]
        return [self._blend(f, o) for f, o in zip(frames, outs, strict=True)]

    def _blend(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        prev_in, prev_out = self._prev_in, self._prev_out
        self._prev_in = frame
        if self.blend <= 0 or prev_in is None or prev_out is None:
            self._prev_out = out
            return out
        from perceptual_edge.runtime.flow import FlowPair, dis_flow, import_cv2

        if self._cv2 is None:
            self._cv2 = import_cv2()
            self._dis = dis_flow(self._cv2, "fast")
        cv2 = self._cv2
        scale = out.shape[0] // frame.shape[0]
        a, b = prev_in, frame
        if scale > 1:  # SR: flow on the input, applied at the output's size
            a = cv2.resize(a, out.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            b = cv2.resize(b, out.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        flow = FlowPair(cv2, self._dis, a, b)
        warped = flow.warp(cv2, prev_out, self.interp).astype(np.float32)
        cur = out.astype(np.float32)
        w = (self.blend * flow.mask)[..., None]
        mixed = cur * (1.0 - w) + warped * w
        if self.detail_sigma > 0:
            mixed = restore_detail(cv2, mixed, cur, self.detail_sigma, self.detail_gain)
        result = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        self._prev_out = result
        return result


def restore_detail(
    cv2: Any, mixed: np.ndarray, out: np.ndarray, sigma: float, max_gain: float, window: int = 15
) -> np.ndarray:
    """`mixed` (float32) with its fine detail (what a Gaussian of `sigma` removes) amplified,
    window by window, back to the energy of the network's own output `out`: blending two
    textures that do not line up exactly averages them and so flattens them, which the style
    loss sees; where they do line up the gain is 1 and nothing changes."""
    cur = np.asarray(out, dtype=np.float32)  # no copy when the caller has it in float32
    d_mixed = mixed - cv2.GaussianBlur(mixed, (0, 0), sigma)
    d_cur = cur - cv2.GaussianBlur(cur, (0, 0), sigma)
    box = (window, window)
    e_mixed = cv2.boxFilter(np.einsum("hwc,hwc->hw", d_mixed, d_mixed), -1, box)
    e_cur = cv2.boxFilter(np.einsum("hwc,hwc->hw", d_cur, d_cur), -1, box)
    gain = np.sqrt((e_cur + 1.0) / (e_mixed + 1.0)).clip(1.0, max_gain)
    return mixed + d_mixed * (gain - 1.0)[..., None]
