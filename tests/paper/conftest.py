from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny images (32-64 px) have too little work to split: two OpenMP threads on a 2-core
    machine shared with other processes spin-wait and run about ten times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
