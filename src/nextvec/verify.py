"""`nextvec verify PATH`: hash every file of a store or a run and name each one that differs.

A store's manifest records every file's size and hash (its saved indexes keep theirs in their own sealed
metadata); a run's JSON files and metrics lines carry seals and its checkpoints hash themselves
(nextvec.integrity). Opening a store already checks every size and the small files' hashes, and loading
a checkpoint checks it whole; this checks everything, the vectors and texts included.
"""

from __future__ import annotations

from pathlib import Path

from nextvec.errors import NextvecError
from nextvec.integrity import check_file, check_safetensors, read_json
from nextvec.store.format import MANIFEST, read_manifest
from nextvec.store.reader import file_problems
from nextvec.run.folder import read_metrics_lines, run_is_sealed

OK = None  # a file whose bytes are those written
RUN_JSON = ("config.json", "summary.json", "memory.json")


def verify(path: str | Path) -> dict:
    """{"kind": "store" | "run", "hashed": bool, "files": {relative path: problem or None}} for PATH."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return verify_store(path)
    if (path / "checkpoints").is_dir() or (path / "config.json").is_file():
        return verify_run(path)
    raise NextvecError(f"{path} is neither a concept store (no manifest.json) nor a run folder (no checkpoints/)")


def verify_store(root: Path) -> dict:
    try:
        manifest = read_manifest(root)
    except NextvecError as e:
        return {"kind": "store", "hashed": True, "files": {MANIFEST: str(e)}}
    hashed = "files" in manifest
    if not hashed and manifest.get("complete"):
        return {"kind": "store", "hashed": False, "files": {MANIFEST: OK}}
    files = {MANIFEST: OK, **file_problems(root, manifest, full=True)}
    for meta in sorted((root / "indexes").glob("*.json")):
        files.update(_index_problems(meta, sealed=hashed or None))
    return {"kind": "store", "hashed": hashed, "files": files}


def _index_problems(meta_path: Path, sealed: bool | None) -> dict:
    name = f"indexes/{meta_path.name}"
    try:
        meta = read_json(meta_path, sealed)
    except NextvecError as e:
        return {name: str(e)}
    data = meta_path.with_suffix(".faiss")
    rec = meta.get("faiss")
    return {name: OK, f"indexes/{data.name}": check_file(data, rec) if rec else ("no content hash" if sealed else OK)}


def verify_run(root: Path) -> dict:
    sealed = run_is_sealed(root)
    files: dict[str, str | None] = {}
    for name in RUN_JSON:
        if (root / name).is_file():
            files[name] = _json_problem(root / name, sealed)
    for ckpt in sorted((root / "checkpoints").glob("*.safetensors")):
        files[f"checkpoints/{ckpt.name}"] = _checkpoint_problem(ckpt, sealed)
    for side in sorted((root / "checkpoints").glob("*.json")):
        files[f"checkpoints/{side.name}"] = _json_problem(side, sealed)
    if (root / "metrics.jsonl").is_file():
        files["metrics.jsonl"] = _metrics_problem(root)
    return {"kind": "run", "hashed": sealed, "files": files}


def _json_problem(path: Path, sealed: bool) -> str | None:
    try:
        read_json(path, sealed or None)
    except NextvecError as e:
        return str(e)
    return OK


def _checkpoint_problem(path: Path, sealed: bool) -> str | None:
    from nextvec.integrity import CHECKPOINT_SEAL

    data = path.read_bytes()
    if not sealed and CHECKPOINT_SEAL.encode() not in data[:65536]:
        return OK
    try:
        check_safetensors(data, path)
    except NextvecError as e:
        return str(e)
    return OK


def _metrics_problem(root: Path) -> str | None:
    try:
        read_metrics_lines(root)  # the reader `report` uses: every line's seal, and no partial last line
    except NextvecError as e:
        return str(e)
    return OK


def damaged(report: dict) -> list[str]:
    """The files of a verify report whose bytes are not those written."""
    return [name for name, why in report["files"].items() if why is not None]


def format_report(report: dict, root: str | Path) -> str:
    """One line per file: ok, or what differs; then a verdict line."""
    if not report["hashed"]:
        return f"{root}: written before nextvec recorded content hashes: nothing to check it against (re-ingest or retrain to get them)"
    lines = [f"{name}: {'ok' if why is None else why}" for name, why in report["files"].items()]
    bad = damaged(report)
    lines.append(f"{root}: {len(bad)} of {len(report['files'])} files damaged" if bad
                 else f"{root}: all {len(report['files'])} files are as written")
    return "\n".join(lines)
