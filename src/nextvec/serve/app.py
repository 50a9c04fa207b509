"""FastAPI app over a trained checkpoint and its concept store.

    GET  /health    model, encoder fingerprint, store size (no API key needed)
    POST /encode    {texts}                                       -> {vectors}
    POST /predict   {context_texts | context_vectors, output_type, samples, seed, temperature, guidance}
                                                                  -> {vector} (y_dec or y_cos) [+ samples]
    POST /decode    {vectors, k}                                  -> {results: [[{text, score}]]}
    POST /generate  {prompt, steps, stop_cos, k, samples, seed, temperature, guidance}
                                                                  -> the dict of nextvec.generate.generate

The model is loaded with the same classes and checkpoint format as training
(`nextvec.train.checkpoint.load_model`), and the app refuses a store made by another encoder. Inference
runs off the event loop: /predict and /decode requests are micro-batched onto one worker thread each
(concurrent requests share one model call / one FAISS search); /encode and /generate go to the thread
pool behind locks. Every bad input gets a 4xx with a message, never a 500.
"""

# No `from __future__ import annotations`: FastAPI must see the request classes built inside create_app.

import secrets
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nextvec.config import Strict
from nextvec.errors import NextvecError, check_fingerprint

class ServeLimits(Strict):
    """Per-request limits; anything over them gets a 413/422 with the limit in the message."""

    max_texts: int = Field(64, ge=1, description="texts per /encode or /predict request")
    max_chars: int = Field(2000, ge=1, description="characters per text")
    max_prompt_chars: int = Field(10_000, ge=1, description="characters per /generate prompt")
    max_vectors: int = Field(256, ge=1, description="vectors per /decode request or /predict context")
    max_k: int = Field(50, ge=1, description="candidates per vector in /decode and /generate")
    max_steps: int = Field(20, ge=1, description="steps per /generate request")
    max_samples: int = Field(64, ge=1, description="samples per /predict request; sampled continuations per "
                                                   "/generate request: at most a quarter of this")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request body size")
    max_batch: int = Field(32, ge=1, description="/predict requests merged into one model call")
    body_timeout_s: float = Field(10.0, gt=0, description="seconds to wait for the rest of a request body (then 408)")
    header_timeout_s: float = Field(10.0, gt=0, description="`nextvec serve`: seconds a connection may take to send "
                                                          "a request line and headers before it is closed")


def _check_texts(texts: list[str], max_chars: int, what: str) -> list[str]:
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(f"{what}[{i}] is empty")
        if len(t) > max_chars:
            raise ValueError(f"{what}[{i}] has {len(t)} characters; the limit is {max_chars} (limits.max_chars)")
    return texts


def _check_vectors(rows: list[list[float]], dim: int, what: str) -> np.ndarray:
    for i, r in enumerate(rows):
        if len(r) != dim:
            raise ValueError(f"{what}[{i}] has {len(r)} values; this model works in {dim}-d vectors")
    with np.errstate(over="ignore"):  # 1e39 becomes inf in float32 and is refused just below
        v = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}[{int(np.flatnonzero(bad)[0])}] contains NaN or inf (or a value too large for float32)")
    return v


