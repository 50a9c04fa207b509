"""Several server processes (`nextvec serve --workers N`): uvicorn starts each worker in a fresh
interpreter and builds the app there with `app_from_env`, from the serve options the parent wrote to
the environment. One process serves requests on one event loop; on few cores, two of them keep both
cores busy with parsing, the model and the responses (see bench/serve.py).
"""

from __future__ import annotations

import json
import os

SERVE_ENV = "NEXTVEC_SERVE_OPTIONS"


def export_options(**options) -> None:
    """Write the serve options (run, store, encoder, api_key, limits, index_kind, threads) for the workers."""
    os.environ[SERVE_ENV] = json.dumps(options)


def set_threads(threads: int) -> None:
    """torch and FAISS's OpenMP thread counts (0 leaves their defaults)."""
    if threads:
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)


def freeze_heap() -> None:
    """Everything loaded at start-up (torch, the model, the store's texts) lives as long as the process:
    freezing it keeps the garbage collector's full passes from re-scanning it during requests (tail latency)."""
    import gc

    gc.collect()
    gc.freeze()


def app_from_env():
    """uvicorn factory: the app for the options in $NEXTVEC_SERVE_OPTIONS."""
    from nextvec.errors import NextvecError
    from nextvec.serve.app import create_app

    raw = os.environ.get(SERVE_ENV)
    if not raw:
        raise NextvecError(f"${SERVE_ENV} is not set: start workers with `nextvec serve --workers N`")
    o = json.loads(raw)
    set_threads(int(o.pop("threads", 0)))
    app = create_app(o.pop("run"), o.pop("store"), **o)
    freeze_heap()
    return app
