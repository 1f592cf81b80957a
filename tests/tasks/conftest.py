"""Task tests train tiny models: one thread is as fast, and spares the shared 2-core machine."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """torch on one thread for each test module here (restored after)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
