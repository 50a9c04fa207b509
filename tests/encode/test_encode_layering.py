"""encode/ points one way: registry -> backends -> base, with no import back (lazy imports count)."""

import ast
from pathlib import Path

ENCODE = Path(__file__).resolve().parents[2] / "src" / "nextvec" / "encode"


def nextvec_imports(path: Path) -> set[str]:
    """Every nextvec module a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("nextvec"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nextvec"):
            out.add(node.module)
    return out


def test_base_imports_no_backend_and_backends_not_the_registry():
    assert not {m for m in nextvec_imports(ENCODE / "base.py") if m.startswith("nextvec.encode")}
    for backend in ("gtr.py", "sentence_transformer.py", "hashing.py"):
        imports = nextvec_imports(ENCODE / backend)
        assert "nextvec.encode.registry" not in imports and "nextvec.encode" not in imports, backend
