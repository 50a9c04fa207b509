"""FAISS inner-product indexes over store vectors, shared by evaluation, baselines, the successor memory and
decoding.

`store_unit_index` is the one way to index store rows by cosine: exact (flat) up to `index.hnsw_above`
vectors; HNSW up to `index.approx_above` (one query of generation or serving must not scan every vector);
IVF-Flat above, and above `index.compress_above` an IVF-PQ index (`pq_m` bytes a vector instead of 4·D) whose
candidates are re-scored exactly from the memory-mapped store.
An approximate index is built once, saved under STORE/indexes/ and loaded from there next time, with its
recall@k against exact search (through the whole search path, re-ranking included) measured and printed
when it is built.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from nextvec.errors import NextvecError
from nextvec.vecmath import unit_rows

PQ_BITS = 8  # bits per PQ sub-quantizer code: 256 centroids each, one byte
IVFPQ_MAX_NLIST = 4096  # default nlist cap for ivfpq: assigning N vectors to nlist centroids costs N·nlist·D


class VectorIndex:
    """Exact top-k by inner product over `vectors` (N, D); row i of the index is `ids[i]`.

    For unit vectors inner product equals cosine. `store_unit_index` also wraps the approximate FAISS
    indexes (hnsw, ivf, ivfpq; see `resolve_kind`) in this class. An index with a `store` (ivfpq) re-ranks: it
    takes `candidates(k)` rows from the FAISS index, reads them from the store and returns the top k by
    exact inner product with their unit rows.
    """

    store = None  # the store whose rows re-score the FAISS index's candidates; None = FAISS scores are exact
    rerank = 0  # candidates re-scored per query; 0 = max(128, 16k)

    def __init__(self, vectors: np.ndarray, ids: np.ndarray | None = None, fingerprint: dict | None = None):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise NextvecError(f"index vectors must be (N, D), got shape {vectors.shape}")
        self.dim = vectors.shape[1]
        self.ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
        self.fingerprint = fingerprint
        self.index = faiss.IndexFlatIP(self.dim)
        self.index.add(vectors)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) -> scores (Q, k), ids (Q, k) (store ids, -1 where fewer than k exist)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise NextvecError(f"query vectors must be (Q, {self.dim}), got shape {queries.shape}")
        k = min(k, len(self))
        scores, rows = self.index.search(queries, self.candidates(k))
        ids = np.where(rows >= 0, self.ids[np.clip(rows, 0, None)], -1)
        if self.store is not None:
            scores, ids = rerank_exact(self.store, queries, scores, ids, k)
        return scores, ids

    def candidates(self, k: int) -> int:
        """Rows taken from the FAISS index for a top-k search: k, or the re-ranked candidate count."""
        if self.store is None:
            return k
        return min(len(self), rerank_count(self.rerank, k))


def rerank_count(rerank: int, k: int) -> int:
    """Candidates an ivfpq search re-scores for a top-k: `index.rerank`, or max(128, 16k) when it is 0."""
    return max(k, rerank or max(128, 16 * k))


def rerank_exact(store, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray, k: int,
                 block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Candidates `ids` (Q, R) of `queries` (Q, D), -1 where none, re-scored by exact inner product with
    their unit store rows: the top k of each row, best first, (Q, k) scores and ids. Slots without a
    candidate keep their FAISS score (-FLT_MAX) and sort last."""
    out_s = np.empty((len(ids), k), np.float32)
    out_i = np.empty((len(ids), k), np.int64)
    for s in range(0, len(ids), block):  # bounds the (block, R, D) gather
        cand, q = ids[s : s + block], queries[s : s + block]
        valid = cand >= 0
        uniq, inv = np.unique(cand[valid], return_inverse=True)  # each row read once, in store order
        rows = unit_rows_of(store, uniq)
        exact = scores[s : s + block].astype(np.float32)
        exact[valid] = np.einsum("nd,nd->n", rows[inv], q[np.nonzero(valid)[0]])
        top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        out_s[s : s + block] = np.take_along_axis(exact, top, 1)
        out_i[s : s + block] = np.take_along_axis(cand, top, 1)
    return out_s, out_i


def unit_rows_of(store, ids: np.ndarray, block: int = 65536) -> np.ndarray:
    """(len(ids), D) float32 unit rows of store vectors, read in blocks (zero rows stay zero)."""
    out = np.empty((len(ids), store.dim), np.float32)
    for s in range(0, len(ids), block):
        out[s : s + block] = unit_rows(store.get(ids[s : s + block]))
    return out


