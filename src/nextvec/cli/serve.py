"""`nextvec serve`: uvicorn over nextvec.serve.create_app."""

from __future__ import annotations

from pathlib import Path

import typer


def serve_cmd(
    run: Path = typer.Argument(..., help="a training run folder (best checkpoint) or a checkpoint file"),
    store: Path = typer.Option(..., "--store", help="the concept store the model was trained on"),
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback by default)"),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="NEXTVEC_API_KEY",
                                       help="require header X-API-Key on every endpoint but /health"),
    encoder: str = typer.Option("auto", "--encoder", help="'auto' (the store's encoder), 'none' (vectors only) or a spec"),
    index_kind: str = typer.Option("flat", "--index", help="/decode index: flat (exact) | ivf | hnsw (stores over ~1M chunks)"),
    limits: list[str] | None = typer.Option(None, "--limit", help="request limit, e.g. --limit max_vectors=512"),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level"),
    threads: int = typer.Option(1, "--threads", min=0,
                                help="torch and FAISS CPU threads (1 suits small batches on few cores; 0 = their default)"),
) -> None:
    """Serve a trained model over HTTP: /health, /encode, /predict, /decode, /generate (docs at /docs).

    Refuses a store made by another encoder than the model's. Bad requests get a 4xx with a message.
    """
    import torch
    import uvicorn

    from nextvec.config import parse_value
    from nextvec.errors import NextvecError
    from nextvec.serve.app import ServeLimits, create_app

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
    if threads:  # torch and FAISS's OpenMP: spinning thread teams hurt one-request calls on shared cores
        import faiss

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
    app = create_app(run, store, encoder=encoder, api_key=api_key, limits=lim, index_kind=index_kind)
    typer.echo(f"nextvec serving {run} on http://{host}:{port} (docs at /docs)", err=True)
    from nextvec.serve.timeouts import protocol_with_header_timeout

    # slow clients: the head must arrive within header_timeout_s, a body within body_timeout_s (in the app)
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=protocol_with_header_timeout(lim.header_timeout_s))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