def build_schemas(dim: int, limits: ServeLimits) -> dict[str, type[BaseModel]]:
    """Request models whose validators know this app's dimension and limits (shown in /docs)."""
    L = limits
    Texts = Field(min_length=1, max_length=L.max_texts,
                  description=f"1 to {L.max_texts} non-empty texts of at most {L.max_chars} characters")
    Vectors = Field(min_length=1, max_length=L.max_vectors,
                    description=f"1 to {L.max_vectors} vectors of {dim} finite numbers")

    class EncodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[str] = Texts

        @field_validator("texts")
        @classmethod
        def _texts(cls, v):
            return _check_texts(v, L.max_chars, "texts")

    class Sampling(BaseModel):  # the HTTP face of nextvec.generate.SampleOptions
        seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the draws: same seed, same output")
        temperature: float | None = Field(None, ge=0.0, le=10.0, allow_inf_nan=False,
                                          description="noise scale of a sampling head (default: the run's)")
        guidance: float | None = Field(None, ge=0.0, le=20.0, allow_inf_nan=False,
                                       description="flow head: classifier-free guidance weight (1 = off)")

        def options(self):
            from nextvec.generate import SampleOptions

            return SampleOptions(self.samples, self.temperature, self.guidance, None, self.seed)

    class PredictRequest(Sampling):
        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        samples: int = Field(0, ge=0, le=L.max_samples,
                             description="also draw this many next vectors from the model's distribution")
        context_texts: list[str] | None = Field(None, min_length=1, max_length=L.max_texts,
                                                description="the context as sentences, oldest first")
        context_vectors: list[list[float]] | None = Field(None, min_length=1, max_length=L.max_vectors,
                                                          description=f"the context as {dim}-d vectors, oldest first")
        output_type: Literal["decoder", "cosine"] = Field(
            "decoder", description="decoder: raw y_dec (for decoding); cosine: unit-norm y_cos (for retrieval)")

        @field_validator("context_texts")
        @classmethod
        def _texts(cls, v):
            return v if v is None else _check_texts(v, L.max_chars, "context_texts")

        @field_validator("context_vectors")
        @classmethod
        def _vectors(cls, v):
            return v if v is None else _check_vectors(v, dim, "context_vectors")

        @model_validator(mode="after")
        def _one_context(self):
            if (self.context_texts is None) == (self.context_vectors is None):
                raise ValueError("give exactly one of context_texts or context_vectors")
            return self

    class DecodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        vectors: list[list[float]] = Vectors
        k: int = Field(1, ge=1, le=L.max_k, description="candidates per vector")

        @field_validator("vectors")
        @classmethod
        def _vectors(cls, v):
            return _check_vectors(v, dim, "vectors")

    class GenerateRequest(Sampling):
        model_config = ConfigDict(extra="forbid")
        samples: int = Field(0, ge=0, le=max(1, L.max_samples // 4),
                             description="0 = the point rollout; N = N sampled continuations")
        prompt: str = Field(min_length=1, max_length=L.max_prompt_chars, description="one or more sentences")
        steps: int = Field(5, ge=1, le=L.max_steps, description="sentences to generate at most")
        stop_cos: float = Field(0.9, ge=-1.0, le=1.0, allow_inf_nan=False,
                                description="stop when a prediction's cosine to the previous one exceeds this")
        k: int = Field(1, ge=1, le=L.max_k, description="candidates reported per step")

        @field_validator("prompt")
        @classmethod
        def _prompt(cls, v):
            if not v.strip():
                raise ValueError("prompt is empty")
            return v

    return {"encode": EncodeRequest, "predict": PredictRequest, "decode": DecodeRequest, "generate": GenerateRequest}


OPEN_PATHS = ("/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
KEY_MESSAGE = "missing or wrong API key: send it in the X-API-Key header"


class RequestGuard:
    """ASGI middleware in front of the app: the API key (when set; every path but OPEN_PATHS) is checked
    before any of the body is read, then bodies over `max_bytes` get 413 (on Content-Length and as read)
    and a body that stalls gets 408. A plain ASGI layer costs less per request than a FastAPI dependency."""

    def __init__(self, app, max_bytes: int, timeout_s: float | None = None, api_key: str | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s  # a client that stalls mid-body gets 408 instead of holding the request forever
        self.api_key = None if api_key is None else api_key.encode()

    async def _reply(self, send, status: int, detail: str, close: bool = False):
        import json

        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + ([(b"connection", b"close")] if close else [])})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send, size):
        await self._reply(send, 413, f"request body of {size} bytes is over the limit of {self.max_bytes} "
                                     f"(limits.max_body_bytes); send fewer vectors per request", close=True)

    async def _timed_out(self, send, total):
        await self._reply(send, 408, f"request body incomplete after {self.timeout_s} s ({total} bytes received; "
                                     f"limits.body_timeout_s)", close=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        if self.api_key is not None and scope.get("path") not in OPEN_PATHS:
            given = next((v for k, v in headers if k == b"x-api-key"), None)
            if given is None or not secrets.compare_digest(given, self.api_key):
                # refused before its body is read: close, so a client cannot hold the connection with a slow body
                return await self._reply(send, 401, KEY_MESSAGE, close=True)
        for k, v in headers:
            if k == b"content-length" and v.isdigit() and int(v) > self.max_bytes:
                return await self._too_large(send, int(v))
        import asyncio

        chunks, total = [], 0
        while True:
            try:
                msg = await asyncio.wait_for(receive(), self.timeout_s)
            except asyncio.TimeoutError:
                return await self._timed_out(send, total)
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                return await self._too_large(send, f"at least {total}")
            if not msg.get("more_body"):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _json_response_class():
    """A JSON response rendered by orjson (numpy arrays written directly, float32 in shortest form): for
    vector payloads it is ~10x faster than the standard library, which FastAPI's JSONResponse uses."""
    import orjson
    from fastapi.responses import Response

    class FastJSONResponse(Response):
        media_type = "application/json"

        def render(self, content) -> bytes:
            return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)

    return FastJSONResponse


