"""The example notebooks run as written: each is executed top to bottom by a Jupyter kernel (nbclient), in
examples/ (where its helper module lives), and every cell must succeed."""

from __future__ import annotations

from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="the example notebooks run through nbclient: pip install -e '.[docs]'")
nbformat = pytest.importorskip("nbformat", reason="the example notebooks run through nbclient: pip install -e '.[docs]'")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# what each notebook must show once run: (output type, text in its outputs)
EXPECTED = {
    "01_train_and_evaluate.ipynb": ["| model+memory |", "| linear_average |", "| knn_sampler |",
                                    "| real continuation |", "| knn_walk |"],
    "02_sample_generate_plot.ipynb": ["sampled continuation 0:", "point continuation:", "image/png"],
}


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
            parts.extend(out.get("data", {}).keys())
    return "\n".join(parts)


def test_every_example_is_checked():
    assert [p.name for p in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)], \
        f"{path.name} has outputs: clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    text = _outputs_text(nb)
    missing = [want for want in EXPECTED[path.name] if want not in text]
    assert not missing, f"{path.name} ran but its outputs lack {missing}"
