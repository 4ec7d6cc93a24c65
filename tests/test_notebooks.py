"""The notebooks run from top to bottom, headlessly, on small data (nbclient + ipykernel).

Each notebook has one cell tagged ``parameters``; the test inserts a cell after it that overrides
those values with a small, fast configuration (as papermill does), then executes the whole notebook.
A failing cell (an exception, a failed ``assert`` inside the notebook) fails the test.
Notebooks 01 and 02 need OSIE and the AlexNet weights and skip without them; 03 always runs.

The notebooks are committed executed (``notebooks/run.py``, real data, default configuration); the tests
check that those copies ran top to bottom without errors and with the current ``repro/`` sources.
"""
import importlib.util
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


def _runner():
    """``notebooks/run.py`` as a module (what refreshes the committed notebooks)."""
    spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMMITTED = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
REFRESH = "refresh it with `python notebooks/run.py {}` (see notebooks/README.md)"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_notebook_is_executed_in_order_without_errors(name):
    """Readers see outputs: every code cell ran, in order, none failed, figures included, the file small,
    and no output names this machine's paths."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), \
        f"{name} is not executed top to bottom: " + REFRESH.format(name)
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{name}: a cell failed ({errors[0].get('ename')}): " + REFRESH.format(name)
    assert _images(notebook) >= 1, f"{name} shows no figure: " + REFRESH.format(name)
    assert path.stat().st_size < 2e6, f"{name} is {path.stat().st_size / 1e6:.1f} MB (at most 2 MB)"
    text = path.read_text()
    assert str(ROOT) not in text and str(ROOT.parent) + os.sep not in text, f"{name} names this machine's paths"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_notebook_ran_with_the_current_sources(name):
    """The outputs come from the package as it is: the notebook records the SHA-1 of the repro/ sources it ran
    with, and any change to repro/ since makes this fail."""
    recorded = nbformat.read(NOTEBOOKS / name, as_version=4).metadata.get(_runner().KEY, {})
    assert recorded.get("sources_sha1") == _runner().sources_digest(), \
        f"{name} was executed with other repro/ sources than these: " + REFRESH.format(name)


def test_sources_digest_follows_every_module(tmp_path):
    """The digest changes with any module's content, also in a subpackage, and with a new module."""
    digest = _runner().sources_digest
    (tmp_path / "repro" / "sub").mkdir(parents=True)
    (tmp_path / "repro" / "a.py").write_text("x = 1\n")
    (tmp_path / "repro" / "sub" / "b.py").write_text("y = 2\n")
    before = digest(tmp_path)
    (tmp_path / "repro" / "sub" / "b.py").write_text("y = 3\n")
    changed = digest(tmp_path)
    (tmp_path / "repro" / "c.py").write_text("")
    assert len({before, changed, digest(tmp_path)}) == 3


@pytest.mark.slow
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
