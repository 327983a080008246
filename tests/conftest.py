"""Suite-wide settings: one torch thread (tiny graphs run ~10x faster than with two contended threads), and the
tests folder on sys.path for the shared pipeline helpers."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
