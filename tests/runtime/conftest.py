"""Fakes shared by the runtime tests: a backend with a TensorRT-like profile limit."""

from __future__ import annotations

import numpy as np
import pytest

from perceptual_edge.spec import ModelSpec, sr_spec, style_spec


class FakeBackend:
    """Nearest-neighbour 'network' (exact under tiling) with an optional profile limit."""

    def __init__(self, spec: ModelSpec, max_hw: tuple[int, int] | None = None) -> None:
        self.name = "fake"
        self.spec = spec
        self.max_input_hw = max_hw
        self.max_batch = 2 if max_hw else None
        self.calls: list[tuple[int, ...]] = []
        self.closed = False

    def infer(self, batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.float32
        assert batch.shape[2] % self.spec.multiple == 0 and batch.shape[3] % self.spec.multiple == 0
        if self.max_input_hw is not None:
            assert batch.shape[2] <= self.max_input_hw[0] and batch.shape[3] <= self.max_input_hw[1]
            assert batch.shape[0] <= self.max_batch
        self.calls.append(batch.shape)
        s = self.spec.scale
        return (255.0 - batch).repeat(s, axis=2).repeat(s, axis=3)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_session(monkeypatch: pytest.MonkeyPatch):
    """A factory: fake_session(kind='style'|'sr', max_hw=None) -> Session over FakeBackend."""
    from perceptual_edge.runtime import session as session_mod

    def make(kind: str = "style", max_hw: tuple[int, int] | None = None):
        spec = style_spec() if kind == "style" else sr_spec(4)
        backend = FakeBackend(spec, max_hw)
        monkeypatch.setattr(session_mod, "open_backend", lambda *a, **k: backend)
        return session_mod.Session("fake.onnx"), backend

    return make


class DLPackOnly:
    """A CUDA tensor that speaks only DLPack (like a JAX array): a hand-made DLManagedTensor."""

    def __init__(self, ptr: int, shape, dtype_bits: int = 32, device_type: int = 2) -> None:
        import ctypes

        from perceptual_edge.runtime import cuda_mem as cm

        self.shape = tuple(shape)
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._t = cm._DLTensor(
            data=ptr,
            device=cm._DLDevice(device_type, 0),
            ndim=len(shape),
            dtype=cm._DLDataType(2, dtype_bits, 1),
            shape=self._shape,
            strides=None,
            byte_offset=0,
        )
        # DLManagedTensor = DLTensor + manager_ctx + deleter; a NULL deleter is allowed.
        self._managed = (ctypes.c_byte * (ctypes.sizeof(self._t) + 16))()
        ctypes.memmove(self._managed, ctypes.addressof(self._t), ctypes.sizeof(self._t))
        self._device_type = device_type

    def __dlpack_device__(self):
        return (self._device_type, 0)

    def __dlpack__(self, stream=None):
        import ctypes

        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = (
            ctypes.py_object,
            [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p],
        )
        return new(ctypes.addressof(self._managed), b"dltensor", None)


@pytest.fixture
def dlpack_cls() -> type[DLPackOnly]:
    return DLPackOnly
