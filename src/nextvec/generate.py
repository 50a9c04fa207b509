"""Multi-step generation: text prompt -> sentence vectors -> predicted vectors -> text.

    from nextvec.generate import GenerateOptions, generate
    from nextvec.session import Session
    s = Session.open("runs/demo", "stores/demo")
    print(generate(s, "First sentence. Second one.")["text"])  # 10 steps, one sampled continuation

Each step feeds the model the prompt's vectors plus every vector generated so far (a draw of the sampling
head by default; with samples = 0 the raw point `y_dec`), decodes it, and stops early when it barely moves:
cosine(y_dec_t, y_dec_{t-1}) > stop_cos, 0.9 by default as in the Large Concept Model paper
(LCM team, Barrault et al. 2024, "Large Concept Models", diffusion/inference stopping criteria).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from nextvec.config import Strict
from nextvec.errors import NextvecError
from nextvec.vecmath import cosine_rows, unit_centroid, unit_rows


def split_prompt(prompt: str, max_chars: int | None = None, splitter: str | None = None) -> list[str]:
    """Prompt -> sentences the way ingest chunks documents (the named splitter, default the package's;
    optional length cap)."""
    from nextvec.text import DEFAULT_SPLITTER, chunk_sentences, split_sentences

    sentences = split_sentences(prompt, splitter or DEFAULT_SPLITTER)
    return chunk_sentences(sentences, max_chars) if max_chars else sentences


def store_splitter(store) -> str:
    """The splitter a store was ingested with: the one its manifest names, else blingfire (a manifest that
    names none was split by blingfire)."""
    params = store.manifest.get("params", {}) if hasattr(store, "manifest") else {}
    return (params.get("splitter") or {}).get("name", "blingfire")


NO_REPEAT_CANDIDATES = 8  # candidates per step the no-repeat decoding may choose from


class SampleOptions(Strict):
    """How to draw next vectors: shared by Python, `nextvec generate` and HTTP /predict and /generate.

    samples: 0 = the point prediction (y_dec fed back); N >= 1 = N draws (N sampled continuations in
    `generate`, each feeding back one draw per step). temperature, guidance and flow_steps default to the
    model's config (None). The same seed gives the same output.
    """

    samples: int = Field(0, ge=0, description="0 = the point prediction; N = N draws (sampled continuations)")
    temperature: float | None = Field(None, ge=0.0, le=10.0, allow_inf_nan=False,
                                      description="noise scale of a sampling head (default: the run's)")
    guidance: float | None = Field(None, ge=0.0, le=20.0, allow_inf_nan=False,
                                   description="flow head: classifier-free guidance weight (1 = off)")
    flow_steps: int | None = Field(None, ge=1, le=1000, description="flow head: Euler steps per draw")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the draws: the same seed gives the same output")

    def draw(self, model, ctx, mask, generator, n: int = 1, own: int = 0):
        """n draws per row (B, n, D) from `model` with these options; `own`: how many of the context's last
        vectors are the model's earlier draws."""
        from nextvec.models.base import sample_from

        return sample_from(model, ctx, mask, n, generator, own=own, **self.knobs())

    def knobs(self) -> dict:
        """The sampling head's options (None = the run's)."""
        return {"temperature": self.temperature, "guidance": self.guidance, "steps": self.flow_steps}


