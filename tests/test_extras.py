"""Optional extras: a missing one is named in the error, and the core imports none of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nextvec.errors import NextvecError
from nextvec.extras import require

EXTRA_MODULES = ["matplotlib", "jinja2", "gensim", "sacrebleu", "fastapi", "uvicorn", "httptools", "uvloop", "orjson",
                 "httpx", "vec2text", "nupunkt", "pysbd", "syntok", "sentencex"]


def test_require_returns_the_module():
    assert require("json", "report") is sys.modules["json"]


def test_missing_module_names_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    with pytest.raises(NextvecError, match=r"nextvec serve needs the \[serve\] extra: pip install 'nextvec\[serve\]'"):
        require("uvicorn", "serve", "nextvec serve")


@pytest.mark.parametrize("command, module, extra", [(["serve", "RUN", "--store", "STORE"], "uvicorn", "serve"),
                                                     (["evaluate-decoder", "DEC", "--store", "STORE"], "sacrebleu", "decoder-eval")])
def test_command_without_its_extra_says_which_to_install(monkeypatch, command, module, extra):
    from typer.testing import CliRunner

    from nextvec.cli import app

    monkeypatch.setitem(sys.modules, module, None)
    res = CliRunner().invoke(app, command)
    assert isinstance(res.exception, NextvecError), res.output
    assert f"needs the [{extra}] extra: pip install 'nextvec[{extra}]'" in str(res.exception)


def test_report_plots_without_matplotlib_name_the_report_extra(monkeypatch, tmp_path):
    from nextvec.evaluate.report import plot_std_ratio_hist

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(NextvecError, match=r"\[report\] extra: pip install 'nextvec\[report\]'"):
        plot_std_ratio_hist([1.0, 0.9], tmp_path / "h.png")


def test_wiki_corpus_without_gensim_names_the_demo_extra(monkeypatch):
    from nextvec.corpus import _wiki_documents

    monkeypatch.setitem(sys.modules, "gensim", None)
    with pytest.raises(NextvecError, match=r"the wiki corpus needs the \[demo\] extra"):
        next(_wiki_documents())


def test_core_imports_no_extra():
    code = ("import sys, nextvec, nextvec.cli, nextvec.ingest, nextvec.train.loop, nextvec.evaluate.runner, "
            "nextvec.evaluate.report, nextvec.corpus; print(' '.join(m for m in %r if m in sys.modules))" % EXTRA_MODULES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
