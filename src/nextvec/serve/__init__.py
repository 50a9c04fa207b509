"""HTTP service over a trained checkpoint and its store: `create_app(run_path, store_path, ...)` (FastAPI).

Run it with `nextvec serve RUN --store STORE` (uvicorn, 127.0.0.1:8000 by default; OpenAPI docs at /docs).
"""


def create_app(*args, **kwargs):
    """See nextvec.serve.app.create_app (imported lazily: fastapi loads only when serving)."""
    from nextvec.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
