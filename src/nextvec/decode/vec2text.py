"""vec2text decoder (optional extra: `pip install 'nextvec[vec2text]'`).

vec2text's `gtr-base` corrector (Morris et al. 2023, "Text Embeddings Reveal (Almost) As Much As Text")
inverts GTR-T5-base embeddings made the way its training made them: T5 encoder, masked mean pool, no
Dense layer, no normalisation. Those are exactly the stores our `gtr` encoder writes (fingerprint name
"gtr-t5-vec2text:..."); vectors from any other encoder invert to gibberish, so they are refused.

Weights: `load_pretrained_corrector("gtr-base")` fetches jxm/gtr__nq__32 and jxm/gtr__nq__32__correct
from the Hugging Face hub, and they load sentence-transformers/gtr-t5-base and t5-base by name. No PyPI
or Debian package ships them. We load with HF_HUB_OFFLINE=1 unless the caller opts into the network, so
a machine without them fails in a second with instructions instead of retrying for half a minute.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from nextvec.decode.base import check_query_vectors
from nextvec.vecmath import unit_rows
from nextvec.errors import NextvecError

VEC2TEXT_PREFIX = "gtr-t5-vec2text"
VEC2TEXT_DIM = 768
HUB_REPOS = ("jxm/gtr__nq__32", "jxm/gtr__nq__32__correct", "sentence-transformers/gtr-t5-base", "t5-base")


def check_vec2text_fingerprint(fingerprint: dict) -> None:
    """Refuse stores the gtr-base corrector cannot invert, saying why."""
    name = str(fingerprint.get("name", ""))
    if not name.startswith(VEC2TEXT_PREFIX):
        raise NextvecError(
            f"the vec2text decoder only inverts vectors from the GTR vec2text encoder (fingerprint name "
            f"'{VEC2TEXT_PREFIX}:...'); this store was made by {name!r}, whose vectors it would turn into "
            f"gibberish. Use the retrieval decoder, or re-ingest with --encoder gtr"
        )
    if int(fingerprint.get("dim", -1)) != VEC2TEXT_DIM:
        raise NextvecError(
            f"vec2text gtr-base inverts {VEC2TEXT_DIM}-d vectors; this store has dim {fingerprint.get('dim')}")
    if fingerprint.get("normalized"):
        raise NextvecError(
            "vec2text gtr-base was trained on unnormalised GTR mean-pooled vectors; this store is L2-normalised "
            "(encoder gtr-l2). Re-ingest with --encoder gtr (not gtr-l2) to decode with vec2text"
        )


@contextlib.contextmanager
def hub_settings(offline: bool, cache_dir: str | Path | None = None):
    """Temporarily force Hugging Face hub offline mode (and optionally its cache folder).

    huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE into module constants at import time, so the
    environment variables alone do not reach an already imported hub: patch the constants as well.
    """
    env = {"HF_HUB_OFFLINE": "1" if offline else None, "TRANSFORMERS_OFFLINE": "1" if offline else None}
    if cache_dir is not None:
        env["HF_HUB_CACHE"] = str(cache_dir)
    saved_env = {k: os.environ.get(k) for k in env}
    consts = None
    saved_consts = {}
    try:
        import huggingface_hub.constants as consts
    except ImportError:
        pass
    try:
        for k, v in env.items():
            if v is None:
                if k != "HF_HUB_CACHE":
                    os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if consts is not None:
            saved_consts = {"HF_HUB_OFFLINE": consts.HF_HUB_OFFLINE, "HF_HUB_CACHE": consts.HF_HUB_CACHE}
            consts.HF_HUB_OFFLINE = offline
            if cache_dir is not None:
                consts.HF_HUB_CACHE = str(cache_dir)
        yield
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if consts is not None:
            for k, v in saved_consts.items():
                setattr(consts, k, v)


def _how_to_provide(cache_dir) -> str:
    where = f" (looked in {cache_dir})" if cache_dir else ""
    return (
        f"the vec2text gtr-base weights are not on this machine{where}: they come from the Hugging Face hub "
        f"({', '.join(HUB_REPOS)}), and no PyPI or Debian package ships them. Either (a) on a machine with "
        f"network access run `HF_HUB_CACHE=DIR python -c \"import vec2text; "
        f"vec2text.load_pretrained_corrector('gtr-base')\"`, copy DIR here and pass it as the local path "
        f"(--vec2text-cache DIR, or Vec2TextDecoder(..., cache_dir=DIR)); or (b) run on an online machine with "
        f"--vec2text-online (allow_online=True)"
    )


def load_gtr_corrector(cache_dir: str | Path | None = None, allow_online: bool = False):
    """`vec2text.load_pretrained_corrector("gtr-base")`, offline unless `allow_online`, failing fast.

    Args:
        cache_dir: a local Hugging Face hub cache folder that holds the weights (see `_how_to_provide`).
        allow_online: let the hub download missing weights (needs network access; slow the first time).
    """
    try:
        import vec2text
    except ImportError as e:
        raise NextvecError("the vec2text decoder needs the optional extra: pip install 'nextvec[vec2text]'") from e
    if cache_dir is not None and not Path(cache_dir).is_dir():
        raise NextvecError(f"vec2text cache folder {cache_dir} does not exist; {_how_to_provide(cache_dir)}")
    with hub_settings(offline=not allow_online, cache_dir=cache_dir):
        try:
            return vec2text.load_pretrained_corrector("gtr-base")
        except (OSError, ValueError, RuntimeError) as e:
            why = f"{e.__class__.__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            if allow_online:
                raise NextvecError(f"could not download or load the vec2text gtr-base weights ({why}); "
                                   f"{_how_to_provide(cache_dir)}") from e
            raise NextvecError(f"{_how_to_provide(cache_dir)} [{why}]") from e


def _corrector_device(corrector):
    """The device the corrector's weights live on (vec2text moves them to CUDA when it is available)."""
    try:
        return next(corrector.model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


class Vec2TextDecoder:
    """Decode GTR vec2text vectors with vec2text's iterative corrector.

    Args:
        store_or_fingerprint: a ConceptStore (or its fingerprint dict) made by the `gtr` encoder.
        num_steps: correction steps (0 = hypothesis model only; the paper's best results use 20-50).
        sequence_beam_width: beam width over correction sequences (0 = greedy; > 0 needs num_steps > 0).
        cache_dir: local Hugging Face hub cache holding the weights; allow_online: permit downloads.
        encoder: optional encoder to score candidates (round-trip cosine); by default the corrector's own
            GTR embedder scores them.
        corrector: an already loaded corrector (skips loading).

    vec2text returns one text per vector, so each candidate list holds one (text, round-trip cosine) pair
    whatever `k` is.
    """

    dim = VEC2TEXT_DIM

    def __init__(self, store_or_fingerprint, num_steps: int = 20, sequence_beam_width: int = 0,
                 cache_dir: str | Path | None = None, allow_online: bool = False, encoder=None,
                 corrector=None, batch_size: int = 16):
        fp = store_or_fingerprint if isinstance(store_or_fingerprint, dict) else store_or_fingerprint.fingerprint
        check_vec2text_fingerprint(fp)
        if num_steps < 0 or sequence_beam_width < 0:
            raise NextvecError("num_steps and sequence_beam_width must be >= 0")
        if sequence_beam_width > 0 and num_steps == 0:
            raise NextvecError("a sequence beam (sequence_beam_width > 0) needs correction steps (num_steps > 0)")
        self.fingerprint = fp
        self.num_steps = int(num_steps)
        self.sequence_beam_width = int(sequence_beam_width)
        self.encoder = encoder
        self.batch_size = batch_size
        self.corrector = corrector if corrector is not None else load_gtr_corrector(cache_dir, allow_online)

    def invert(self, vectors) -> list[str]:
        """(N, 768) -> N texts."""
        import torch
        import vec2text

        v = check_query_vectors(vectors, self.dim)
        out: list[str] = []
        device = _corrector_device(self.corrector)
        for s in range(0, len(v), self.batch_size):
            emb = torch.from_numpy(v[s : s + self.batch_size]).to(device)
            with torch.no_grad():
                out += list(vec2text.invert_embeddings(
                    embeddings=emb, corrector=self.corrector,
                    num_steps=self.num_steps or None,  # None = hypothesis only, vec2text's convention
                    sequence_beam_width=self.sequence_beam_width,
                ))
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """Texts -> GTR vectors with the scoring encoder, or the corrector's own embedder."""
        if self.encoder is not None:
            return np.asarray(self.encoder.encode(list(texts)), np.float32)
        import torch

        c = self.corrector
        batch = c.embedder_tokenizer(list(texts), return_tensors="pt", max_length=128, truncation=True, padding="max_length")
        batch = batch.to(_corrector_device(c))
        with torch.no_grad():
            e = c.inversion_trainer.call_embedding_model(input_ids=batch["input_ids"],
                                                         attention_mask=batch["attention_mask"])
        return e.float().cpu().numpy()

    def decode(self, vectors, k: int = 1) -> list[list[tuple[str, float]]]:
        v = check_query_vectors(vectors, self.dim)
        if len(v) == 0:
            return []
        texts = self.invert(v)
        cos = (unit_rows(v) * unit_rows(self.embed(texts))).sum(axis=1)
        return [[(t, float(c))] for t, c in zip(texts, cos)]
