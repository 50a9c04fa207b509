"""A small real-text corpus every Python install has: the docstrings of standard-library modules.

One document per module: its docstring, then the first paragraph of each public function's and class's
docstring, as paragraphs. Read from the source files with `ast` (nothing is imported), written as the
JSONL `nextvec ingest` reads: one {"id", "text"} object per line.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

MODULES = (
    "argparse", "ast", "asyncio.base_events", "asyncio.locks", "asyncio.queues", "asyncio.streams",
    "asyncio.tasks", "base64", "bdb", "bisect", "calendar", "cmd", "codecs", "collections", "colorsys",
    "concurrent.futures._base", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime",
    "difflib", "dis", "doctest", "email.message", "email.utils", "enum", "filecmp", "fileinput", "fnmatch",
    "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html.parser", "http.client", "http.cookiejar", "http.server", "imaplib", "inspect", "ipaddress",
    "json.decoder", "json.encoder", "linecache", "locale", "logging", "logging.handlers", "lzma", "mailbox",
    "mimetypes", "netrc", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools",
    "pkgutil", "platform", "plistlib", "poplib", "pprint", "pstats", "py_compile", "pydoc", "queue",
    "quopri", "random", "re._parser", "reprlib", "sched", "secrets", "selectors", "shlex", "shutil",
    "smtplib", "socket", "socketserver", "statistics", "string", "subprocess", "sysconfig", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace", "traceback", "types", "typing",
    "unittest.case", "unittest.mock", "urllib.parse", "urllib.request", "uuid", "warnings", "wave",
    "weakref", "xml.dom.minidom", "zipfile", "zipimport",
)
MIN_CHARS = 400  # shorter documents hold too few sentences to predict from


def module_text(name: str) -> str:
    """A module's docstring and the first paragraph of its public functions' and classes' docstrings."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    parts = [ast.get_docstring(tree) or ""]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            parts.append((ast.get_docstring(node) or "").split("\n\n")[0])
    return "\n\n".join(" ".join(p.split()) for p in parts if p.strip())


def write_corpus(path: str | Path, modules=MODULES) -> Path:
    """Write one JSONL document per module with at least MIN_CHARS of docstrings; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for name in modules:
            try:
                text = module_text(name)
            except (ImportError, SyntaxError, UnicodeDecodeError, ValueError):
                continue  # a module this Python lacks or cannot parse: the corpus is a sample anyway
            if len(text) >= MIN_CHARS:
                f.write(json.dumps({"id": name, "text": text}) + "\n")
    return path
