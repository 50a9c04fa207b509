"""--device: CPU stays the default; CUDA requests fail clearly where there is no GPU; fp16 / pools on GPUs."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nextvec.encode import load_encoder, resolve_devices
from nextvec.errors import NextvecError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is absent")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_is_the_default_and_bad_specs_are_refused():
    assert resolve_devices() == ["cpu"] and resolve_devices("CPU") == ["cpu"]
    for bad in ("gpu", "cuda:x", "cuda:0,", "mps"):
        with pytest.raises(NextvecError, match="--device must be"):
            resolve_devices(bad)


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:0,1"])
def test_cuda_request_without_a_gpu_is_a_clear_error(device):
    with pytest.raises(NextvecError, match="no CUDA device is available.*use --device cpu"):
        load_encoder("hash:16", device=device)


@no_cuda
def test_cli_ingest_on_cuda_without_a_gpu_fails_before_writing(tmp_path):
    from nextvec.cli import app

    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "One sentence here. Another one there."}) + "\n")
    r = CliRunner().invoke(app, ["ingest", str(src), "--encoder", "hash:16", "--device", "cuda", "--out",
                                 str(tmp_path / "s")])
    assert r.exit_code != 0 and "no CUDA device is available" in str(r.exception)
    assert not (tmp_path / "s").exists()


@needs_cuda
@pytest.mark.slow
def test_minilm_fp16_on_gpu_matches_cpu():
    texts = [f"Sentence number {i} talks about topic {i % 7}." for i in range(300)]
    cpu = load_encoder("minilm").encode(texts)
    gpu_enc = load_encoder("minilm", device="cuda:0")
    assert next(gpu_enc.model.parameters()).dtype == torch.float16
    gpu = gpu_enc.encode(texts, batch_size=128)
    assert gpu.dtype == np.float32
    assert (np.sum(cpu * gpu, axis=1) > 0.999).all()


@needs_cuda
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_through_the_pool_keep_row_order():
    texts = [f"Row {i} of the pool test, about item {i * 13 % 101}." for i in range(2000)]
    one = load_encoder("minilm", device="cuda:0").encode(texts, batch_size=256)
    enc = load_encoder("minilm", device="cuda:0,1")
    try:
        two = enc.encode(texts, batch_size=256)
    finally:
        enc.close()
    assert (np.sum(one * two, axis=1) > 0.999).all()
