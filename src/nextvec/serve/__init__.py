"""HTTP service over a Session (a trained run and its store): `create_app(session)` in serve/app.py.

Run it with `nextvec serve RUN --store STORE` (uvicorn, 127.0.0.1:8000 by default; OpenAPI docs at /docs).
Layout: schemas.py (limits, request models), guard.py (API key, body size and timeout), service.py
(batching, locks, predict / decode / generate; no FastAPI), app.py (thin routes), workers.py (--workers N).
"""
