"""The docs site builds with `mkdocs build --strict` (no broken link, anchor, snippet or docstring), and a
real browser (headless Chromium) renders its front page and a results page with their tables after the
theme's JavaScript has run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import CHROMIUM, SKIP_REASON, probe_page

ROOT = Path(__file__).resolve().parents[1]


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # its parent package is missing
        return True


MISSING = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python") if _missing(m)]

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed ({', '.join(MISSING)} "
                                                      "missing): pip install -e '.[docs]'")

# Appended to a copy of a built page: on the load event write what the browser sees into <pre id="probe">,
# which --dump-dom then prints. Material's JavaScript wraps every table in div.md-typeset__table when it
# runs, so a wrapped table proves the theme's scripts loaded and ran from file://.
PROBE = """<script>
window.addEventListener("load", () => {
  const seen = [...document.querySelectorAll("article table")].map(t => ({
    wrapped: t.parentElement.classList.contains("md-typeset__table"),
    headers: [...t.querySelectorAll("thead th")].map(th => th.textContent.trim()),
    rows: t.querySelectorAll("tbody tr").length}));
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({title: document.title, tables: seen});
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's end-of-life banner, not a build problem
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return out


def test_site_builds_every_page(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    wanted = {f"{p.relative_to(ROOT / 'docs').with_suffix('.html').as_posix()}" for p in (ROOT / "docs").rglob("*.md")}
    assert wanted <= pages, f"not built: {sorted(wanted - pages)}"
    api = (site / "api" / "session.html").read_text()
    assert 'id="nextvec.session.Session.open"' in api  # the API reference is generated from the docstrings


def browser_view(page: Path, tmp_path: Path) -> dict:
    """What headless Chromium shows of `page` (a copy with the probe beside it, so relative assets resolve)."""
    return probe_page(page.read_text(), PROBE, page.with_name("probe-" + page.name), tmp_path)


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
@pytest.mark.parametrize("page, header", [
    ("index.html", ["step", "command", "what it does"]),
    ("results/index.html", ["corpus (test split)", "topic retention at h = 1 / 10: real / default / kNN walk"]),
])
def test_page_renders_its_tables_in_chromium(site, tmp_path, page, header):
    seen = browser_view(site / page, tmp_path)
    assert "nextvec" in seen["title"]
    tables = seen["tables"]
    assert tables and all(t["wrapped"] for t in tables), f"tables not rendered by the theme's scripts: {tables}"
    first = tables[0]
    assert first["headers"][:len(header)] == header and first["rows"] >= 4
