"""Runtime: a torch-free Session over ONNX Runtime and TensorRT; tiling; bench; doctor.

Never imports torch, perceptual_edge.train or perceptual_edge.export (tests check
sys.modules in a fresh interpreter). Backends, TensorRT and CUDA bindings are imported lazily,
when a Session opens a file that needs them.
"""

from perceptual_edge.runtime.session import Session, open_backend
from perceptual_edge.runtime.tiling import run_tiled, run_tiled_image

__all__ = ["Session", "open_backend", "run_tiled", "run_tiled_image"]
