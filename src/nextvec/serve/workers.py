"""Several server processes (`nextvec serve --workers N`): uvicorn starts each worker in a fresh
interpreter and builds the app there with `app_from_env`, from the serve options the parent wrote to
the environment. One process serves requests on one event loop; on few cores, two of them keep both
cores busy with parsing, the model and the responses (see bench/serve.py).
"""

from __future__ import annotations

import json
import os

from nextvec.options import ServeOptions

SERVE_ENV = "NEXTVEC_SERVE_OPTIONS"


def export_options(run: str, store: str, options: ServeOptions) -> None:
    """Write what `app_from_env` builds each worker's app from."""
    os.environ[SERVE_ENV] = json.dumps({"run": run, "store": store, "options": options.model_dump(mode="json")})


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


def build_app(run: str, store: str, options: ServeOptions | dict | None = None):
    """One server process's app: thread counts, `Session.open`, `create_app`, then the heap frozen."""
    from nextvec.decode.spec import attach_decoder
    from nextvec.options import DecoderOptions
    from nextvec.serve.app import create_app
    from nextvec.session import Session

    o = ServeOptions.model_validate(options or {})
    set_threads(o.threads)
    session = Session.open(run, store, encoder=o.encoder, memory=o.memory)
    attach_decoder(session, o.decoder, DecoderOptions(index_kind=o.index_kind))
    app = create_app(session, api_key=o.api_key, limits=o.limits)
    freeze_heap()
    return app


def app_from_env():
    """uvicorn factory: `build_app` with the options in $NEXTVEC_SERVE_OPTIONS."""
    from nextvec.errors import NextvecError

    raw = os.environ.get(SERVE_ENV)
    if not raw:
        raise NextvecError(f"${SERVE_ENV} is not set: start workers with `nextvec serve --workers N`")
    return build_app(**json.loads(raw))  # run, store, options