class GenerateOptions(SampleOptions):
    """Everything `generate` takes besides the prompt; `nextvec generate` and HTTP /generate build it."""

    samples: int = Field(1, ge=0, description="N sampled continuations (one draw fed back per step); 0 = the point "
                                               "prediction (y_dec fed back)")
    steps: int = Field(10, ge=1, description="sentences to generate at most")
    stop_cos: float = Field(0.9, ge=-1.0, le=1.0, allow_inf_nan=False,
                            description="stop when a prediction's cosine to the previous one exceeds this")
    k: int = Field(1, ge=1, description="candidates reported per step")
    no_repeat: bool = Field(True, description="decode each step to its best candidate (of the nearest "
                                              f"{NO_REPEAT_CANDIDATES}) not already said in the prompt or the "
                                              "continuation, as language models' no-repeat decoding does")
    prompt_guidance: float | None = Field(None, ge=0.0, le=20.0, allow_inf_nan=False,
                                          description="weight of the prompt against the continuation's own steps "
                                                      "(1 = off; default: the run's)")

    def knobs(self) -> dict:
        """The sampling head's options, the prompt's weight among them (None = the run's)."""
        return {**super().knobs(), "prompt_guidance": self.prompt_guidance}


def checked_options(cls, **values):
    """`cls(**values)` (SampleOptions, GenerateOptions) with a NextvecError naming the bad field."""
    from pydantic import ValidationError

    try:
        return cls(**values)
    except ValidationError as e:
        first = e.errors()[0]
        raise NextvecError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from e


def rollouts(model, context: np.ndarray, steps: int, stop_cos: float = 0.9, context_length: int | None = None,
             sampling: SampleOptions | None = None, generator=None, n: int = 1) -> list[tuple[np.ndarray, list, str]]:
    """Roll `model` forward from context (L, D): for each of n rollouts (one without `sampling`: the point
    y_dec fed back), its predictions (S, D), cosines to the previous step (S,) and stop reason. With
    `sampling` the first step draws n vectors at once (a sampler without replacement gives n distinct
    openings), then each rollout feeds back its own draws. A rollout stops at the first step whose cosine to
    the previous one exceeds stop_cos; that step is returned too (the caller decides to drop it)."""
    import torch

    from nextvec.models.base import model_device, sample_rollouts

    if steps < 1:
        raise NextvecError(f"steps must be >= 1, got {steps}")
    if context_length is not None and context_length < 1:
        raise NextvecError(f"context_length must be >= 1, got {context_length}")

    def draw(ctx, mask, k, own):
        if sampling is None:
            y = model.predict(ctx, mask).y_dec[:, None].expand(-1, k, -1)
        else:
            y = sampling.draw(model, ctx, mask, generator, k, own)
        if y.shape[-1] != ctx.shape[-1]:
            raise NextvecError(f"the model predicts {y.shape[-1]}-d vectors but the context is {ctx.shape[-1]}-d")
        return y.float()

    seq = torch.from_numpy(np.array(context, np.float32))[None].to(model_device(model))  # (1, L, D), a copy
    with torch.inference_mode():
        preds = sample_rollouts(seq, steps, n if sampling is not None else 1, context_length, draw)[0].cpu().numpy()
    if not np.isfinite(preds).all():
        raise NextvecError("the model predicted NaN or inf; the checkpoint is broken")
    return [_stopped(p, stop_cos) for p in preds]


def _stopped(preds: np.ndarray, stop_cos: float) -> tuple[np.ndarray, list, str]:
    """One rollout (S, D) cut after the first step whose cosine to the previous one exceeds stop_cos."""
    cos_prev = [None] + [float(c) for c in cosine_rows(preds[1:], preds[:-1])]
    for t in range(1, len(preds)):
        if cos_prev[t] > stop_cos:
            return preds[: t + 1], cos_prev[: t + 1], "similar_to_previous"
    return preds, cos_prev, "max_steps"