def resolve_kind(config, n: int) -> str:
    """The index kind for n vectors: config.kind, or by size for auto (see the module docstring)."""
    if config.kind != "auto":
        return config.kind
    if n <= min(config.hnsw_above, config.approx_above):
        return "flat"
    if n <= config.approx_above:
        return "hnsw"
    return "ivf" if n <= config.compress_above else "ivfpq"


def store_unit_index(store, ids: np.ndarray, name: str, config=None, k: int = 8, log=None) -> VectorIndex:
    """Cosine index over store rows `ids` (see the module docstring). `name` names the saved index (one per
    set of rows: e.g. "successor-keys"); `k` is the k of the recall measured at build."""
    from nextvec.config import IndexConfig

    config = config or IndexConfig()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    ids = np.asarray(ids, dtype=np.int64)
    kind = resolve_kind(config, len(ids))
    if kind == "flat":
        return VectorIndex(unit_rows_of(store, ids), ids=ids, fingerprint=store.fingerprint)
    nlist = _nlist(config, len(ids), kind)
    meta = {"name": name, "kind": kind, "fingerprint": store.fingerprint, "n": int(len(ids)),
            "ids_sum": int(ids.sum()), "nlist": nlist}
    if kind == "ivfpq":
        meta.update(pq_m=_pq_m(config.pq_m, store.dim), pq_bits=PQ_BITS)
    else:  # ivf and hnsw share one meta, HNSW build parameters included; _load_saved reuses an exact match only
        meta.update(hnsw_m=config.hnsw_m, ef_construction=config.ef_construction)
    folder = Path(store.root) / "indexes"
    index = _load_saved(folder, name, meta, sealed=getattr(store, "hashed", False) or None)
    built = index is None
    if built:
        t0 = time.perf_counter()
        index = _build(store, ids, kind, meta, config)
        seconds = time.perf_counter() - t0
    _set_search_params(index, config)
    out = VectorIndex.__new__(VectorIndex)
    out.index, out.ids, out.dim, out.fingerprint, out.meta = index, ids, store.dim, store.fingerprint, meta
    if kind == "ivfpq":
        out.store, out.rerank = store, config.rerank
    if built:
        recall = measure_recall(out, store, ids, k, config.recall_queries)
        meta.update(build_seconds=round(seconds, 2), **recall)
        _save(folder, name, index, meta)
        log(f"index {name}: {describe(meta, config, k)} over {len(ids):,} vectors built in {seconds:.1f} s; "
            f"recall@{k} vs exact {recall['recall']:.3f} ({recall['recall_queries']} queries); saved in {folder}")
    return out


def describe(meta: dict, config, k: int = 8) -> str:
    if meta["kind"] == "ivf":
        return f"IVF nlist={meta['nlist']} nprobe={min(config.nprobe, meta['nlist'])}"
    if meta["kind"] == "ivfpq":
        return (f"IVF-PQ nlist={meta['nlist']} nprobe={min(config.nprobe, meta['nlist'])} "
                f"PQ{meta['pq_m']}x{meta['pq_bits']} ({meta['pq_m'] * meta['pq_bits'] // 8} B/vector) "
                f"re-ranking {rerank_count(config.rerank, k)} candidates")
    return f"HNSW M={meta['hnsw_m']} efSearch={config.ef_search}"


