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
    from nextvec.decode.spec import attach_decoder
    from nextvec.options import DecoderOptions
    from nextvec.evaluate import diagnose_run, evaluate_run, format_diagnosis, format_table, write_json
    from nextvec.evaluate.report import write_report
    from nextvec.options import ReportOptions
    from nextvec.evaluate.rollout import format_rollout
    from nextvec.ingest import ingest
    from nextvec.session import Session
    from nextvec.train.loop import train

    workdir.mkdir(parents=True, exist_ok=True)
    store_path, run_path = workdir / "store", workdir / "run"

    typer.secho(f"[1/6] corpus {corpus}", bold=True)
    typer.echo(f"cached at {get_corpus(corpus)}")

    typer.secho("[2/6] ingest (sentences -> all-MiniLM-L6-v2 vectors -> concept store + data card)", bold=True)
    from nextvec.cli.ingest import format_info

    typer.echo(format_info(ingest(corpus, store_path)))

    typer.secho(f"[3/6] train the default recipe for up to {minutes} min", bold=True)
    if (run_path / "summary.json").is_file():
        typer.echo(f"{run_path} already trained; reusing it (delete it to retrain)")
    else:
        cfg = load_config(LVMConfig, None, [f"train.max_minutes={minutes}", *(overrides or [])])
        summary = train(store_path, cfg, run_path)
        typer.echo(json.dumps({k: summary[k] for k in summary if not isinstance(summary[k], (dict, list))}, indent=1))
        for w in summary.get("warnings", []):
            typer.secho(f"warning: {w}", fg="yellow")
    session = Session.open(run_path, store_path, memory=True)

    typer.secho("[4/6] evaluate on the test split (documents never seen in training), beside every baseline", bold=True)
    res = evaluate_run(session)
    write_json(res, workdir / "evaluate.json")
    typer.echo(format_table(res))
    from nextvec.evaluate.distribution import format_distribution

    typer.echo(f"samples (K = {res['distribution']['k']} per window; point predictors repeat their point):")
    typer.echo(format_distribution(res["distribution"]))
    typer.echo(format_rollout(res["rollout"]))

    typer.secho("[5/6] collapse diagnostics", bold=True)
    diag = diagnose_run(session)
    write_json(diag, workdir / "diagnose.json")
    typer.echo(format_diagnosis(diag))

    typer.secho("[6/6] generate 10 steps from a test document's first 5 sentences; write the report", bold=True)
    # decode against TRAIN chunks only: the prompts (and their true continuations) are test documents
    attach_decoder(session, "retrieval", DecoderOptions(split="train"))
    example = demo_continuation(session)
    write_json(example, workdir / "continuation.json")
    typer.echo(f"prompt (a test document): {' '.join(example['prompt'])}")
    for name, steps in {"true continuation": example["true"], **example["continuations"]}.items():
        typer.echo(f" {name} (retention = cosine to the prompt's centroid):")
        for h, st in enumerate(steps, 1):
            typer.echo(f"  {h:2d} ({st['retention']:.2f}) {st['text']}")
    report = write_report(session, ReportOptions(out=workdir / "report"), evaluation=res, diagnosis=diag,
                          continuation=example)
    typer.secho(f"report: {report}", bold=True)


def demo_continuation(session, prefix: int = 5, steps: int = 10) -> dict:
    """The first `prefix` chunks of a long enough test document, its true next `steps` chunks, and the run's
    sampled (seed 0) and point continuations, each step with its topic retention (cosine to the unit
    centroid of the prompt's vectors)."""
    from nextvec.evaluate.rollout import rollout_prompts
    from nextvec.generate import GenerateOptions, generate
    from nextvec.vecmath import unit_centroid, unit_rows

    store = session.store
    a = int(rollout_prompts(store, "test", prefix, steps, 1, seed=0)[0])
    topic = unit_centroid(store.get(slice(a, a + prefix)))
    true = unit_rows(store.get(slice(a + prefix, a + prefix + steps))) @ topic
    prompt = store.texts(range(a, a + prefix))
    out = {"prompt": prompt, "true": [{"text": t, "retention": float(r)}
                                      for t, r in zip(store.texts(range(a + prefix, a + prefix + steps)), true)],
           "continuations": {}}
    for label, samples in (("sampled (seed 0)", 1), ("point (y_dec fed back)", 0)):
        gen = generate(session, " ".join(prompt), GenerateOptions(steps=steps, samples=samples))
        out["continuations"][label] = [{"text": s["text"], "retention": s["retention"]} for s in gen["steps"] if s["kept"]]
    return out
