"""Export: ONNX, FP16, TensorRT engines, golden files, Triton repositories, imports."""
