"""`nextvec ingest`, `nextvec info`, `nextvec corpus list|get`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from nextvec.cli.options import Command, flag
from nextvec.errors import NextvecError
from nextvec.ingest import IngestOptions
from nextvec.text.splitters import DEFAULT_SPLITTER
from nextvec.vector_import import ImportOptions

corpus_app = typer.Typer(help="List and fetch the demo corpora.", no_args_is_help=True)


def parse_split(split: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in split.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise NextvecError(f"--split must be three comma-separated fractions like 0.8,0.1,0.1, got {split!r}")
    return parts  # type: ignore[return-value]


def ingest_cmd(
    source: str = typer.Argument(..., help="Folder of .txt/.md/.html, a .jsonl or .parquet file, or a demo corpus name; "
                                 "with --vectors, a .parquet file or a folder of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Store folder (created; an interrupted ingest resumes)."),
    encoder: str = flag(IngestOptions, "encoder"),
    max_chars: int = flag(IngestOptions, "max_chars"),
    split: str = flag(IngestOptions, "split"),
    seed: int = flag(IngestOptions, "seed"),
    dtype: str = flag(IngestOptions, "dtype"),
    batch_size: int = flag(IngestOptions, "batch_size"),
    device: str = flag(IngestOptions, "device"),
    shard_chunks: Optional[int] = flag(IngestOptions, "shard_chunks", default=None, min=1, help=(
        f"{IngestOptions.model_fields['shard_chunks'].description} Default {IngestOptions().shard_chunks} (text), "
        f"{ImportOptions.model_fields['shard_chunks'].default} (--vectors).")),
    vectors: Optional[str] = typer.Option(None, help="Import precomputed vectors from this column of the Parquet "
                                          "SOURCE (with doc_id and text columns) instead of encoding text."),
    encoder_name: Optional[str] = flag(ImportOptions, "encoder_name", prefix="With --vectors: "),
    normalized: Optional[bool] = flag(ImportOptions, "normalized", "--normalized/--not-normalized",
                                      prefix="With --vectors: "),
    l2_normalize: bool = flag(ImportOptions, "l2_normalize", "--l2-normalize", prefix="With --vectors: "),
    splitter: str = flag(IngestOptions, "splitter"),
) -> None:
    """Split and encode documents into a concept store.

    Split documents into sentences/chunks, encode them and write a concept store (and its data card); or,
    with --vectors, import vectors computed elsewhere from Parquet.

    A chunk with no letter or digit is merged into its neighbour in the same document; ingest reports
    how many were merged."""
    shards = {} if shard_chunks is None else {"shard_chunks": shard_chunks}  # None: the model's default
    if vectors is not None:
        from nextvec.vector_import import import_vectors

        summary = import_vectors(source, out, ImportOptions(
            column=vectors, encoder_name=encoder_name, normalized=normalized, l2_normalize=l2_normalize,
            split=parse_split(split), seed=seed, dtype=dtype, **shards))
        typer.echo(format_info(summary))
        typer.echo(f"imported in {summary['seconds']} s ({summary['vectors_per_s']} vectors/s)")
        return
    if encoder_name or normalized is not None or l2_normalize:
        raise NextvecError("--encoder-name, --normalized/--not-normalized and --l2-normalize apply to --vectors imports")
    from nextvec.ingest import ingest

    summary = ingest(source, out, IngestOptions(encoder=encoder, max_chars=max_chars, split=parse_split(split),
                                                seed=seed, dtype=dtype, batch_size=batch_size, device=device,
                                                splitter=splitter, **shards))
    typer.echo(format_info(summary))
    typer.echo(f"ingested in {summary['seconds']} s; {summary['skipped']} records skipped; data card in "
               f"{Path(summary['path']) / 'card.md'}")


def format_info(s: dict) -> str:
    e, sp = s["encoder"], s.get("splitter")
    lines = [
        f"store     {s['path']}",
        f"encoder   {e['name']} ({e['dim']}-d, pooling {e['pooling']}, normalized {e['normalized']}, {e['version']})",
        f"splitter  {sp['name']} ({sp['version']})" if sp else "splitter  not recorded (store made before nextvec recorded it)",
        f"vectors   {s['chunks']} x {s['dim']} {s['dtype']}   documents {s['documents']}",
        "split     " + "   ".join(f"{k}: {v['documents']} docs / {v['chunks']} chunks" for k, v in s["splits"].items()),
        "chunks    {mean:.0f} chars mean, p50 {p50:.0f}, p95 {p95:.0f}, max {max}".format(**s["chunk_chars"]),
        "per doc   {mean:.1f} chunks mean, min {min}, max {max}".format(**s["chunks_per_doc"]),
    ]
    if s.get("integrity"):
        lines.append(f"integrity {s['integrity']}")
    if s.get("letterless_merged") is not None:
        lines.append(f"hygiene   {s['letterless_merged']} chunks without a letter or digit merged into a neighbour")
    return "\n".join(lines)


def info_cmd(store: Path = typer.Argument(..., help="Store folder."),
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
             check: bool = typer.Option(False, "--verify", help="Also hash every file (as `nextvec verify`).")) -> None:
    """A store's summary and data card.

    Documents and chunks per split, encoder and splitter, chunk
    length histogram, very short chunks, chunk hygiene, exact duplicates and the most frequent chunks.
    Opening the store checks every file's size and the small files' hashes; --verify hashes all of them."""
    from nextvec.store import ConceptStore
    from nextvec.store.card import card_markdown, load_card

    report = _verify_or_exit(store, err=True) if check else None  # stdout stays the summary (or its JSON)
    st = ConceptStore(store)
    s, card = st.summary(), load_card(st)
    s["integrity"] = ("every file hashed and as written" if report else "sizes and small files checked at open"
                      ) if st.hashed else "none: written before nextvec recorded content hashes"
    typer.echo(json.dumps({**s, "card": card}, indent=1) if as_json else format_info(s) + "\n\n" + card_markdown(card))


def verify_cmd(path: Path = typer.Argument(..., help="A store folder or a run folder.")) -> None:
    """Check every file of a store or run against its hash.

    Names each file that differs, with what was expected; exit 1 if any does. Opening a store already checks
    sizes and small files, and loading a checkpoint checks it whole; this reads everything."""
    _verify_or_exit(path, err=False)


def _verify_or_exit(path: Path, err: bool) -> dict:
    from nextvec.verify import damaged, format_report, verify

    report = verify(path)
    typer.echo(format_report(report, path), err=err)
    if damaged(report):
        raise typer.Exit(1)
    return report


@corpus_app.command("list", cls=Command)
def corpus_list() -> None:
    """List the demo corpora: sources, licences, cached or not."""
    from nextvec.corpus import CORPORA, corpus_path

    for name, c in CORPORA.items():
        cached = "cached" if corpus_path(name, DEFAULT_SPLITTER).exists() else "not fetched"
        typer.echo(f"{name:10s} {c['description']}\n{'':10s} source: {c['source']}\n{'':10s} licence: {c['license']} [{cached}]")


@corpus_app.command("get", cls=Command)
def corpus_get(name: str = typer.Argument(...), refresh: bool = typer.Option(False, help="Rebuild the cache."),
               splitter: str = typer.Option(DEFAULT_SPLITTER, help="Sentence splitter the cache is split with.")) -> None:
    """Fetch and cache a demo corpus as JSONL.

    Parses it and splits it into sentences; prints its path."""
    from nextvec.corpus import get_corpus

    path = get_corpus(name, refresh=refresh, splitter=splitter)
    n_docs = n_sent = 0
    with open(path) as f:
        for line in f:
            n_docs += 1
            n_sent += len(json.loads(line)["sentences"])
    typer.echo(f"{path}\n{n_docs} documents, {n_sent} sentences")
