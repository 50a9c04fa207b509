"""FastAPI routes over a Session: thin handlers that parse, call the InferenceService and respond.

    GET  /health    model, encoder fingerprint, decoder, store size (no API key needed)
    POST /encode    {texts}                                       -> {vectors}
    POST /predict   {context_texts | context_vectors, output_type, samples, seed, temperature, guidance, flow_steps}
                                                                  -> {vector} (y_dec or y_cos) [+ samples]
    POST /decode    {vectors, k}                                  -> {results: [[{text, score}]], decoder}
    POST /generate  {prompt, steps, stop_cos, k, samples, seed, temperature, guidance, flow_steps}
                                                                  -> the dict of nextvec.generate.generate

`nextvec serve` opens the run with `Session.open` (the same model classes and checkpoint format as
training; a store made by another encoder is refused) and calls `create_app(session)`. Inference runs
off the event loop (see serve/service.py). Every bad input gets a 4xx with a message, never a 500.
"""

# No `from __future__ import annotations`: FastAPI must see the `Request` annotations of the routes.

from pydantic import BaseModel, ValidationError

from nextvec.errors import NextvecError
from nextvec.extras import require
from nextvec.serve.guard import RequestGuard
from nextvec.serve.schemas import ServeLimits, build_schemas
from nextvec.serve.service import InferenceService

NO_ENCODER = "this server runs without an encoder (--encoder none): send vectors, not texts"


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


def create_app(session, api_key: str | None = None, limits: ServeLimits | dict | None = None):
    """The FastAPI app over `session` (a nextvec.session.Session; its decoder answers /decode and /generate,
    the retrieval decoder when it has none). With `api_key`, every endpoint but /health (and the docs) needs
    header `X-API-Key: <key>`. `limits`: ServeLimits or a dict of its fields."""
    from contextlib import asynccontextmanager

    FastAPI = require("fastapi", "serve", "the HTTP app").FastAPI
    require("orjson", "serve", "the HTTP app")
    limits = limits if isinstance(limits, ServeLimits) else ServeLimits(**(limits or {}))
    service = InferenceService(session, max_batch=limits.max_batch)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="nextvec", version=_version(), lifespan=lifespan,
                  description="Next-sentence-vector prediction over a trained nextvec checkpoint and its concept store.")
    app.state.session, app.state.service, app.state.limits = session, service, limits
    app.openapi = _openapi(app, api_key)
    _add_error_handlers(app)
    _add_routes(app, service, build_schemas(service.dim, limits), limits, api_key)
    app.add_middleware(RequestGuard, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s, api_key=api_key)
    return app


def _openapi(app, api_key):
    """The OpenAPI schema, with the API-key scheme when one is set (RequestGuard checks it)."""

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

    return openapi


def _add_error_handlers(app) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

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


async def parse(request, schema: type[BaseModel]):
    """pydantic's own JSON parser on the raw body: ~5x faster than json.loads + validation for vector
    payloads (FastAPI's default path), and it still turns NaN/Infinity literals into floats we refuse."""
    from fastapi.exceptions import RequestValidationError

    try:
        return schema.model_validate_json(await request.body())
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_input=False)])


def _add_routes(app, service: InferenceService, schemas: dict, limits: ServeLimits, api_key) -> None:
    from fastapi import HTTPException, Request
    from fastapi.concurrency import run_in_threadpool

    FastJSONResponse = _json_response_class()
    security = {"security": [{"APIKeyHeader": []}]} if api_key is not None else {}

    def body_doc(name: str) -> dict:
        """OpenAPI entry for a body read by `parse` (FastAPI cannot see it in the signature)."""
        schema = schemas[name].model_json_schema()
        return {"openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                                  **security}}

    async def encode(texts: list[str]):
        if service.encoder is None:
            raise HTTPException(400, NO_ENCODER)
        return await run_in_threadpool(service.encode, texts)

    @app.get("/health", summary="Model, encoder fingerprint, decoder, store size")
    async def health():
        return {"status": "ok", **service.health(), "limits": limits.model_dump()}

    @app.post("/encode", summary="Texts -> vectors with the store's encoder", **body_doc("encode"))
    async def encode_endpoint(request: Request):
        req = await parse(request, schemas["encode"])
        return FastJSONResponse({"vectors": await encode(req.texts), "dim": service.dim})

    @app.post("/predict", summary="Context -> the next vector", **body_doc("predict"))
    async def predict_endpoint(request: Request):
        req = await parse(request, schemas["predict"])
        ctx = await encode(req.context_texts) if req.context_texts is not None else req.context_vectors
        given, ctx = len(ctx), service.trim(ctx)
        y_dec, y_cos = await service.predictions.submit(ctx)
        out = {"vector": y_dec if req.output_type == "decoder" else y_cos, "output_type": req.output_type,
               "dim": service.dim, "model": service.session.name, "context_given": given, "context_used": len(ctx)}
        if req.samples:
            out["samples"] = await run_in_threadpool(service.sample, ctx, req.options())
        # a Response directly: FastAPI's jsonable_encoder walks every float and costs more than the model
        return FastJSONResponse(out)

    @app.post("/decode", summary="Vectors -> texts with scores", **body_doc("decode"))
    async def decode_endpoint(request: Request):
        req = await parse(request, schemas["decode"])
        out = await service.decodings.submit((req.vectors, req.k))
        return FastJSONResponse({"results": [[{"text": t, "score": float(s)} for t, s in cands] for cands in out],
                                 "decoder": service.decoder_name})

    @app.post("/generate", summary="Prompt -> a continuation, step by step", **body_doc("generate"))
    async def generate_endpoint(request: Request):
        req = await parse(request, schemas["generate"])
        if service.encoder is None:
            raise HTTPException(400, NO_ENCODER)
        return await run_in_threadpool(service.generate, req.prompt, req.options())


def _version() -> str:
    from nextvec import __version__

    return __version__
