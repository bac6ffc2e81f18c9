"""perceptual-edge: perceptual-loss style transfer and super-resolution, training to the edge.

What an embedding application uses, importable from here:

    from perceptual_edge import Session, RunOptions, load_image, save_image

The runtime names load on first use (`import perceptual_edge` stays light and never imports
torch). The packages: `perceptual_edge.runtime` (torch-free inference), `perceptual_edge.train`
(PyTorch), `perceptual_edge.export` (ONNX, FP16, TensorRT). The public API is what each
package's `__init__` lists in `__all__`; every other module is internal and may change.
"""

from __future__ import annotations

import importlib
from typing import Any

from perceptual_edge.errors import PeError
from perceptual_edge.spec import ModelSpec, Provenance

__version__ = "0.1.0"

_LAZY = {
    "Session": "perceptual_edge.runtime",
    "RunOptions": "perceptual_edge.runtime",
    "Processor": "perceptual_edge.runtime",
    "load_image": "perceptual_edge.image",
    "save_image": "perceptual_edge.image",
    "open_model": "perceptual_edge.models",
}
__all__ = ["ModelSpec", "PeError", "Provenance", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
