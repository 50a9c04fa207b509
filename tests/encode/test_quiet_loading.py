"""Loading a model prints nothing: no "Loading weights" bar, no transformers info lines."""

from __future__ import annotations

import pytest

from nextvec.encode.base import quiet_loading


def test_quiet_loading_hides_transformers_bars_and_restores_the_settings(capfd):
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    with quiet_loading():
        for _ in hf_logging.tqdm(range(3), desc="Loading weights"):
            pass
        hf_logging.get_logger("transformers.modeling_utils").warning("noise")
    assert capfd.readouterr() == ("", "")
    assert hf_logging.is_progress_bar_enabled() and hf_logging.get_verbosity() == level


@pytest.mark.slow
def test_loading_the_embedded_encoder_prints_nothing(capfd):
    from nextvec.encode import load_encoder

    enc = load_encoder("minilm")
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), f"stdout {out!r}, stderr {err!r}"
    assert enc.encode(["one sentence."]).shape == (1, 384)
