import pytest
import torch

from storekit import build_store, random_docs


@pytest.fixture(autouse=True)
def one_thread():
    """2 shared cores on CI: one torch thread keeps tiny models fast and steady (more threads mostly wait)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_store(tmp_path):
    return build_store(tmp_path / "store", random_docs())
