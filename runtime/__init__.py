"""Runtime: a torch-free Session over ONNX Runtime and TensorRT; tiling; video."""
