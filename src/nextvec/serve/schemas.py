"""Request limits and request schemas of the HTTP service.

The generation and sampling fields are nextvec.generate's GenerateOptions / SampleOptions themselves
(one declaration for Python, the CLI and HTTP), capped here by this server's ServeLimits so that /docs
shows the caps.
"""

# No `from __future__ import annotations`: pydantic must see the classes built inside build_schemas.

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from nextvec.config import Strict
from nextvec.generate import GenerateOptions, SampleOptions


class ServeLimits(Strict):
    """Per-request limits; anything over them gets a 413/422 with the limit in the message."""

    max_texts: int = Field(64, ge=1, description="texts per /encode or /predict request")
    max_chars: int = Field(2000, ge=1, description="characters per text")
    max_prompt_chars: int = Field(10_000, ge=1, description="characters per /generate prompt")
    max_vectors: int = Field(256, ge=1, description="vectors per /decode request or /predict context")
    body_timeout_s: float = Field(10.0, gt=0, description="seconds to wait for the rest of a request body (then 408)")
    max_k: int = Field(50, ge=1, description="candidates per vector in /decode and /generate")
    max_steps: int = Field(20, ge=1, description="steps per /generate request")
    max_samples: int = Field(64, ge=1, description="samples per /predict request; sampled continuations per "
                                                   "/generate request: at most a quarter of this")
    max_flow_steps: int = Field(64, ge=1, description="flow head: Euler steps per draw")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request body size")
    max_batch: int = Field(32, ge=1, description="/predict requests merged into one model call")
    header_timeout_s: float = Field(10.0, gt=0, description="`nextvec serve`: seconds a connection may take to send "
                                                          "a request line and headers before it is closed")


def check_texts(texts: list[str], max_chars: int, what: str) -> list[str]:
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(f"{what}[{i}] is empty")
        if len(t) > max_chars:
            raise ValueError(f"{what}[{i}] has {len(t)} characters; the limit is {max_chars} (limits.max_chars)")
    return texts


def check_vectors(rows: list[list[float]], dim: int, what: str) -> np.ndarray:
    for i, r in enumerate(rows):
        if len(r) != dim:
            raise ValueError(f"{what}[{i}] is {len(r)}-d; this model works in {dim}-d vectors")
    with np.errstate(over="ignore"):  # 1e39 becomes inf in float32 and is refused just below
        v = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}[{int(np.flatnonzero(bad)[0])}] contains NaN or inf (or a value too large for float32)")
    return v


def capped(base: type[BaseModel], name: str, **caps: int) -> type[BaseModel]:
    """`base` with an upper bound on some of its fields (kept in its JSON schema), extra keys forbidden."""
    fields = {}
    for key, cap in caps.items():
        info = base.model_fields[key]
        fields[key] = (Annotated[info.annotation, info, Field(le=cap)], info.default)
    return create_model(name, __base__=base, **fields)


def build_schemas(dim: int, limits: ServeLimits) -> dict[str, type[BaseModel]]:
    """Request models whose validators know this app's dimension and limits (shown in /docs)."""
    L = limits
    return {"encode": _encode_request(L), "predict": _predict_request(dim, L), "decode": _decode_request(dim, L),
            "generate": _generate_request(L)}


def _encode_request(L: ServeLimits):
    class EncodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[str] = Field(min_length=1, max_length=L.max_texts,
                                 description=f"1 to {L.max_texts} non-empty texts of at most {L.max_chars} characters")

        @field_validator("texts")
        @classmethod
        def _texts(cls, v):
            return check_texts(v, L.max_chars, "texts")

    return EncodeRequest


def _predict_request(dim: int, L: ServeLimits):
    Options = capped(SampleOptions, "PredictOptions", samples=L.max_samples, flow_steps=L.max_flow_steps)

    class PredictRequest(Options):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        context_texts: list[str] | None = Field(None, min_length=1, max_length=L.max_texts,
                                                description="the context as sentences, oldest first")
        context_vectors: list[list[float]] | None = Field(None, min_length=1, max_length=L.max_vectors,
                                                          description=f"the context as {dim}-d vectors, oldest first")
        output_type: Literal["decoder", "cosine"] = Field(
            "decoder", description="decoder: raw y_dec (for decoding); cosine: unit-norm y_cos (for retrieval)")

        @field_validator("context_texts")
        @classmethod
        def _texts(cls, v):
            return v if v is None else check_texts(v, L.max_chars, "context_texts")

        @field_validator("context_vectors")
        @classmethod
        def _vectors(cls, v):
            return v if v is None else check_vectors(v, dim, "context_vectors")

        @model_validator(mode="after")
        def _one_context(self):
            if (self.context_texts is None) == (self.context_vectors is None):
                raise ValueError("give exactly one of context_texts or context_vectors")
            return self

        def options(self) -> SampleOptions:
            return SampleOptions(**{k: getattr(self, k) for k in SampleOptions.model_fields})

    return PredictRequest


def _decode_request(dim: int, L: ServeLimits):
    class DecodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        vectors: list[list[float]] = Field(min_length=1, max_length=L.max_vectors,
                                           description=f"1 to {L.max_vectors} vectors of {dim} finite numbers")
        k: int = Field(1, ge=1, le=L.max_k, description="candidates per vector")

        @field_validator("vectors")
        @classmethod
        def _vectors(cls, v):
            return check_vectors(v, dim, "vectors")

    return DecodeRequest


def _generate_request(L: ServeLimits):
    Options = capped(GenerateOptions, "GenerateOptions", samples=max(1, L.max_samples // 4), steps=L.max_steps,
                     k=L.max_k, flow_steps=L.max_flow_steps)

    class GenerateRequest(Options):
        prompt: str = Field(min_length=1, max_length=L.max_prompt_chars, description="one or more sentences")

        @field_validator("prompt")
        @classmethod
        def _prompt(cls, v):
            if not v.strip():
                raise ValueError("prompt is empty")
            return v

        def options(self) -> GenerateOptions:
            return GenerateOptions(**{k: getattr(self, k) for k in GenerateOptions.model_fields})

    return GenerateRequest
