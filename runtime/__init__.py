"""Runtime: a torch-free Session over ONNX Runtime and TensorRT; tiling; video.

Never imports torch, perceptual_edge.train or perceptual_edge.export.
"""

from perceptual_edge.runtime.session import Session, open_backend

__all__ = ["Session", "open_backend"]
