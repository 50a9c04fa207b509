"""The run folder every trainer writes (`nextvec train` and `nextvec train-decoder`):

    RUN/config.json                      the resolved config
    RUN/metrics.jsonl                    one JSON object per record, each with its "step"
    RUN/checkpoints/last.safetensors     model + optimizer + loop position (resume from here)
    RUN/checkpoints/best.safetensors     model at the best validation
    RUN/tensorboard/                     the same records as TensorBoard scalars (with tensorboard=True)

A run written by a nextvec that seals (its checkpoints' format is nextvec.run.checkpoint.FORMAT) keeps a
content hash in each JSON file and each metrics line (nextvec.integrity); `read_run_json` and
`read_metrics_lines` then refuse a file that lost or does not match its seal.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from nextvec.config import save_config
from nextvec.errors import NextvecError
from nextvec.extras import require
from nextvec.integrity import IntegrityError, load_sealed, read_json, seal_json, unseal
from nextvec.store.format import write_sealed_json


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.best = self.root / "checkpoints" / "best.safetensors"
        self.last = self.root / "checkpoints" / "last.safetensors"
        self.metrics = self.root / "metrics.jsonl"
        self._log = None
        self._tb = None

    def check_resume(self, resume: bool) -> None:
        """Refuse to resume without a last checkpoint, or to start a new run over one."""
        if resume and not self.last.is_file():
            raise NextvecError(f"{self.root} has no checkpoints/last.safetensors to resume from")
        if not resume and self.last.is_file():
            raise NextvecError(f"{self.root} already holds a run; pass --resume to continue it or choose another --out")

    def start(self, config, resume_step: int | None, tensorboard: bool = False) -> None:
        """Write config.json and open metrics.jsonl: emptied for a new run; on resume, cut back to the records
        up to the checkpoint we continue from. With `tensorboard`, records also go to RUN/tensorboard (on
        resume, the events written after that checkpoint are purged)."""
        self.root.mkdir(parents=True, exist_ok=True)
        save_config(config, self.root / "config.json")
        if resume_step is None:
            self.metrics.write_text("")
        else:
            _truncate_metrics(self.metrics, resume_step)
        if tensorboard:
            tb = require("torch.utils.tensorboard", "tensorboard", "train.logger = tensorboard")
            self._tb = tb.SummaryWriter(str(self.root / "tensorboard"), purge_step=resume_step)
        self._log = open(self.metrics, "a")

    def log(self, record: dict, flush: bool = True) -> None:
        self._log.write(seal_json(record).decode() + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, record["step"])
        if flush:
            self.flush()

    def flush(self) -> None:
        self._log.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._tb is not None:
            self._tb.close()


MEMORY_FILE = "memory.json"


def save_memory(root: str | Path, fit: dict) -> Path:
    """Write a fitted successor memory (nextvec.models.memory_fit) as RUN/memory.json, sealed."""
    path = Path(root) / MEMORY_FILE
    write_sealed_json(path, fit, indent=2)
    return path


def run_index_config(root: str | Path):
    """The `index` section of RUN/config.json (defaults for a run whose config has none)."""
    from nextvec.config import IndexConfig

    return IndexConfig(**(read_run_json(root, "config.json") or {}).get("index", {}))


def run_is_sealed(root: str | Path) -> bool:
    """Whether a run folder was written by a nextvec that seals: a header of either checkpoint names the
    sealed format (best and last both would have to be damaged for a sealed run to look older)."""
    from nextvec.run.checkpoint import FORMAT

    for name in ("best", "last"):
        path = Path(root) / "checkpoints" / f"{name}.safetensors"
        try:
            with open(path, "rb") as f:  # the header's length as the file states it, at most the file (it may be damaged)
                head = min(int.from_bytes(f.read(8), "little"), os.fstat(f.fileno()).st_size)
                if FORMAT.encode() in f.read(head):
                    return True
        except OSError:
            continue
    return False


def read_run_json(root: str | Path, name: str) -> dict | None:
    """RUN/name (config.json, summary.json, memory.json), its seal checked; None when the file is missing."""
    path = Path(root) / name
    return read_json(path, sealed=run_is_sealed(root) or None) if path.is_file() else None


def read_metrics_lines(root: str | Path) -> list[dict]:
    """The records of RUN/metrics.jsonl, each line's seal checked in a sealed run."""
    path = Path(root) / "metrics.jsonl"
    if not path.is_file():
        return []
    sealed, records, data = run_is_sealed(root), [], path.read_bytes()
    if sealed and data and not data.endswith(b"\n"):
        raise IntegrityError(f"{path} ends in a partial line; check the run with `nextvec verify {root}`")
    lines = data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip() and not sealed:  # a sealed run writes no blank line: one there is damage
            continue
        records.append(load_sealed(line, unseal(line), sealed, f"{path} line {n}", root))
    return records


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the records written after `step` (and lines cut short by a kill)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a kill
            continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)
