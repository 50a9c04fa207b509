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
    """Write the serve options (run, store, encoder, api_key, limits, decoder, index_kind, memory, threads) for
    the workers."""
    os.environ[SERVE_ENV] = json.dumps(options)


def set_threads(threads: int) -> None:
    """torch and FAISS's OpenMP thread counts (0 leaves their defaults)."""
    if threads:
        import torch

        from nextvec.serve.service import omp_threads

        torch.set_num_threads(threads)
        omp_threads(threads)


def freeze_heap() -> None:
    """Everything loaded at start-up (torch, the model, the store's texts) lives as long as the process:
    freezing it keeps the garbage collector's full passes from re-scanning it during requests (tail latency)."""
    import gc

    gc.collect()
    gc.freeze()


def build_app(run: str, store: str, threads: int = 0, encoder: str = "auto", api_key: str | None = None,
              limits: dict | None = None, decoder: str = "retrieval", index_kind: str = "auto", memory: bool = False):
    """One server process's app: thread counts, `Session.open`, `create_app`, then the heap frozen."""
    from nextvec.decode.spec import DecoderOptions, attach_decoder
    from nextvec.serve.app import create_app
    from nextvec.session import Session

    set_threads(threads)
    session = Session.open(run, store, encoder=encoder, memory=memory)
    attach_decoder(session, decoder, DecoderOptions(index_kind=index_kind))
    app = create_app(session, api_key=api_key, limits=limits)
    freeze_heap()
    return app


def app_from_env():
    """uvicorn factory: `build_app` with the options in $NEXTVEC_SERVE_OPTIONS."""
    from nextvec.errors import NextvecError

    raw = os.environ.get(SERVE_ENV)
    if not raw:
        raise NextvecError(f"${SERVE_ENV} is not set: start workers with `nextvec serve --workers N`")
    return build_app(**json.loads(raw))
