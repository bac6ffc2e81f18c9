"""Runtime: a torch-free Session over ONNX Runtime and TensorRT, what `pe run` does around it
(RunOptions, Processor), and the validated run plan for images, folders and video.

    from perceptual_edge.runtime import Session, load_image, save_image

Never imports torch, perceptual_edge.train or perceptual_edge.export (tests check sys.modules
in a fresh interpreter). Backends, TensorRT and CUDA bindings are imported lazily, when a Session
opens a file that needs them.
"""

from perceptual_edge.image import load_image, save_image
from perceptual_edge.runtime.plan import RunPlan, VideoOptions, execute, plan_run
from perceptual_edge.runtime.postprocess import Processor, RunOptions
from perceptual_edge.runtime.session import Session, open_backend

__all__ = [
    "Processor",
    "RunOptions",
    "RunPlan",
    "Session",
    "VideoOptions",
    "execute",
    "load_image",
    "open_backend",
    "plan_run",
    "save_image",
]
