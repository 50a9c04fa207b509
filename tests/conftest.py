import pytest

from storekit import build_store, random_docs


@pytest.fixture
def tiny_store(tmp_path):
    return build_store(tmp_path / "store", random_docs())
