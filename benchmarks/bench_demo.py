"""The first command a new user runs, ``python experiments/fig5_layers.py`` on the demo data, from an empty cache.

    python benchmarks/bench_demo.py [--repeat 2] [--write]

Each run is a fresh process with a fresh ``DEEPGAZE_CACHE`` (so nothing is compiled, extracted or fitted
before it: the state right after install) and the script's own arguments (none: the demo data). It counts
the C modules Theano compiles and the seconds gcc spends on them (by timing Theano's
``GCC_compiler.compile_str``), then runs the script a second time with only the compiled modules kept
(``theano/`` of the same cache), which is what every later process of the user pays. Peer in the same run:
the same with ``THEANO_FLAGS=gcc.cxxflags=`` (Theano's own ``-g``, without the project's ``-g0``,
:mod:`repro.backend`). ``--write`` stores the table in ``benchmarks/results/demo.md``.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from markdown_table import report  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "experiments" / "fig5_layers.py"

#: Run in the child: time every gcc call of Theano, run the script as ``__main__``, write the counts.
CHILD = """
import json, runpy, sys, time
from repro.backend import theano
compiler = theano.gof.cmodule.GCC_compiler
compile_str, calls = compiler.compile_str, []
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return compile_str(*args, **kwargs)
    finally:
        calls.append(time.perf_counter() - start)
compiler.compile_str = staticmethod(timed)
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
with open(OUT, "w") as f:
    json.dump({"modules": len(calls), "gcc_seconds": sum(calls)}, f)
"""


def run_once(cache, cxxflags):
    """Run the demo in a child process with ``cache``; return wall seconds, modules compiled, gcc seconds."""
    out = Path(cache) / "compile.json"
    env = {**os.environ, "DEEPGAZE_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("DEEPGAZE_DATA", None)                          # the demo data, whatever the shell has
    if cxxflags is not None:
        env["THEANO_FLAGS"] = f"gcc.cxxflags={cxxflags}"
    else:
        env.pop("THEANO_FLAGS", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"OUT = {str(out)!r}\n" + CHILD, str(SCRIPT)], env=env, check=True,
                   cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    counts = json.loads(out.read_text())
    out.unlink()
    return wall, counts["modules"], counts["gcc_seconds"]


def measure(cxxflags):
    """Fresh cache, then the same compiled modules alone: ``(fresh wall, modules, gcc s, warm wall)``."""
    with tempfile.TemporaryDirectory() as cache:
        fresh, modules, gcc = run_once(cache, cxxflags)
        for entry in Path(cache).iterdir():                 # keep the compiled modules only
            if entry.name != "theano":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        warm, _, _ = run_once(cache, cxxflags)
    return fresh, modules, gcc, warm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each configuration (alternating)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    configs = [("project defaults (-g0)", None), ("Theano's own -g (gcc.cxxflags=)", "")]
    found = {name: [] for name, _ in configs}
    for _ in range(args.repeat):
        for name, flags in configs:
            found[name].append(measure(flags))
            print(name, *(f"{v:.1f}" for v in found[name][-1]), flush=True)
    rows = []
    for name, runs in found.items():
        fresh, modules, gcc, warm = (np.array(column) for column in zip(*runs))
        rows.append([name, " / ".join(f"{v:.0f}" for v in fresh), " / ".join(f"{v:.0f}" for v in modules),
                     " / ".join(f"{v:.0f}" for v in gcc), " / ".join(f"{v:.0f}" for v in warm)])
    g0, g = (np.median([run[2] for run in found[name]]) for name, _ in configs)
    load = os.getloadavg()[0]
    intro = (f"`python experiments/fig5_layers.py` (the demo data, 17 layer subsets x 6 folds) in a fresh process "
             f"with an empty cache, as right after install; then again with only the compiled Theano modules "
             f"kept. Seconds; one value per run, {args.repeat} runs of each configuration, alternating. gcc's "
             f"time with -g0 is {g0 / g:.2f} of its time with -g (medians). {os.cpu_count()} cores; load average "
             f"{load:.2f} at the end; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.")
    report("The demo from install", intro,
           ["Theano C flags", "wall, empty cache", "C modules compiled", "gcc seconds", "wall, modules compiled"],
           rows, "demo", args.write)


if __name__ == "__main__":
    main()
