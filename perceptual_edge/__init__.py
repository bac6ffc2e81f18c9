"""perceptual-edge: perceptual-loss style transfer and super-resolution, training to the edge.

The core package holds the I/O contract (ModelSpec), image I/O and errors; it imports neither
torch nor onnxruntime. Subpackages: `perceptual_edge.train` (torch), `perceptual_edge.export`
(torch + onnx), `perceptual_edge.runtime` (numpy + onnxruntime/TensorRT, no torch).
"""

from perceptual_edge.errors import PeError
from perceptual_edge.spec import ModelSpec, Provenance

__version__ = "0.1.0"
__all__ = ["ModelSpec", "PeError", "Provenance", "__version__"]