def generate(session, prompt: str, options: GenerateOptions | None = None) -> dict:
    """Continue `prompt` by up to `options.steps` sentences with the session's predictor (the model, with
    its memory when one is attached), feeding it at most `session.context_length` recent vectors (all when
    unknown), and decode each step with the session's decoder (attach one with
    `nextvec.decode.spec.attach_decoder`; retrieval over every store chunk when it has none).

    Args:
        session: an opened run (nextvec.session.Session) with an encoder for the prompt.
        options: GenerateOptions (steps, stop_cos, k, and samples / temperature / guidance / seed: with
            samples = N >= 1, N sampled continuations).

    Returns a dict: prompt_sentences, steps (per step: step, text, score, cos_prev, retention (cosine to the
    prompt's unit centroid), kept, candidates),
    continuation (kept texts), text (continuation joined), stop_reason ("similar_to_previous" |
    "max_steps"), steps_run, decoder (which decoder answered); sampled, also `samples` (N) and `rollouts`
    (N dicts of steps, continuation, text, stop_reason, steps_run: the first is the top-level one).
    """
    from nextvec.decode.spec import attach_decoder, decoder_name

    o = options or GenerateOptions()
    model, context_length = session.predictor, session.context_length
    context, sentences = encode_prompt(session.store, session.need_encoder(), prompt)
    decoder = session.decoder or attach_decoder(session, "retrieval")
    head = {"prompt_sentences": sentences, "decoder": decoder_name(decoder), "stop_cos": o.stop_cos}
    topic = unit_centroid(context)  # the prompt's topic
    said = sentences if o.no_repeat else None
    if o.samples < 1:
        return {**head, **_decoded(*rollouts(model, context, o.steps, o.stop_cos, context_length)[0], decoder, o.k,
                                   topic, said)}
    import torch

    gen = torch.Generator().manual_seed(o.seed)
    runs = [_decoded(*r, decoder, o.k, topic, said)
            for r in rollouts(model, context, o.steps, o.stop_cos, context_length, o, gen, n=o.samples)]
    return {**head, **runs[0], "samples": o.samples, "rollouts": runs}


def encode_prompt(store, encoder, prompt: str) -> tuple[np.ndarray, list[str]]:
    """Prompt -> (its sentence vectors (L, D), the sentences), split the way the store was chunked (the
    encoder is the store's: the session checked it)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise NextvecError("the prompt is empty; give at least one sentence")
    max_chars = store.manifest.get("params", {}).get("max_chars") if hasattr(store, "manifest") else None
    sentences = split_prompt(prompt, max_chars if isinstance(max_chars, int) else None, store_splitter(store))
    if not sentences:
        raise NextvecError("the prompt has no sentences")
    context = np.asarray(encoder.encode(sentences), np.float32)  # (L, D)
    if context.shape != (len(sentences), store.dim):
        raise NextvecError(f"the encoder made {context.shape} vectors; the store expects dim {store.dim}")
    return context, sentences


def _decoded(preds: np.ndarray, cos_prev: list, reason: str, decoder, k: int, topic: np.ndarray,
             said: list[str] | None = None) -> dict:
    """Decode one rollout: steps (with candidates and topic retention: cosine of the step's vector to the
    prompt's unit centroid `topic`), kept continuation, text, stop reason. With `said` (the prompt's
    sentences), each step takes its best candidate not said before (the nearest one when all were)."""
    decoded = decoder.decode(preds, k=max(1, k, NO_REPEAT_CANDIDATES if said is not None else 1))
    retention = unit_rows(preds) @ topic
    seen = set(said or ())
    out_steps = []
    for t, (cands, c) in enumerate(zip(decoded, cos_prev)):
        kept = not (reason == "similar_to_previous" and t == len(preds) - 1)
        fresh = [x for x in cands if x[0] not in seen] if said is not None else cands
        text, score = (fresh or cands)[0] if cands else ("", None)
        seen.add(text)
        out_steps.append({"step": t + 1, "text": text, "score": None if score is None else float(score),
                          "cos_prev": c, "retention": float(retention[t]), "kept": kept,
                          "candidates": [{"text": x, "score": float(s)} for x, s in cands[:max(1, k)]]})
    continuation = [s["text"] for s in out_steps if s["kept"]]
    return {"steps": out_steps, "continuation": continuation, "text": " ".join(continuation),
            "stop_reason": reason, "steps_run": len(out_steps)}
