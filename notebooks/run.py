"""Execute the notebooks and write them back with their outputs: the copies committed for readers.

    python notebooks/run.py [--data DIR] [NAME ...]

Each notebook runs top to bottom in its default configuration (its ``parameters`` cell; ``DATA`` set to
``--data``, default ``DEEPGAZE_DATA`` or ``../shared/data``), figures inline at 72 dpi so that each file stays
well under 2 MB; what a cell writes to stderr (progress bars, library warnings) is left out. The notebook's
metadata records what it ran with (``deepgaze1_repro``: the SHA-1 of the ``repro/`` sources, the date, the
seconds it took); ``tests/test_notebooks.py`` fails when those sources have changed since, naming this
command. Each notebook is written to a temporary file and renamed, so an
error leaves the committed copy as it was.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from repro.paths import sources_digest

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
#: Inline figures, small enough for committed notebooks.
FIGURES = "%matplotlib inline\n%config InlineBackend.figure_formats = ['png']\n" \
          "import matplotlib\nmatplotlib.rcParams['figure.dpi'] = 72"
#: Where a notebook records what it ran with.
KEY = "deepgaze1_repro"


def execute(path, data, timeout=1800):
    """Run the notebook at ``path`` with ``DATA = data`` and return it, outputs and record included.

    The injected cells (figure settings, ``DATA``) are removed again after the run, so the committed notebook
    holds the reader's cells only.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{path}: needs exactly one cell tagged 'parameters', has {len(tagged)}")
    injected = nbformat.v4.new_code_cell(f"DATA = {str(data)!r}\n{FIGURES}")
    injected.id = "injected-parameters"
    notebook.cells.insert(tagged[0] + 1, injected)
    start = time.time()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") != "injected-parameters"]
    for cell in notebook.cells:                   # progress bars and library warnings are not for readers
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        cell.execution_count = number                         # in order, without the injected cell
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = number
    notebook.metadata[KEY] = {"sources_sha1": sources_digest(), "date": time.strftime("%Y-%m-%d"),
                              "seconds": round(time.time() - start, 1), "command": "python notebooks/run.py"}
    return notebook


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebooks to run (default: all of notebooks/*.ipynb)")
    p.add_argument("--data", default=os.environ.get("DEEPGAZE_DATA") or ROOT.parent / "shared" / "data",
                   help="data directory (default: DEEPGAZE_DATA or ../shared/data)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import nbformat
    from repro.paths import atomic_path

    paths = [NOTEBOOKS / (n if n.endswith(".ipynb") else f"{n}.ipynb") for n in args.names] or \
        sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: running ...", flush=True)
        # relative to the notebook, so no output names this machine's paths
        notebook = execute(path, os.path.relpath(Path(args.data).resolve(), path.parent))
        with atomic_path(path) as tmp:
            nbformat.write(notebook, tmp)
        print(f"{path.name}: {notebook.metadata[KEY]['seconds']:.0f} s, {path.stat().st_size / 1e6:.2f} MB", flush=True)


if __name__ == "__main__":
    main()
