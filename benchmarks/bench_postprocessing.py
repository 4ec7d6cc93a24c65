"""One fit of the postprocessing of saliency maps (repro.postprocessing) on OSIE's 350 training images, and
pysaliency's fit of the same maps as the peer.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_postprocessing.py [--data DIR] [--repeat 3] [--peer-images 20]
                                                                    [--peer-iterations 10] [--write]

The maps are each OSIE image's grey-level contrast (the standard deviation of the grey image in a 17 x 17 window,
as README's example writes them), read onto the cells once; the time of a fit is from the cells to the fitted
postprocessing (``fit_postprocessing``'s own ``seconds``), ``--repeat`` times. The peer, in the same run and with the
same threads (torch's set to OPENBLAS_NUM_THREADS, else 1): pysaliency 0.2.22's ``optimize_for_information_gain``
(``tests/pysaliency_reference.py``; its default trust-constr, at pixel resolution) for ``--peer-iterations``
iterations on the first ``--peer-images`` training images, against ours on the same images: seconds per iteration.
Needs the ``interop`` extra (pysaliency, torch). ``--write`` stores the table in
``benchmarks/results/postprocessing.md``.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from repro import experiments as ex
from repro import postprocessing as pp

from markdown_table import report  # noqa: E402  (beside this script)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def contrast(image):
    """The README's example map: local standard deviation of the grey image, 17 x 17 pixels."""
    grey = image.mean(axis=2)
    mean, square = uniform_filter(grey, 17), uniform_filter(grey ** 2, 17)
    return np.sqrt(np.maximum(square - mean ** 2, 0))


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-images", type=int, default=20)
    parser.add_argument("--peer-iterations", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))

    setup = ex.load_setup({"dataset": "osie", "data_dir": args.data or os.environ.get("DEEPGAZE_DATA"),
                           "weights": None, "quick": False, "seed": 0})
    start = time.perf_counter()
    maps = {int(n): contrast(setup.stimuli[int(n)]) for n in setup.train}
    cells = {n: pp.map_cells(m) for n, m in maps.items()}
    reading = time.perf_counter() - start
    loads = [os.getloadavg()[0]]
    fits = []
    for _ in range(args.repeat):
        fits.append(pp.fit_postprocessing(cells, setup.fixations, setup.train).info)
        loads.append(os.getloadavg()[0])
    rows = [["ours (cells of 8 px, L-BFGS-B)", f"{len(setup.train)}", f"{fit['fixations']}",
             f"{fit['seconds']:.1f}", f"{fit['iterations']} ({fit['evaluations']})",
             f"{fit['seconds'] / fit['evaluations']:.3f}", f"{fit['log_likelihood']:.5f}"] for fit in fits]

    import torch
    from pysaliency_reference import fit_and_score

    torch.set_num_threads(threads)
    few = setup.train[:args.peer_images]
    fx = setup.fixations
    peer = fit_and_score(maps, fx.x, fx.y, fx.n, few, few[:1], maxiter=args.peer_iterations)
    ours = pp.fit_postprocessing(cells, fx, few, maxiter=args.peer_iterations).info
    on_few = int(np.isin(fx.n, few).sum())
    rows.append([f"pysaliency 0.2.22 (pixels, trust-constr), {args.peer_iterations} iterations", f"{len(few)}",
                 f"{on_few}", f"{peer['seconds']:.1f}", f"{peer['nit']}", f"{peer['seconds'] / max(peer['nit'], 1):.3f}",
                 "-"])
    rows.append([f"ours, {args.peer_iterations} iterations", f"{len(few)}", f"{on_few}", f"{ours['seconds']:.2f}",
                 f"{ours['iterations']} ({ours['evaluations']})", f"{ours['seconds'] / ours['evaluations']:.4f}", "-"])
    loads.append(os.getloadavg()[0])
    ratio = (peer["seconds"] / max(peer["nit"], 1)) / (ours["seconds"] / ours["evaluations"])
    intro = (f"{time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores, {threads} thread(s) "
             f"(OPENBLAS_NUM_THREADS; torch.set_num_threads for the peer); load average {min(loads):.1f} to "
             f"{max(loads):.1f} during the run. OSIE's 350 training images (800 x 600 px), all 15 subjects; maps: grey-level "
             f"contrast (README), read onto the cells in {reading:.0f} s (not part of a fit). A fit: from the cells to "
             f"the fitted postprocessing (20 nonlinearity and 12 centre-bias support points, blur, aspect; tolerance "
             f"{1e-7:g}). Log-likelihood: mean over the fitting fixations, nats. Peer in the same run: pysaliency's "
             f"fit of the same maps at pixel resolution (torch, float32) on the first {len(few)} training images; per "
             f"evaluation of the objective and its gradient, ours is {ratio:.0f} times as fast on the same images.")
    report("The postprocessing of saliency maps: one fit on OSIE", intro,
           ["fit", "images", "fixations", "seconds", "iterations (evaluations)", "seconds per evaluation (peer: per iteration)",
            "log-likelihood"], rows, "postprocessing", args.write)


if __name__ == "__main__":
    main()