def _load_encoder(store, encoder):
    """Resolve the `encoder` argument: an object, a spec string, "auto" (from the store) or "none"."""
    if encoder is None or encoder == "none":
        return None
    if isinstance(encoder, str):
        from nextvec.generate import store_encoder

        return store_encoder(store, encoder)
    check_fingerprint(store.fingerprint, encoder.fingerprint(), "the server's encoder")
    return encoder


def create_app(run_path: str | Path | None = None, store_path: str | Path | None = None, encoder="auto",
               api_key: str | None = None, limits: ServeLimits | dict | None = None, *, model=None,
               meta: dict | None = None, store=None, decoder=None, index_kind: str = "auto", memory: bool = False):
    """Build the FastAPI app.

    Args:
        run_path: a training run folder or checkpoint file (loaded with load_model), unless `model` is given.
        store_path: the concept store to decode into (or pass `store`); it must come from the training encoder.
        encoder: an encoder object, a `load_encoder` spec, "auto" (rebuild the store's encoder) or None/"none"
            (no text endpoints: /encode, /predict with texts and /generate answer 400).
        api_key: when set, every endpoint but /health (and the docs) needs header `X-API-Key: <key>`.
        limits: ServeLimits or a dict of its fields.
        model, meta: an already loaded Predictor and its metadata (fingerprint, dim, context_length), for tests
            and embedding the app in other code.
        decoder: anything with decode(vectors, k); default the retrieval decoder over the whole store.
        index_kind: the default decoder's FAISS index: "auto" (exact up to 1M chunks, IVF above), "flat", "ivf" or "hnsw".
        memory: when the run folder has a fitted successor memory (memory.json, written by `nextvec train`),
            `y_cos` comes from the model with its memory, as in `nextvec evaluate`'s model+memory row. Off by
            default: its exact search over the train split about doubles the cost of a /predict call.
    """
    import torch
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from nextvec.decode.nearest import RetrievalDecoder
    from nextvec.generate import generate
    from nextvec.serve.batching import MicroBatcher
    from nextvec.store import open_store

    limits = limits if isinstance(limits, ServeLimits) else ServeLimits(**(limits or {}))
    FastJSONResponse = _json_response_class()
    if store is None:
        if store_path is None:
            raise NextvecError("create_app needs a store (store_path) to decode into")
        store = open_store(store_path)
    if model is None:
        if run_path is None:
            raise NextvecError("create_app needs a training run or checkpoint (run_path)")
        from nextvec.train.checkpoint import load_model

        model, meta = load_model(run_path)
    meta = dict(meta or {})
    if "fingerprint" in meta:
        check_fingerprint(meta["fingerprint"], store.fingerprint, f"the store at {store.root}")
    if int(meta.get("dim", store.dim)) != store.dim:
        raise NextvecError(f"the model works in {meta['dim']}-d vectors but the store at {store.root} is {store.dim}-d")
    if hasattr(model, "eval"):
        model.eval()
    if memory and run_path is not None:  # the run's fitted successor memory (memory.json), over this store's train split
        from nextvec.evaluate.memory import load_memory_predictor

        model = load_memory_predictor(model, store, run_path) or model
    encoder = _load_encoder(store, encoder)
    decoder = decoder if decoder is not None else RetrievalDecoder(store, index_kind=index_kind)
    dim = store.dim
    model_name = getattr(model, "name", type(model).__name__)
    context_length = meta.get("context_length")
    schemas = build_schemas(dim, limits)
    EncodeRequest, PredictRequest = schemas["encode"], schemas["predict"]
    DecodeRequest, GenerateRequest = schemas["decode"], schemas["generate"]
    model_lock, encoder_lock = threading.Lock(), threading.Lock()
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        device = torch.device("cpu")

    def predict_batch(contexts: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Left-pad the contexts of several requests into one (B, T, D) call."""
        T = max(len(c) for c in contexts)
        ctx = np.zeros((len(contexts), T, dim), np.float32)
        mask = np.zeros((len(contexts), T), bool)
        for i, c in enumerate(contexts):
            ctx[i, T - len(c):] = c
            mask[i, T - len(c):] = True
        with model_lock, torch.inference_mode():
            p = model.predict(torch.from_numpy(ctx).to(device), torch.from_numpy(mask).to(device))
        y_dec, y_cos = p.y_dec.float().cpu().numpy(), p.y_cos.float().cpu().numpy()
        return [(y_dec[i], y_cos[i]) for i in range(len(contexts))]

    def sample_one(ctx: np.ndarray, n: int, options) -> np.ndarray:
        """n draws (n, D) for one context (T, D), seeded by the request."""
        from nextvec.models.base import sample_from

        gen = torch.Generator(device=device).manual_seed(options.seed)
        c = torch.from_numpy(ctx)[None].to(device)
        with model_lock, torch.inference_mode():
            x = sample_from(model, c, torch.ones(c.shape[:2], dtype=torch.bool, device=device), n, gen,
                            temperature=options.temperature, guidance=options.guidance)
        return x[0].float().cpu().numpy()

    def decode_batch(items: list[tuple[np.ndarray, int]]) -> list[list[list[tuple[str, float]]]]:
        """One decoder call for several requests: search with the largest k, trim each to its own k."""
        k = max(k for _, k in items)
        out = decoder.decode(np.concatenate([v for v, _ in items]), k=k)
        res, start = [], 0
        for v, kk in items:
            res.append([cands[:kk] for cands in out[start : start + len(v)]])
            start += len(v)
        return res

    # OpenMP's thread count is per thread: the workers copy this thread's (set by `nextvec serve --threads`).
    omp_threads, torch_threads = _omp_threads(), torch.get_num_threads()

    def init():
        torch.set_num_threads(torch_threads)
        if omp_threads:
            _omp_threads(omp_threads)

    batcher = MicroBatcher(predict_batch, max_batch=limits.max_batch, name="nextvec-predict", init=init)
    decode_batcher = MicroBatcher(decode_batch, max_batch=limits.max_batch, name="nextvec-decode", init=init)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()
        decode_batcher.close()

    app = FastAPI(title="nextvec", version=_version(), lifespan=lifespan,
                  description="Next-sentence-vector prediction over a trained nextvec checkpoint and its concept store.")
    app.state.model, app.state.meta, app.state.store, app.state.encoder = model, meta, store, encoder
    app.state.decoder, app.state.limits, app.state.batcher = decoder, limits, batcher

    # The key is checked by RequestGuard (before the body is read); the docs still show it.
    security = {"security": [{"APIKeyHeader": []}]} if api_key is not None else {}

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            if api_key is not None:
                spec.setdefault("components", {})["securitySchemes"] = {"APIKeyHeader": {
                    "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "needed on every endpoint but /health"}}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi

    async def parse(request: Request, schema: type[BaseModel]):
        # pydantic's own JSON parser on the raw body: ~5x faster than json.loads + validation for vector
        # payloads (FastAPI's default path), and it still turns NaN/Infinity literals into floats we refuse.
        try:
            return schema.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_input=False)])

    def body_doc(schema: type[BaseModel]) -> dict:
        """OpenAPI entry for a body read by `parse` (FastAPI cannot see it in the signature)."""
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema.model_json_schema()}}},
                **security}

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        # FastAPI's default echoes the whole input (megabytes of floats); keep where and why only.
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")).removeprefix("Value error, ")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        msg = f"{'.'.join(first['loc'][1:]) or 'body'}: {first['msg']}"
        return JSONResponse({"detail": msg, "errors": errors[:20]}, status_code=422)

    @app.exception_handler(NextvecError)
    async def _nextvec_error(request: Request, exc: NextvecError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    def need_encoder():
        if encoder is None:
            raise HTTPException(400, "this server runs without an encoder (--encoder none): send vectors, not texts")
        return encoder

    async def encode(texts: list[str]) -> np.ndarray:
        enc = _LockedEncoder(need_encoder(), encoder_lock)
        return await run_in_threadpool(lambda: np.asarray(enc.encode(list(texts)), np.float32))

    @app.get("/health", summary="Model, encoder fingerprint, store size")
    async def health():
        return {
            "status": "ok",
            "model": getattr(model, "name", type(model).__name__),
            "step": meta.get("step"),
            "context_length": context_length,
            "encoder": store.fingerprint,
            "encoder_loaded": encoder is not None,
            "store": {"path": str(store.root), "chunks": len(store), "documents": store.n_docs, "dim": dim},
            "batches": {"predict": {"calls": batcher.batches, "requests": batcher.items},
                        "decode": {"calls": decode_batcher.batches, "requests": decode_batcher.items}},
            "limits": limits.model_dump(),
        }

    @app.post("/encode", openapi_extra=body_doc(EncodeRequest),
              summary="Texts -> vectors with the store's encoder")
    async def encode_endpoint(request: Request):
        req = await parse(request, EncodeRequest)
        v = await encode(req.texts)
        return FastJSONResponse({"vectors": v, "dim": dim})

    @app.post("/predict", openapi_extra=body_doc(PredictRequest),
              summary="Context -> the next vector")
    async def predict_endpoint(request: Request):
        req = await parse(request, PredictRequest)
        ctx = await encode(req.context_texts) if req.context_texts is not None else req.context_vectors
        given = len(ctx)
        if context_length:
            ctx = ctx[-int(context_length):]
        ctx = np.ascontiguousarray(ctx, np.float32)
        y_dec, y_cos = await batcher.submit(ctx)
        y = y_dec if req.output_type == "decoder" else y_cos
        out = {"vector": y, "output_type": req.output_type, "dim": dim, "model": model_name,
               "context_given": given, "context_used": len(ctx)}
        if req.samples:
            out["samples"] = await run_in_threadpool(sample_one, ctx, req.samples, req.options())
        # a Response directly: FastAPI's jsonable_encoder walks every float and costs more than the model
        return FastJSONResponse(out)

    @app.post("/decode", openapi_extra=body_doc(DecodeRequest),
              summary="Vectors -> nearest texts with scores")
    async def decode_endpoint(request: Request):
        req = await parse(request, DecodeRequest)
        out = await decode_batcher.submit((req.vectors, req.k))
        return FastJSONResponse({"results": [[{"text": t, "score": float(s)} for t, s in cands] for cands in out]})

    @app.post("/generate", openapi_extra=body_doc(GenerateRequest),
              summary="Prompt -> a continuation, step by step")
    async def generate_endpoint(request: Request):
        req = await parse(request, GenerateRequest)
        enc = need_encoder()
        # The rollout shares the model with the /predict worker and the encoder with /encode: same locks.
        return await run_in_threadpool(
            generate, _Locked(model, model_lock), store, _LockedEncoder(enc, encoder_lock), req.prompt,
            steps=req.steps, stop_cos=req.stop_cos, decoder=decoder, context_length=context_length, k=req.k,
            sampling=req.options())

    app.add_middleware(RequestGuard, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s, api_key=api_key)
    return app


def _omp_threads(n: int | None = None) -> int | None:
    """Get (or set, on the calling thread) FAISS's OpenMP thread count; None without FAISS."""
    try:
        import faiss
    except ImportError:
        return None
    if n is not None:
        faiss.omp_set_num_threads(n)
    return faiss.omp_get_max_threads()


class _Locked:
    """A Predictor whose predict holds `lock` (one model call at a time across threads)."""

    def __init__(self, model, lock):
        self.model, self.lock = model, lock
        self.name = getattr(model, "name", type(model).__name__)

    def parameters(self):
        return self.model.parameters() if hasattr(self.model, "parameters") else iter(())

    def predict(self, context, mask):
        with self.lock:
            return self.model.predict(context, mask)

    def sample(self, context, mask, n, generator=None, **options):
        from nextvec.models.base import sample_from

        with self.lock:
            return sample_from(self.model, context, mask, n, generator, **options)


class _LockedEncoder:
    """An encoder whose encode holds `lock`."""

    def __init__(self, encoder, lock):
        self.encoder, self.lock, self.dim = encoder, lock, encoder.dim

    def fingerprint(self) -> dict:
        return self.encoder.fingerprint()

    def encode(self, texts, **kw):
        with self.lock:
            return self.encoder.encode(texts, **kw)


def _version() -> str:
    from nextvec import __version__

    return __version__
