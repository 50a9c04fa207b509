"""Typed configuration: pydantic schemas that reject unknown keys, loaded from TOML/YAML/JSON with
dotted CLI overrides (`--set train.lr=3e-4 --set model.name=gru`).

Schemas subclass `Strict`; `load_config(Schema, path, overrides)` returns a validated instance.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from nextvec.errors import NextvecError
from nextvec.integrity import read_json
from nextvec.store.format import write_sealed_json


class Strict(BaseModel):
    """Base for every config section: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


S = TypeVar("S", bound=BaseModel)


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise NextvecError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text) or {}
        if path.suffix == ".json":
            return read_json(path, sealed=None)  # a run's config.json works as a --config
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise NextvecError(f"cannot parse config {path}: {e}") from e
    raise NextvecError(f"config {path} must be .toml, .yaml/.yml or .json")


def parse_value(raw: str):
    """CLI override values: JSON/TOML-ish literals (numbers, true/false, lists), else the plain string."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b.c=value` overrides to a nested dict (copied)."""
    data = json.loads(json.dumps(data))
    for item in overrides or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise NextvecError(f"override {item!r} must look like section.key=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise NextvecError(f"override {item!r}: {p} is not a section")
        node[leaf] = parse_value(raw)
    return data


def load_config(schema: type[S], path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> S:
    """Validate `base` <- file at `path` <- `overrides` against `schema`; errors name the offending key."""
    data = dict(base or {})
    if path is not None:
        data = _deep_merge(data, read_config_file(path))
    data = apply_overrides(data, overrides)
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise NextvecError(f"invalid config: {problems}") from e


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def save_config(cfg: BaseModel, path: str | Path) -> None:
    """RUN/config.json: the resolved config, sealed with its content hash."""
    write_sealed_json(Path(path), cfg.model_dump(mode="json"), indent=2)


# ---------------------------------------------------------------------------------------------------
# LVM training schemas: `nextvec train` reads [model], [loss] and [train] sections into `LVMConfig`.
# ---------------------------------------------------------------------------------------------------

from typing import Literal  # noqa: E402

from pydantic import Field, model_validator  # noqa: E402


class ModelConfig(Strict):
    """The one config every LVM takes (nanoGPT's GPTConfig). `dim` comes from the store at build time.

    residual_prior: predict a residual over a prior computed from the context: "mean" (masked mean),
    "last" (the last context vector), "recency" (learned softmax weights over positions, starting
    uniform), or "none". The residual head's last layer starts at zero, so training starts AT the
    prior. "auto" means "mean" for AMN (its defining idea) and "none" for the other families.
    """

    name: Literal["gru", "lstm", "transformer", "amn"] = "amn"
    dim: int = Field(0, ge=0, description="vector dimension; 0 = take it from the store")
    context_length: int = Field(32, ge=1, le=4096)
    hidden_dim: int = Field(256, ge=1)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    residual_prior: Literal["auto", "none", "mean", "last", "recency"] = "recency"
    separate_cos_head: bool = True
    head: Literal["point", "energy", "flow"] = "energy"
    head_width: int = Field(256, ge=8, description="sampling head: MLP width")
    head_depth: int = Field(3, ge=1, description="sampling head: residual blocks")
    noise_dim: int = Field(384, ge=1, description="energy head: dimension of the input noise")
    cond_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="flow head: conditioning dropout (for guidance)")
    head_detach: bool = Field(False, description="sampling head: stop its gradient at the body's summary")
    sample_steps: int = Field(16, ge=1, le=1000, description="flow head: Euler steps when sampling")
    temperature: float = Field(1.0, ge=0.0, le=10.0,
                               description="sampling heads: scale of the input noise (1.0: the scale they are trained at)")
    guidance: float = Field(1.0, ge=0.0, le=20.0, description="flow head: classifier-free guidance weight (1 = off)")
    prompt_guidance: float = Field(2.0, ge=0.0, le=20.0,
                                   description="sampling heads, in a continuation: weight of the prompt against the "
                                               "model's own steps (guidance with the prompt as the condition; 1 = off)")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.name in ("transformer", "amn") and self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be divisible by num_heads {self.num_heads}")
        return self

    def resolved(self, dim: int | None = None) -> "ModelConfig":
        """A copy with `auto` settings made explicit and `dim` filled in."""
        prior = self.residual_prior
        if prior == "auto":
            prior = "mean" if self.name == "amn" else "none"
        return self.model_copy(update={"residual_prior": prior, "dim": int(dim or self.dim)})


class LossConfig(Strict):
    """One weight per loss term (0 = logged but not trained on) plus InfoNCE settings."""

    mse: float = Field(1.0, ge=0.0)
    cosine: float = Field(1.0, ge=0.0)
    infonce: float = Field(0.0, ge=0.0)
    moment: float = Field(2.0, ge=0.0)
    variance: float = Field(1.0, ge=0.0)
    covariance: float = Field(0.0, ge=0.0)
    temperature: float = Field(0.05, gt=0.0)
    hard_negatives: int = Field(4, ge=0, description="same-document negatives per window for InfoNCE")
    energy: float = Field(1.0, ge=0.0, description="fair energy score of the energy head's samples")
    flow: float = Field(1.0, ge=0.0, description="flow-matching loss of the flow head")
    energy_samples: int = Field(8, ge=2, description="samples per window in the energy score (training)")


class TrainConfig(Strict):
    batch_size: int = Field(256, ge=1, description="per process under torchrun")
    lr: float = Field(1e-3, gt=0.0)
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="cosine decays to lr * min_lr_ratio")
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = Field(1.0, ge=0.0, description="max gradient norm; 0 = off")
    max_steps: int = Field(5000, ge=1)
    max_minutes: float = Field(0.0, ge=0.0, description="wall-clock budget for the training loop; 0 = none")
    seed: int = Field(0, ge=0)
    max_windows_per_doc: int = Field(8, ge=1, description="cap on windows of one document in a batch")
    val_every: int = Field(50, ge=1)
    val_max_windows: int = Field(20000, ge=1, description="validate on at most this many val windows")
    checkpoint_every: int = Field(0, ge=0, description="also save last.safetensors every N steps; 0 = at validation")
    select_metric: str = Field("auto", description="best checkpoint by this validation metric; auto = "
                                                  "val/energy_score with a sampling head, val/cosine with the point head")
    select_mode: Literal["auto", "max", "min"] = Field("auto", description="auto = max for val/cosine, else min")
    patience: int = Field(10, ge=0, description="validations without improvement before stopping; 0 = never")
    device: str = "auto"
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = the cores other programs leave idle "
                                              "(measured when training starts, kept on resume)")
    progress: bool = True
    logger: Literal["none", "tensorboard"] = Field(
        "none", description="also write every metrics record as TensorBoard scalars to RUN/tensorboard "
                            "(the [tensorboard] extra)")
    overfit: int = Field(0, ge=0, description="train AND validate on this many train windows (sanity check); 0 = off")
    train_windows: int = Field(0, ge=0, description="train on a seeded subset of this many train windows "
                                                     "(data-scaling studies); 0 = all")
    init_from: str = Field("", description="start from the weights of this run folder or checkpoint (same encoder "
                                           "and model config; fresh optimizer and schedule): pre-train, then "
                                           "fine-tune on another store")
    data_source: Literal["auto", "memory", "stream"] = Field(
        "auto", description="training windows: memory (the split in RAM), stream (from the memory-mapped store in "
                            "shuffled blocks of documents), auto (stream when the split exceeds max_ram_gb)")
    max_ram_gb: float = Field(4.0, gt=0.0, description="auto streams when the train vectors as float32 exceed this")
    shuffle_buffer: int = Field(65536, ge=1, description="streaming: windows per shuffled block of documents")
    memory: bool = Field(True, description="after training, fit the successor memory's gate (kNN-LM over the train "
                                           "split) on val and write memory.json; evaluate adds a model+memory row")


