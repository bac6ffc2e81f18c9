"""Export: ONNX, FP16, TensorRT engines, golden files, Triton repositories, imports."""

from perceptual_edge.export.onnx_export import onnx_from_checkpoint

__all__ = ["onnx_from_checkpoint"]
