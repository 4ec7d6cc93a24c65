"""The notebooks run from top to bottom, headlessly, on small data (nbclient + ipykernel).

Each notebook has one cell tagged ``parameters``; the test inserts a cell after it that overrides
those values with a small, fast configuration (as papermill does), then executes the whole notebook.
A failing cell (an exception, a failed ``assert`` inside the notebook) fails the test.
Notebooks 01 and 02 need OSIE and the AlexNet weights and skip without them; 03 always runs.
"""
import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
#: Small configurations: a handful of OSIE images, few SFO passes.
#: Figures go into the notebook's outputs (whatever MPLBACKEND the calling shell has).
INLINE = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
QUICK = {
    "01_model.ipynb": "N_TRAIN_IMAGES = 6\nSFO_PASSES = 10\nSFO_BATCHES = 6",
    "02_evaluation.ipynb": "N_TRAIN_IMAGES = 6\nN_TEST_IMAGES = 6\nSFO_PASSES = 10\nSFO_BATCHES = 6\n"
                           "BASELINES_ON_ALL_IMAGES = False",
}


def _with_parameters(notebook, overrides):
    """A copy of ``notebook`` with a cell of ``overrides`` after its ``parameters`` cell."""
    notebook = nbformat.from_dict(notebook)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    cell = nbformat.v4.new_code_cell(overrides)
    cell.id = "injected-parameters"
    notebook.cells.insert(tagged[0] + 1, cell)
    return notebook


def _execute(name, overrides, env):
    notebook = _with_parameters(nbformat.read(NOTEBOOKS / name, as_version=4), overrides)
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)                          # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def _text(notebook):
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/markdown", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _images(notebook):
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_is_committed_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: cell {cell.id} has outputs"


@pytest.mark.parametrize("name", sorted(QUICK))
def test_notebook_runs_on_osie(name, osie_dir, weights_source):
    data = osie_dir.parent
    notebook = _execute(name, f"DATA = {str(data)!r}\n" + QUICK[name], INLINE)
    assert _images(notebook) >= 4, f"{name} drew fewer figures than it explains"


def test_reproduction_notebook_without_results_shows_the_papers_numbers(tmp_path):
    overrides = f"RESULTS = {str(tmp_path / 'results')!r}"
    text = _text(_execute("03_reproduction.ipynb", overrides, INLINE))
    for number in ("56", "84.40", "71.69", "34"):
        assert number in text, f"the paper's {number} is not shown"
    assert "not found" in text, "absent results must be said to be absent"


def test_reproduction_notebook_with_the_projects_results():
    notebook = _execute("03_reproduction.ipynb", "", INLINE)     # the committed experiments/results/
    published = list((ROOT / "experiments" / "results").glob("*/*.png"))
    assert published and _images(notebook) == len(published), "every committed figure is shown once"
    assert "## The paper's claims" in _text(notebook), "the reproduction report is shown"
