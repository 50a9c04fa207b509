"""The package reads one way: layers that point one way (no upward import, no cycle), functions that fit on a
screen, public functions with few parameters, and CLI options that change only on purpose."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nextvec"
MAX_FUNCTION_LINES = 80


MAX_PUBLIC_PARAMETERS = 8
# The layers, bottom first (docs/architecture.md): a module may import its own layer and those below, never
# one above, lazily or not. Every top-level module and package of src/nextvec must be placed here.
LAYERS = (
    ("errors", "integrity", "vecmath", "extras", "readahead", "config", "options", "text", "encode", "store", "corpus"),
    ("data", "index", "models", "losses", "scoring", "ingest", "vector_import"),
    ("run", "train"),
    ("session",),
    ("decode", "generate", "evaluate", "verify"),
    ("serve", "cli", "__main__"),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions (lazy imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """nextvec module -> the nextvec modules it imports (`from package import module` counts as the module;
    a module's own parent packages are not edges: they are imported before it, whatever it does)."""
    paths = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t not in paths and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in paths and t != name and not name.startswith(t + "."):
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_top_level_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert tops == set(LAYER), f"place {sorted(tops - set(LAYER))} in LAYERS; drop {sorted(set(LAYER) - tops)}"


def test_no_module_imports_a_higher_layer():
    graph = module_graph()
    up = [f"{m} (layer {LAYER[m.split('.')[1]]}) imports {d} (layer {LAYER[d.split('.')[1]]})"
          for m, deps in sorted(graph.items()) if m != "nextvec" for d in sorted(deps)
          if d != "nextvec" and LAYER[d.split(".")[1]] > LAYER[m.split(".")[1]]]
    assert up == []


def test_no_import_cycle():
    assert cycles(module_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def parameter_counts(root: Path):
    """(where, name, count) of every public function and public class's __init__ (self and cls not counted)."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        private_classes = {id(f) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name.startswith("_")
                           for f in c.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (node.name.startswith("_") and node.name != "__init__") or id(node) in private_classes:
                continue
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            n = len(names) - (names[:1] in (["self"], ["cls"])) + bool(a.vararg) + bool(a.kwarg)
            yield f"{path.relative_to(root)}:{node.lineno}", node.name, n


def test_public_functions_take_few_parameters():
    """Outside cli/ (a typer command takes one parameter per flag): an operation with many settings takes
    its options model (nextvec.options) instead."""
    many = [f"{where} {name} ({n})" for where, name, n in parameter_counts(SRC)
            if n > MAX_PUBLIC_PARAMETERS and not where.startswith("cli/")]
    assert many == []


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
