"""`nextvec demo`: every stage on the demo corpus with the embedded default encoder."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def demo_cmd(
    workdir: Path = typer.Option(Path("nextvec-demo"), help="Where the store, run and report go."),
    corpus: str = typer.Option("wiki", help="Demo corpus (see `nextvec corpus list`)."),
    minutes: float = typer.Option(3.0, help="Training budget in minutes (train.max_minutes)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Extra training overrides, e.g. model.name=gru."),
) -> None:
    """Every stage on a demo corpus, end to end.

    Fetch a real corpus, ingest it with the embedded MiniLM encoder, train the default recipe, evaluate
    it beside every baseline on held-out documents, run the collapse diagnostics, generate a continuation
    decoded by retrieval, and write a report. Rerunning reuses the finished store and run."""
    from nextvec.config import LVMConfig, load_config
    from nextvec.corpus import get_corpus
    from nextvec.decode.spec import DecoderOptions
    from nextvec.evaluate import diagnose_run, evaluate_run, format_diagnosis, format_table, write_json
    from nextvec.evaluate.report import write_report
    from nextvec.generate import GenerateOptions
    from nextvec.ingest import ingest
    from nextvec.session import Session
    from nextvec.train.loop import train

    workdir.mkdir(parents=True, exist_ok=True)
    store_path, run_path = workdir / "store", workdir / "run"

    typer.secho(f"[1/6] corpus {corpus}", bold=True)
    typer.echo(f"cached at {get_corpus(corpus)}")

    typer.secho("[2/6] ingest (sentences -> all-MiniLM-L6-v2 vectors -> concept store + data card)", bold=True)
    from nextvec.cli.ingest import format_info

    typer.echo(format_info(ingest(corpus, store_path, encoder="minilm")))

    typer.secho(f"[3/6] train the default recipe for up to {minutes} min", bold=True)
    if (run_path / "summary.json").is_file():
        typer.echo(f"{run_path} already trained; reusing it (delete it to retrain)")
    else:
        cfg = load_config(LVMConfig, None, [f"train.max_minutes={minutes}", *(overrides or [])])
        summary = train(store_path, cfg, run_path)
        typer.echo(json.dumps({k: summary[k] for k in summary if not isinstance(summary[k], (dict, list))}, indent=1))
    # decode against TRAIN chunks only: the prompts of step 6 (and their true continuations) are test documents
    session = Session.open(run_path, store_path, decoder="retrieval", decoder_options=DecoderOptions(split="train"))
    model, meta, store = session.model, session.meta, session.store

    typer.secho("[4/6] evaluate on the test split (documents never seen in training), beside every baseline", bold=True)
    res = evaluate_run(model, store, "test", context_length=meta["context_length"], meta=meta)
    write_json(res, workdir / "evaluate.json")
    typer.echo(format_table(res))
    from nextvec.evaluate.distribution import format_distribution

    typer.echo(f"samples (K = {res['distribution']['k']} per window; point predictors repeat their point):")
    typer.echo(format_distribution(res["distribution"]))

    typer.secho("[5/6] collapse diagnostics", bold=True)
    diag = diagnose_run(model, store, "test", context_length=meta["context_length"], meta=meta)
    write_json(diag, workdir / "diagnose.json")
    typer.echo(format_diagnosis(diag))

    typer.secho("[6/6] generate (decoded by retrieval) and write the report", bold=True)
    d = int(store.split_docs("test")[0])
    a, _ = store.doc_range(d)
    prompt = " ".join(store.texts(range(a, a + 3)))
    typer.echo(f"prompt (a test document): {prompt}")
    for label, samples in (("point rollout (y_dec fed back)", 0), ("sampled rollout (one draw fed back, seed 0)", 1)):
        gen = session.generate(prompt, GenerateOptions(steps=3, samples=samples))
        typer.echo(f" {label}:")
        for s in gen["steps"]:
            cos_prev = "-" if s["cos_prev"] is None else f"{s['cos_prev']:.3f}"
            kept = "" if s.get("kept", True) else "  [dropped: too similar to the previous step]"
            earlier = [e["step"] for e in gen["steps"][: s["step"] - 1] if e["text"] == s["text"]]
            kept += f"  [same text as step {earlier[0]}]" if earlier and s.get("kept", True) else ""
            typer.echo(f"  step {s['step']} (score {s['score']:.3f}, cos to previous {cos_prev}): {s['text']}{kept}")
    typer.echo(f" true continuation: {' '.join(store.texts(range(a + 3, a + 6)))}")
    report = write_report(run_path, store, out_dir=workdir / "report", evaluation=res, diagnosis=diag)
    typer.secho(f"report: {report}", bold=True)
