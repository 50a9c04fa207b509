"""The options of every operation, one pydantic model each: the Python call takes it, the CLI derives its flags
from its fields (nextvec.cli.options.flag) and the server its request bodies, so a default and its help live
here once. Nothing here imports more than pydantic and the config, so the CLI can read them at start-up.

    GenerateOptions (nextvec.generate)   generate, the /generate body
    IngestOptions, ImportOptions         ingest, import (nextvec.ingest, nextvec.vector_import)
    EvaluateOptions, RolloutOptions      evaluate_run, evaluate_rollouts
    DiagnoseOptions, ReportOptions       diagnose_run, write_report
    DecoderOptions, DecoderEvalOptions   load_decoder / attach_decoder, evaluate_decoder
    ServeOptions                         one server process (nextvec.serve.workers.build_app)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from nextvec.config import INDEX_HELP, Strict

K_SAMPLES = 8  # samples per window wherever samples are scored
NOISE_LEVELS = (0.01, 0.05)  # the learned decoder's evaluation: Gaussian noise per dimension
SPEC_HELP = "retrieval | vec2text[:PATH] | learned:PATH"


class DecoderOptions(Strict):
    """Per-decoder settings; each decoder reads only its own (the others are ignored)."""

    split: str | None = Field(None, description="retrieval: decode only into this split's chunks (train/val/test; "
                                                "default every chunk)")
    index_kind: Literal["auto", "flat", "ivf", "ivfpq", "hnsw"] = Field("auto", description=INDEX_HELP)
    steps: int | None = Field(None, ge=0, description="vec2text / learned: correction passes after the first (default "
                                                      "20 for vec2text, 0 for learned; the learned decoder's need the "
                                                      "encoder)")
    beam: int = Field(0, ge=0, description="vec2text: sequence beam width (0 = greedy)")
    online: bool = Field(False, description="vec2text: allow downloading its weights")
    no_repeat_ngram: int = Field(3, ge=0, description="learned: never repeat an n-gram of this length (0 = off)")
    samples: int = Field(0, ge=0, description="learned: extra sampled hypotheses per pass, ranked by round-trip "
                                              "cosine (needs the encoder)")
    seed: int = Field(0, description="learned: seed of the sampled hypotheses")
    device: str = Field("cpu", description="learned: where the decoder runs: cpu, cuda[:N] or auto")


class EvaluateOptions(Strict):
    """What `nextvec evaluate` (and `evaluate_run`) scores; the CLI's flags are these fields."""

    split: str = Field("test", description="Split to evaluate on: test | val | train.")
    baselines: bool = Field(True, description="Evaluate the four baselines beside the model.")
    max_windows: int | None = Field(None, ge=1, description="Evaluate a fixed random subset of this many windows.")
    batch_size: int = Field(512, ge=1, description="Windows per forward pass.")
    seed: int = Field(0, description="Seed of the --max-windows subset, the samples and the rollout prompts.")
    samples: int = Field(8, ge=0, description="K samples per window for the distribution table (energy score, "
                                               "realism); 0 = off.")
    dist_windows: int = Field(5000, ge=1, description="Score samples on a seeded subset of at most this many windows.")
    rollout: int = Field(10, ge=0, description="Continue held-out documents this many steps and score every step "
                                              "against the real continuation (0 = off).")
    rollouts: int = Field(100, ge=1, description="Documents (prompts) in the rollout evaluation.")
    prefix: int = Field(5, ge=1, description="Chunks of each document given as the rollout prompt.")


class RolloutOptions(Strict):
    """Which continuations `evaluate_rollouts` scores (`nextvec evaluate --rollout H` fills these)."""

    split: str = "test"
    horizon: int = Field(10, ge=1, description="steps of each continuation")
    prompts: int = Field(100, ge=1, description="documents whose first `prefix` chunks are the prompts")
    prefix: int = Field(5, ge=1, description="chunks of each document given as the prompt")
    k: int = Field(K_SAMPLES, ge=1, description="rollouts per prompt")
    seed: int = 0
    knn_walk: bool = Field(True, description="add the kNN walk as the reference")


class DiagnoseOptions(Strict):
    """What `nextvec diagnose` (and `diagnose_run`) checks; the CLI's flags are these fields."""

    split: str = Field("test", description="Split to diagnose on: test | val | train.")
    max_windows: int | None = Field(None, ge=1, description="Diagnose a fixed random subset of this many windows.")
    batch_size: int = Field(512, ge=1, description="Windows per forward pass.")
    n_decode: int = Field(500, ge=1, description="Windows for the decoder A/B/C tests.")
    seed: int = Field(0, description="Seed of the window subsets.")
    samples: int = Field(8, ge=0, description="K samples per window for the samples' realism check; 0 = off.")
    sample_windows: int = Field(5000, ge=1, description="Judge samples on a seeded subset of at most this many windows.")


class ReportOptions(Strict):
    """What `nextvec report` (and `write_report`) writes; the CLI's flags are these fields."""

    out: Path | None = Field(None, description="Output folder (default RUN/report).")
    split: str = Field("test", description="Split to evaluate and diagnose on.")
    max_windows: int | None = Field(None, ge=1, description="Use a fixed random subset of this many windows.")
    examples: int = Field(10, ge=0, description="Example predictions decoded by retrieval.")
    seed: int = Field(0, description="Seed of the window subsets and the examples.")


class DecoderEvalOptions(Strict):
    """What `nextvec evaluate-decoder` (and `evaluate_decoder`) measures; the CLI's flags are these fields."""

    split: str = Field("test", description="train | val | test.")
    n: int = Field(300, ge=1, description="Held-out chunks to decode (sampled with --seed).")
    steps: int | None = Field(None, ge=0, description="Correction passes after the first (vec2text style; default "
                                                      "the decoder's).")
    retrieval_split: str | None = Field("train", description="Bank of the retrieval decoder: train | val | test "
                                                             "(None: every chunk).")
    seed: int = Field(0, description="Seed of the sample and the noise.")
    noise_levels: tuple[float, ...] = NOISE_LEVELS
    examples: int = Field(10, ge=0, description="Decoded examples kept in the result.")


class ServeOptions(Strict):
    """What one server process is built from besides the run and the store (`nextvec serve` fills it)."""

    threads: int = Field(1, ge=0, description="torch and FAISS CPU threads (1 suits small batches on few cores; "
                                              "0 = their default)")
    encoder: str = Field("auto", description="'auto' (the store's encoder), 'none' (vectors only) or a spec")
    api_key: str | None = Field(None, description="require header X-API-Key on every endpoint but /health")
    limits: dict = Field(default_factory=dict, description="request limits (nextvec.serve.schemas.ServeLimits fields)")
    decoder: str = Field("retrieval", description="decoder of /decode and /generate: " + SPEC_HELP)
    index_kind: str = Field("auto", description=INDEX_HELP)
    memory: bool = Field(False, description="y_cos from the model with the run's fitted successor memory "
                                            "(memory.json), as evaluate's model+memory row; about doubles /predict "
                                            "latency")
