"""`nextvec serve`: uvicorn over nextvec.serve.create_app."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from nextvec.cli.options import flag
from nextvec.extras import require
from nextvec.options import ServeOptions


def serve_cmd(
    run: Path = typer.Argument(..., help="a training run folder (best checkpoint) or a checkpoint file"),
    store: Path = typer.Option(..., "--store", help="the concept store the model was trained on"),
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback by default)"),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="NEXTVEC_API_KEY",
                                       help="require header X-API-Key on every endpoint but /health"),
    encoder: str = flag(ServeOptions, "encoder", "--encoder"),
    decoder: str = flag(ServeOptions, "decoder", "--decoder"),
    index_kind: str = flag(ServeOptions, "index_kind", "--index"),
    limits: list[str] | None = typer.Option(None, "--limit", help="request limit, e.g. --limit max_vectors=512"),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level"),
    threads: int = flag(ServeOptions, "threads", "--threads", min=0),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="server processes, each with the model and store loaded (2 suits 2 cores)"),
    memory: bool = flag(ServeOptions, "memory", "--memory/--no-memory"),
) -> None:
    """Serve a trained model over HTTP.

    Endpoints /health, /encode, /predict, /decode, /generate (docs at /docs).

    Refuses a store made by another encoder than the model's. Bad requests get a 4xx with a message.
    """
    uvicorn = require("uvicorn", "serve", "nextvec serve")

    from nextvec.config import parse_value
    from nextvec.errors import NextvecError
    from nextvec.serve.schemas import ServeLimits

    values = {}
    for item in limits or []:
        key, eq, raw = item.partition("=")
        if not eq or key not in ServeLimits.model_fields:
            raise NextvecError(f"--limit {item!r}: use NAME=VALUE with NAME one of {', '.join(ServeLimits.model_fields)}")
        values[key] = parse_value(raw)
    try:
        lim = ServeLimits(**values)
    except ValueError as e:
        raise NextvecError(f"bad --limit: {e}") from e
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        typer.secho(f"warning: serving on {host} without --api-key; anyone who can reach it can use it",
                    fg="yellow", err=True)
    from nextvec.serve import timeouts, workers as w

    opts = ServeOptions(threads=threads, encoder=encoder, api_key=api_key, limits=lim.model_dump(), decoder=decoder,
                        index_kind=index_kind, memory=memory)
    # slow clients: the head must arrive within header_timeout_s, a body within body_timeout_s (in the app)
    run_opts = dict(host=host, port=port, log_level=log_level, access_log=False, proxy_headers=False)
    if workers == 1:
        app = w.build_app(str(run), str(store), opts)  # bad options fail here, with their message
        typer.echo(f"nextvec serving {run} on http://{host}:{port} (docs at /docs)", err=True)
        uvicorn.run(app, http=timeouts.protocol_with_header_timeout(lim.header_timeout_s), **run_opts)
        return
    # Check what can be checked cheaply before starting the workers: the model against the store, the decoder spec.
    from nextvec.decode.spec import parse_decoder_spec
    from nextvec.session import Session

    parse_decoder_spec(decoder)
    Session.open(run, store, encoder=None)
    w.export_options(str(run), str(store), opts)
    os.environ[timeouts.HEADER_TIMEOUT_ENV] = str(lim.header_timeout_s)
    typer.echo(f"nextvec serving {run} on http://{host}:{port} with {workers} worker processes (docs at /docs)", err=True)
    uvicorn.run("nextvec.serve.workers:app_from_env", factory=True, workers=workers,
                http="nextvec.serve.timeouts:EnvHeaderTimeoutProtocol", **run_opts)
