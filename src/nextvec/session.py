"""The one place a trained run is opened: model, metadata, store, encoder and memory, checked once.

    from nextvec.decode.spec import attach_decoder
    from nextvec.generate import generate
    from nextvec.session import Session
    s = Session.open("runs/demo", "stores/demo")
    attach_decoder(s, "learned:runs/decoder")
    print(generate(s, "First sentence. Second one.")["text"])

A Session is the value everything downstream takes: `evaluate_run`, `diagnose_run`, `write_report`,
`generate`, the server and the decoder evaluation. `Session.open` loads a run; `Session.assemble` makes one
from parts already in memory (tests, baselines, embedding in other code). The checks happen here, once: the
store was made by the checkpoint's encoder (fingerprint and dimension) and the encoder is the store's.
The run-level files it reads (memory.json, the index section of config.json) are read and written by
nextvec.run.folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nextvec.errors import NextvecError, check_fingerprint

DEFAULT_CONTEXT_LENGTH = 5


def open_encoder(store, spec="auto"):
    """The encoder for `store`: "auto" rebuilds the one that made it, None/"none" means no encoder, an
    object is used as it is, any other string is a `load_encoder` spec; its fingerprint must match."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, str):
        from nextvec.encode import encoder_spec_for, load_encoder

        encoder = load_encoder(encoder_spec_for(store.fingerprint) if spec == "auto" else spec)
        check_fingerprint(store.fingerprint, encoder.fingerprint(), "the encoder " + repr(spec))
        return encoder
    check_fingerprint(store.fingerprint, spec.fingerprint(), "the encoder")
    return spec


def known_context_length(model, meta: dict | None = None) -> int | None:
    """The checkpoint's context length, else the model's own attribute, else None (unknown)."""
    if meta and meta.get("context_length"):
        return int(meta["context_length"])
    for obj in (model, getattr(model, "config", None)):
        if obj is not None and getattr(obj, "context_length", None):
            return int(obj.context_length)
    return None


def load_memory(model, store, run_dir):
    """The model with its fitted successor memory when RUN/memory.json holds a nonzero weight, else None."""
    from nextvec.run.folder import MEMORY_FILE, read_run_json, run_index_config

    fit = read_run_json(run_dir, MEMORY_FILE) if Path(run_dir).is_dir() else None
    if not fit or not fit.get("weight") and not fit.get("sample_weight"):
        return None
    from nextvec.models.memory import MemoryPredictor, SuccessorMemory

    return MemoryPredictor(model, SuccessorMemory(store, index=run_index_config(run_dir)), fit["weight"],
                           fit["threshold"], fit.get("sample_weight", 0.0), fit.get("sample_threshold", 0.0),
                           fit.get("topic_weight", 0.0))


def _open_store(store):
    from nextvec.store import ConceptStore, open_store

    return store if isinstance(store, ConceptStore) else open_store(store)


@dataclass
class Session:
    """A loaded run. `predictor` is what answers predictions: the model with its memory when one was
    attached (`memory=True` and the run has one), else the model. `decoder` is None until asked for."""

    model: object
    meta: dict
    store: object
    encoder: object = None
    decoder: object = None
    memory: object = None
    context_length: int | None = None  # None: the model reads every vector it is given
    run_dir: Path | None = None
    checkpoint: str = ""

    @classmethod
    def open(cls, run, store, encoder="auto", memory: bool = False, device: str = "cpu") -> Session:
        """Load RUN (a run folder: its best checkpoint, else last; or a checkpoint file) for STORE.

        encoder: "auto" (the store's), "none"/None, a `load_encoder` spec or an encoder object.
        memory: attach the run's fitted successor memory (memory.json), when it has one.
        A decoder is attached by `nextvec.decode.spec.attach_decoder`.
        """
        from nextvec.run.checkpoint import load_model

        store = _open_store(store)
        model, meta = load_model(run, device=device)  # `assemble` checks the store's fingerprint, once
        run_dir = Path(meta.get("run_dir") or run)
        s = cls.assemble(model, meta, store, encoder=encoder, run_dir=run_dir if run_dir.is_dir() else None)
        if memory:  # after the checks: the memory indexes the store's train split
            s.memory = load_memory(model, s.store, run_dir)
        return s

    @classmethod
    def assemble(cls, model, meta: dict | None, store, encoder=None, memory=None, run_dir=None) -> Session:
        """A session from parts already loaded (any Predictor as `model`); the same checks as `open`."""
        store, meta = _open_store(store), dict(meta or {})
        if meta.get("fingerprint"):
            check_fingerprint(meta["fingerprint"], store.fingerprint, f"the store at {store.root}")
        if int(meta.get("dim", store.dim)) != store.dim:
            raise NextvecError(f"the model works in {meta['dim']}-d vectors but the store at {store.root} is {store.dim}-d")
        if hasattr(model, "eval"):
            model.eval()
        return cls(model, meta, store, open_encoder(store, encoder), memory=memory, run_dir=run_dir,
                   context_length=known_context_length(model, meta),
                   checkpoint=str(meta.get("path", run_dir or "")))

    @property
    def window(self) -> int:
        """Vectors of context the evaluators give each prediction: the run's context length, else 5."""
        return self.context_length or DEFAULT_CONTEXT_LENGTH

    @property
    def predictor(self):
        return self.memory if self.memory is not None else self.model

    @property
    def name(self) -> str:
        return getattr(self.predictor, "name", type(self.predictor).__name__)

    def need_encoder(self):
        if self.encoder is None:
            raise NextvecError("this session has no encoder (encoder='none'): give vectors, not texts")
        return self.encoder
