"""write_report: report.md and the Jinja2 report.html agree, the HTML is autoescaped, and a real browser
(headless Chromium) shows its tables and decodes its embedded plots."""

from __future__ import annotations

import re
import struct
import tempfile
from pathlib import Path

import pytest

from browser import CHROMIUM, SKIP_REASON, probe_page
from evalkit import make_store, random_docs
from nextvec.evaluate.report import _b, _render_html, write_report


# Appended to a copy of report.html: on the load event (every image has loaded or failed by then; a broken
# one has naturalWidth 0) write what the browser sees into <pre id="probe">, which --dump-dom then prints.
# Synchronous on purpose: an awaited promise may not settle before the DOM is dumped.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const seen = {tables: [...document.querySelectorAll("table")].map(t => t.querySelectorAll("tbody tr").length),
                images: imgs.map(i => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight}))};
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import torch

    from nextvec.models.registry import build_model
    from nextvec.run.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("report")
    docs = random_docs(n_docs=30, dim=8, seed=2)
    texts = [[f"<i>d{d}</i> s{p} & co" for p in range(len(v))] for d, v in enumerate(docs)]  # to be escaped
    store = make_store(root / "store", docs, texts=texts)
    torch.manual_seed(0)
    model = build_model({"name": "gru", "context_length": 3, "hidden_dim": 16, "num_layers": 1}, 8)
    meta = {"model_config": model.config.model_dump(mode="json"), "step": 5, "fingerprint": store.fingerprint,
            "dim": 8, "context_length": 3}
    save_checkpoint(root / "run" / "checkpoints" / "best.safetensors", model, meta)
    records = [{"step": s, "loss": 1.0 / s, "mse": 0.5 / s} for s in range(1, 6)] + [{"step": 5, "val/cosine": 0.3}]
    from nextvec.integrity import seal_json  # each line as RunFolder.log writes it

    (root / "run" / "metrics.jsonl").write_text("".join(seal_json(r).decode() + "\n" for r in records))
    from nextvec.options import ReportOptions
    from nextvec.evaluate.rollout import evaluate_rollouts
    from nextvec.options import RolloutOptions
    from nextvec.evaluate.runner import evaluate_run
    from nextvec.options import EvaluateOptions
    from nextvec.session import Session

    session = Session.open(root / "run", store, encoder=None)
    evaluation = evaluate_run(session, EvaluateOptions(samples=0, rollout=0))
    evaluation["rollout"] = evaluate_rollouts({"model (point)": (model, 3, "point")}, store, RolloutOptions(horizon=3, prefix=3))
    continuation = {"prompt": ["<b>a prompt</b>"], "true": [{"text": "true 1", "retention": 0.5}] * 2,
                    "continuations": {"sampled": [{"text": "step <1>", "retention": 0.4}]}}  # stopped after 1
    md = write_report(session, ReportOptions(out=root / "rep", examples=4), evaluation=evaluation,
                      continuation=continuation)
    return md, md.with_suffix(".html")


def png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])  # IHDR width, height


def md_tables(md: str) -> list[int]:
    """Body rows of each Markdown table (a table starts at its |---| separator line)."""
    lines = md.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            n = 0
            while i + 1 + n < len(lines) and lines[i + 1 + n].startswith("|"):
                n += 1
            out.append(n)
    return out


def browser_view(page, tmp_path) -> dict:
    run = Path(tempfile.mkdtemp(dir=tmp_path))
    return probe_page(page, PROBE, run / "probe.html", tmp_path)


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_report_html_renders_in_chromium(report, tmp_path):
    md_path, html_path = report
    page = html_path.read_text()
    seen = browser_view(page, tmp_path)
    rows = md_tables(md_path.read_text())
    assert seen["tables"] == rows and len(rows) >= 5 and all(n > 0 for n in rows)
    plots = {"training curves": "training_curves.png", "retention and energy score per step": "rollout.png",
             "std ratio histogram": "std_ratio_hist.png"}
    assert [i["alt"] for i in seen["images"]] == list(plots)
    for img in seen["images"]:  # decoded by the browser at the PNG's own size
        assert (img["width"], img["height"]) == png_size(html_path.parent / plots[img["alt"]])
    # the check can fail: a broken image decodes to nothing
    broken = re.sub(r"base64,[^\"]{40}", "base64,AAAA", page, count=1)
    assert browser_view(broken, tmp_path)["images"][0]["width"] == 0


def test_report_md_and_html_carry_the_same_tables_and_plots(report):
    md_path, html_path = report
    md, page = md_path.read_text(), html_path.read_text()
    assert page.count("<table>") == len(md_tables(md)) and page.count("<tr>") == sum(md_tables(md)) + len(md_tables(md))
    assert page.count('src="data:image/png;base64,') == 3 and md.count("](") == 3
    assert "| real continuation |" in md and "| knn_walk |" in md and "(stopped)" in md and "step <1> (0.40)" in md
    assert "**Verdict:" in md and "<p><b>Verdict:" in page
    assert md.count("**true next**") == 4 and page.count("<b>true next:</b>") == 4


def test_report_html_escapes_text(report, tmp_path):
    page = report[1].read_text()
    assert "<i>d" not in page and "&lt;i&gt;d" in page and "&amp; co" in page
    assert "<b>a prompt" not in page and "step &lt;1&gt;" in page
    out = _render_html([_b("p", text="<script>x</script>"), _b("table", head=["a"], rows=[["**<b>**"]])], tmp_path, "t<")
    assert "<script>x" not in out and "&lt;script&gt;x" in out and "<b>&lt;b&gt;</b>" in out and "<title>t&lt;</title>" in out
