"""models.base.predict_windows: the one batched loop that runs predictors over a store's windows."""

import numpy as np
import pytest
import torch

from storekit import build_store
from nextvec.data.windows import window_targets
from nextvec.errors import NextvecError
from nextvec.models.baselines import CopyLastBaseline
from nextvec.models.base import predict_windows
from nextvec.models.registry import build_model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    eye = 2.0 * np.eye(12, dtype=np.float32)  # one-hot chunks of length 2: doc 0 = e0..e4, doc 1 = e5..e11
    return build_store(tmp_path_factory.mktemp("pw") / "s", [eye[:5], eye[5:]], fractions=(1.0, 0.0, 0.0))


def test_copy_last_answers_the_chunk_before_each_target(store):
    targets = window_targets(store, "train")  # 1..4 and 6..11
    y_dec, y_cos, seconds = predict_windows({"copy": CopyLastBaseline()}, store, targets, 3, batch_size=4)["copy"]
    np.testing.assert_array_equal(y_dec, store.get(targets - 1))
    np.testing.assert_array_equal(y_cos, store.get(targets - 1) / 2)  # unit
    assert y_dec.dtype == np.float32 and seconds >= 0


def test_batch_size_does_not_change_the_numbers(store):
    torch.manual_seed(0)
    model = build_model({"name": "gru", "context_length": 3, "hidden_dim": 8, "num_layers": 1}, 12)
    targets = window_targets(store, "train")
    one = predict_windows({"m": model}, store, targets, 3, batch_size=1)["m"]
    many = predict_windows({"m": model}, store, targets, 3, batch_size=64)["m"]
    np.testing.assert_allclose(one[0], many[0], atol=1e-6)
    assert not model.training  # run in eval mode


def test_no_windows_and_bad_context_length(store):
    y_dec, y_cos, _ = predict_windows({"copy": CopyLastBaseline()}, store, np.zeros(0, np.int64), 3)["copy"]
    assert y_dec.shape == y_cos.shape == (0, 12)
    with pytest.raises(NextvecError, match="context length"):
        predict_windows({"copy": CopyLastBaseline()}, store, np.array([1]), 0)