def _nlist(config, n: int, kind: str = "ivf") -> int:
    nlist = config.nlist or int(4 * np.sqrt(n))
    if kind == "ivfpq" and not config.nlist:
        nlist = min(nlist, IVFPQ_MAX_NLIST)
    return int(max(1, min(nlist, n // 39 or 1)))  # FAISS wants >= 39 training points per list


def _pq_m(pq_m: int, dim: int) -> int:
    """The PQ sub-quantizers used: the largest divisor of `dim` not above `pq_m` (FAISS splits the vector
    into equal parts)."""
    return max(m for m in range(1, min(pq_m, dim) + 1) if dim % m == 0)


def _build(store, ids: np.ndarray, kind: str, meta: dict, config):
    import faiss

    D, nlist = store.dim, meta["nlist"]
    rng = np.random.default_rng(0)
    if kind in ("ivf", "ivfpq"):
        if kind == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(D), D, nlist, faiss.METRIC_INNER_PRODUCT)
            n_train = 64 * nlist
        else:
            if len(ids) < 1 << meta["pq_bits"]:
                raise NextvecError(f"an ivfpq index needs at least {1 << meta['pq_bits']} vectors to train its "
                                   f"codebooks, got {len(ids)}; use kind flat")
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(D), D, nlist, meta["pq_m"], meta["pq_bits"],
                                     faiss.METRIC_INNER_PRODUCT)
            n_train = max(64 * nlist, 65536)  # the PQ codebooks train on up to 256 x 256 residuals
        sample = np.sort(rng.choice(len(ids), min(len(ids), n_train), replace=False))
        t0 = time.perf_counter()
        index.train(unit_rows_of(store, ids[sample]))
        meta["train_seconds"] = round(time.perf_counter() - t0, 2)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(D, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
    else:
        raise NextvecError(f"unknown index kind {kind!r}; use auto, flat, ivf, ivfpq or hnsw")
    for s in range(0, len(ids), 262144):  # one block of float32 rows in memory at a time
        index.add(unit_rows_of(store, ids[s : s + 262144]))
    return index


def _set_search_params(index, config) -> None:
    if hasattr(index, "nprobe"):
        index.nprobe = min(config.nprobe, index.nlist)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = config.ef_search


def measure_recall(index: VectorIndex, store, ids: np.ndarray, k: int, n_queries: int) -> dict:
    """recall@k of `index` (its whole search path, re-ranking included) against exact search, on store rows
    outside the bank (held-out chunks, as queries are in use) or, when the bank is the whole store, on bank
    rows."""
    if n_queries == 0:
        return {"recall": float("nan"), "recall_queries": 0}
    rng = np.random.default_rng(1)
    outside = np.setdiff1d(rng.choice(len(store), min(len(store), 4 * n_queries), replace=False), ids)
    pool = outside if len(outside) else ids
    q_ids = np.sort(rng.choice(pool, min(n_queries, len(pool)), replace=False))
    q = unit_rows_of(store, q_ids)
    k = min(k, len(ids))
    exact = ids[exact_top_k(store, ids, q, k)]  # store ids
    _, got = index.search(q, k)
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(got, exact))
    return {"recall": hits / (len(q) * k), "recall_queries": int(len(q))}


def exact_top_k(store, ids: np.ndarray, queries: np.ndarray, k: int, block: int = 65536) -> np.ndarray:
    """Exact top-k rows (positions in `ids`) by inner product, scanning the bank in blocks: (Q, k)."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_r = np.full((len(queries), k), -1, np.int64)
    for s in range(0, len(ids), block):
        scores = queries @ unit_rows_of(store, ids[s : s + block]).T  # (Q, block)
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]  # (Q, kk) block-local
        all_s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], 1)
        all_r = np.concatenate([best_r, top + s], 1)
        keep = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s, best_r = np.take_along_axis(all_s, keep, 1), np.take_along_axis(all_r, keep, 1)
    return best_r


def _load_saved(folder: Path, name: str, meta: dict, sealed: bool | None = None):
    """The saved index when it was built for these rows and parameters and its bytes are those written; else
    None (rebuild). `sealed`: the store records content hashes, so the index's files must carry theirs."""
    import faiss

    from nextvec.integrity import check_file, read_json

    path, meta_path = folder / f"{name}.faiss", folder / f"{name}.json"
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        saved = read_json(meta_path, sealed=sealed)
    except NextvecError as e:
        print(f"warning: rebuilding index {name}: {e}", file=sys.stderr)
        return None
    if any(saved.get(key) != value for key, value in meta.items()):
        return None  # built for other rows, another encoder or other build parameters: rebuild
    problem = check_file(path, saved["faiss"]) if "faiss" in saved else ("has no content hash" if sealed else None)
    if problem:
        print(f"warning: rebuilding index {name}: {path} is damaged ({problem})", file=sys.stderr)
        return None
    meta.update({key: saved[key] for key in ("build_seconds", "train_seconds", "recall", "recall_queries")
                 if key in saved})
    return faiss.read_index(str(path))


def _save(folder: Path, name: str, index, meta: dict) -> None:
    """index.faiss, then its meta (with the .faiss file's record) as sealed JSON: the meta is the commit."""
    import faiss

    from nextvec.store.format import atomic_write_bytes, write_sealed_json

    try:
        folder.mkdir(exist_ok=True)
        rec = atomic_write_bytes(folder / f"{name}.faiss", faiss.serialize_index(index))
        write_sealed_json(folder / f"{name}.json", {**meta, "faiss": rec})
    except OSError as e:  # a read-only store still works: the index is just rebuilt next time
        print(f"warning: could not save index {name} in {folder}: {e.strerror}", file=sys.stderr)