INDEX_HELP = ("index of the retrieval decoder: auto (exact up to 100k chunks, HNSW up to 1M, IVF above, IVF-PQ "
              "above 4M) | flat | ivf | ivfpq | hnsw")


class IndexConfig(Strict):
    """Nearest-neighbour indexes over store vectors (successor memory, kNN-successor, retrieval decoder)."""

    kind: Literal["auto", "flat", "ivf", "ivfpq", "hnsw"] = Field(
        "auto", description="auto: exact (flat) up to hnsw_above vectors, HNSW up to approx_above, IVF-Flat up to "
                            "compress_above, IVF-PQ with exact re-ranking above; or force one")
    hnsw_above: int = Field(100_000, ge=0, description="auto switches from exact search to HNSW above this size: one "
                                                       "exact query reads every vector (15 ms at 115k x 384-d here), "
                                                       "one HNSW query a few thousand; >= approx_above keeps exact")
    approx_above: int = Field(1_000_000, ge=0, description="auto switches to IVF above this size (HNSW builds slowly "
                                                           "and holds every vector in RAM)")
    compress_above: int = Field(4_000_000, ge=0, description="auto switches from IVF-Flat (4·D bytes a vector) to "
                                                             "IVF-PQ (pq_m bytes a vector) above this size")
    nlist: int = Field(0, ge=0, description="IVF lists; 0 = 4 * sqrt(N), for ivfpq at most 4096 (build cost)")
    nprobe: int = Field(256, ge=1, description="IVF lists searched per query (nprobe = nlist is exact)")
    pq_m: int = Field(48, ge=1, description="ivfpq: PQ sub-quantizers of 8 bits = bytes a vector (the largest "
                                            "divisor of the dimension not above this); 48 for 384-d")
    rerank: int = Field(0, ge=0, description="ivfpq: PQ candidates per query re-scored exactly from the store; "
                                             "0 = max(128, 16k)")
    hnsw_m: int = Field(32, ge=4)
    ef_construction: int = Field(80, ge=8)
    ef_search: int = Field(128, ge=8)
    recall_queries: int = Field(500, ge=0, description="queries whose recall vs exact search is measured at build")


class LVMConfig(Strict):
    """Everything `nextvec train` needs; saved resolved as RUN/config.json."""

    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    index: IndexConfig = IndexConfig()


def resolve_selection(train: TrainConfig, head: str) -> TrainConfig:
    """`train` with select_metric / select_mode made explicit: a sampling head is chosen by the energy score of
    its samples, the point head by val cosine (the energy score of a point is y_dec's distance, which its
    training need not improve); mode max for val/cosine, min for every other metric."""
    metric = train.select_metric
    if metric == "auto":
        metric = "val/cosine" if head == "point" else "val/energy_score"
    mode = train.select_mode if train.select_mode != "auto" else ("max" if metric == "val/cosine" else "min")
    return train.model_copy(update={"select_metric": metric, "select_mode": mode})


class StoreOptions(Strict):
    """What every way of writing a concept store shares (ingest.IngestOptions, vector_import.ImportOptions)."""

    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train,val,test fractions of DOCUMENTS.")
    seed: int = Field(0, description="Seed of the document split.")
    dtype: str = Field("float32", description="float32 or float16 vectors on disk.")
    progress: bool = Field(True, description="Show a progress bar on stderr.")
