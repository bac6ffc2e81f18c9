"""Export: ONNX, FP16, INT8 (QDQ), TensorRT engines, golden files, Triton repositories, imports.

Importing this package does not import torch, onnx or tensorrt; each function imports what it
needs when called.
"""

from perceptual_edge.export.golden import golden_from_checkpoint, load_golden
from perceptual_edge.export.int8 import int8_from_onnx
from perceptual_edge.export.onnx_export import onnx_from_checkpoint
from perceptual_edge.export.pipeline import ExportResult, export_checkpoint
from perceptual_edge.export.tensorrt import engine_from_onnx
from perceptual_edge.export.verify import THRESHOLDS, THRESHOLDS_DB, VerifyReport, verify

__all__ = [
    "THRESHOLDS",
    "THRESHOLDS_DB",
    "ExportResult",
    "VerifyReport",
    "engine_from_onnx",
    "export_checkpoint",
    "golden_from_checkpoint",
    "int8_from_onnx",
    "load_golden",
    "onnx_from_checkpoint",
    "verify",
]
