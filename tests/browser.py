"""Headless Chromium for the tests that check a page renders (the HTML report, the docs site): open a page
with a probe script added before </body> and return what the probe wrote into <pre id="probe">.

Imported as `browser` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_REASON = "no chromium binary on PATH (Debian: apt-get install -y chromium)"


def probe_page(page_html: str, probe: str, where: Path, tmp_path: Path) -> dict:
    """Write `page_html` with `probe` added as `where` (beside the page's assets, so relative links resolve),
    load it in a fresh headless Chromium profile and return the JSON the probe printed."""
    where.write_text(page_html.replace("</body>", probe + "</body>"))
    profile = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh profile per browser: no lock left by the last one
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
           "--virtual-time-budget=10000", "--dump-dom", where.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the probe script did not run; chromium printed:\n{dom.stdout[:2000]}\n{dom.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))
