"""`nextvec ingest` takes its flags from IngestOptions / ImportOptions (cli/options.py `flag`): one default each."""

import json

import pytest
import typer
from typer.testing import CliRunner

from nextvec.cli import app
from nextvec.cli.options import flag
from nextvec.errors import NextvecError
from nextvec.ingest import IngestOptions
from nextvec.vector_import import ImportOptions


def test_flag_takes_the_field_default_and_description():
    opt = flag(IngestOptions, "max_chars", "--max-chars")
    field = IngestOptions.model_fields["max_chars"]
    assert isinstance(opt, typer.models.OptionInfo)
    assert opt.default == field.default == 400 and opt.help == field.description and opt.param_decls == ("--max-chars",)
    assert flag(IngestOptions, "split").default == "0.8,0.1,0.1"  # a tuple as the flag's comma-separated text
    assert flag(ImportOptions, "l2_normalize", prefix="With --vectors: ").help == "With --vectors: L2-normalise them on import."
    assert flag(IngestOptions, "shard_chunks", default=None, min=1).default is None


def test_help_shows_the_models_defaults():
    out = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "250"}).output
    for name in ("--encoder", "--max-chars", "--split", "--seed", "--dtype", "--batch-size", "--device",
                 "--shard-chunks", "--vectors", "--encoder-name", "--normalized", "--not-normalized", "--l2-normalize",
                 "--splitter"):
        assert name in out
    d = IngestOptions()
    for default in (d.encoder, d.max_chars, "0.8,0.1,0.1", d.batch_size, d.device, d.splitter):
        assert f"[default: {default}]" in out
    assert f"Default {d.shard_chunks} (text), {ImportOptions().shard_chunks} (--vectors)" in out


def test_max_chars_below_8_is_refused_by_the_options():
    with pytest.raises(NextvecError, match="--max-chars must be at least 8, got 7"):
        IngestOptions(max_chars=7)


def test_normalize_mode():
    assert ImportOptions(l2_normalize=True, normalized=True).normalize_mode == "l2"
    assert ImportOptions(normalized=True).normalize_mode == "declared-unit"
    assert ImportOptions(normalized=False).normalize_mode == "none"


def test_cli_ingest_records_the_models_defaults(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(json.dumps({"id": f"d{i}", "text": f"Doc {i} one. Doc {i} two. Doc {i} three."})
                             for i in range(8)) + "\n")
    r = CliRunner().invoke(app, ["ingest", str(src), "--out", str(tmp_path / "s"), "--encoder", "hash:16"])
    assert r.exit_code == 0, r.output
    params = json.loads((tmp_path / "s" / "manifest.json").read_text())["params"]
    d = IngestOptions()
    assert (params["max_chars"], params["split"], params["seed"], params["dtype"], params["splitter"]["name"]) == (
        d.max_chars, list(d.split), d.seed, d.dtype, d.splitter)
