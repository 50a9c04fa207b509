"""The package reads one way: the layering DESIGN.md promises, and functions that fit on a screen."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nextvec"
MAX_FUNCTION_LINES = 80


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions (lazy imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted((SRC / "serve").glob("*.py")), ids=lambda p: p.name)
def test_serve_imports_nothing_from_evaluate_or_train(path):
    bad = sorted(m for m in imported_modules(path) if m.startswith(("nextvec.evaluate", "nextvec.train")))
    assert bad == [], f"{path.name} imports {bad}; serve/ depends on session, models, decode and encode only"


def test_the_layout_check_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    from nextvec.evaluate.metrics import x\n    import nextvec.train.loop\n")
    assert imported_modules(f) == {"os", "nextvec.evaluate.metrics", "nextvec.train.loop"}


def long_functions(root: Path, limit: int) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_longer_than_a_screen():
    assert long_functions(SRC, MAX_FUNCTION_LINES) == []


def test_init_files_only_hand_names_on():
    """`__init__.py` files hold imports, __all__, a docstring and lazy re-exports, never helpers."""
    for path in sorted(SRC.rglob("__init__.py")):
        defs = [n.name for n in ast.parse(path.read_text()).body
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name != "__getattr__"]
        assert defs == [], f"{path.relative_to(SRC)} defines {defs}; move them to a named module"
