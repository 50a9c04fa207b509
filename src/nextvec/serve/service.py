"""The inference service behind the HTTP routes: micro-batching, locks, and predict / sample / decode /
encode / generate over one Session. It knows nothing of HTTP: the routes in app.py parse a request, call
one method here and write the response, and tests can drive it without FastAPI.

/predict and /decode requests are micro-batched onto one worker thread each (concurrent requests share
one model call / one decoder call); encode, sample and generate run on the caller's thread behind the
same locks, so one model, encoder and decoder call runs at a time.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import torch

from nextvec.decode.spec import attach_decoder, decoder_name
from nextvec.models.base import model_device
from nextvec.serve.batching import MicroBatcher


class Locked:
    """`obj` whose predict / sample / encode / decode calls hold `lock`; other attributes pass through."""

    LOCKED = ("predict", "sample", "encode", "decode")

    def __init__(self, obj, lock):
        self._obj, self._lock = obj, lock

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if name not in self.LOCKED:
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


def omp_threads(n: int | None = None) -> int | None:
    """Get (or set, on the calling thread) FAISS's OpenMP thread count; None without FAISS."""
    try:
        import faiss
    except ImportError:
        return None
    if n is not None:
        faiss.omp_set_num_threads(n)
    return faiss.omp_get_max_threads()


class InferenceService:
    """Predict, sample, decode, encode and generate over `session` (its predictor, store, encoder and
    decoder: the retrieval decoder over the whole store when the session has none)."""

    def __init__(self, session, max_batch: int = 32):
        if session.decoder is None:
            attach_decoder(session, "retrieval")
        self.session, self.dim = session, session.store.dim
        locks = threading.Lock(), threading.Lock(), threading.Lock()
        self.model, self.decoder = Locked(session.predictor, locks[0]), Locked(session.decoder, locks[1])
        self.encoder = None if session.encoder is None else Locked(session.encoder, locks[2])
        # the session as generation sees it: every part behind its lock (the memory is inside the predictor)
        self.locked = replace(session, model=self.model, memory=None, encoder=self.encoder, decoder=self.decoder)
        self.device = model_device(session.predictor)
        # OpenMP's thread count is per thread: the workers copy this thread's (set by `nextvec serve --threads`).
        omp, torch_threads = omp_threads(), torch.get_num_threads()

        def init():
            torch.set_num_threads(torch_threads)
            if omp:
                omp_threads(omp)

        self.predictions = MicroBatcher(self.predict_batch, max_batch=max_batch, name="nextvec-predict", init=init)
        self.decodings = MicroBatcher(self.decode_batch, max_batch=max_batch, name="nextvec-decode", init=init)

    @property
    def decoder_name(self) -> str:
        return decoder_name(self.session.decoder)

    def close(self) -> None:
        self.predictions.close()
        self.decodings.close()

    def trim(self, ctx: np.ndarray) -> np.ndarray:
        """The most recent `context_length` vectors of a (T, D) context, as contiguous float32."""
        T = self.session.context_length
        return np.ascontiguousarray(ctx[-int(T):] if T else ctx, np.float32)

    def predict_batch(self, contexts: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Left-pad the contexts (T_i, D) of several requests into one (B, T, D) call -> [(y_dec, y_cos)]."""
        T = max(len(c) for c in contexts)
        ctx = np.zeros((len(contexts), T, self.dim), np.float32)
        mask = np.zeros((len(contexts), T), bool)
        for i, c in enumerate(contexts):
            ctx[i, T - len(c):] = c
            mask[i, T - len(c):] = True
        with torch.inference_mode():
            p = self.model.predict(torch.from_numpy(ctx).to(self.device), torch.from_numpy(mask).to(self.device))
        y_dec, y_cos = p.y_dec.float().cpu().numpy(), p.y_cos.float().cpu().numpy()
        return [(y_dec[i], y_cos[i]) for i in range(len(contexts))]

    def sample(self, ctx: np.ndarray, options) -> np.ndarray:
        """options.samples draws (n, D) for one context (T, D), seeded by options.seed."""
        gen = torch.Generator(device=self.device).manual_seed(options.seed)
        c = torch.from_numpy(ctx)[None].to(self.device)  # (1, T, D)
        mask = torch.ones(c.shape[:2], dtype=torch.bool, device=self.device)
        with torch.inference_mode():
            x = options.draw(self.model, c, mask, gen, n=options.samples)
        return x[0].float().cpu().numpy()

    def decode_batch(self, items: list[tuple[np.ndarray, int]]) -> list[list[list[tuple[str, float]]]]:
        """One decoder call for several requests: decode with the largest k, trim each to its own k."""
        k = max(k for _, k in items)
        out = self.decoder.decode(np.concatenate([v for v, _ in items]), k=k)
        res, start = [], 0
        for v, kk in items:
            res.append([cands[:kk] for cands in out[start : start + len(v)]])
            start += len(v)
        return res

    def encode(self, texts: list[str]) -> np.ndarray:
        self.session.need_encoder()
        return np.asarray(self.encoder.encode(list(texts)), np.float32)

    def generate(self, prompt: str, options) -> dict:
        from nextvec.generate import generate

        return generate(self.locked, prompt, options)

    def health(self) -> dict:
        s = self.session
        return {"model": s.name, "step": s.meta.get("step"), "context_length": s.context_length,
                "encoder": s.store.fingerprint, "encoder_loaded": s.encoder is not None, "decoder": self.decoder_name,
                "store": {"path": str(s.store.root), "chunks": len(s.store), "documents": s.store.n_docs, "dim": self.dim},
                "batches": {"predict": {"calls": self.predictions.batches, "requests": self.predictions.items},
                            "decode": {"calls": self.decodings.batches, "requests": self.decodings.items}}}
