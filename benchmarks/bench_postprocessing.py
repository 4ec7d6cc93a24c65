"""One fit of the postprocessing of saliency maps (repro.postprocessing) on OSIE's 350 training images, and
pysaliency's fit of the same maps as the peer: its speed, and how well the two agree.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_postprocessing.py [--data DIR] [--repeat 3] [--peer-images 20]
                                                                    [--peer-iterations 10] [--no-agreement] [--write]

The maps are each OSIE image's grey-level contrast (the standard deviation of the grey image in a 17 x 17 window,
as README's example writes them), read onto the cells once; the time of a fit is from the cells to the fitted
postprocessing (``fit_postprocessing``'s own ``seconds``), ``--repeat`` times. The peer, in the same run and with the
same threads (torch's set to OPENBLAS_NUM_THREADS, else 1): pysaliency 0.2.22's ``optimize_for_information_gain``
(``tests/pysaliency_reference.py``; its default trust-constr, at pixel resolution) for ``--peer-iterations``
iterations on the first ``--peer-images`` training images, against ours on the same images: seconds per iteration.
Needs the ``interop`` extra (pysaliency, torch). ``--write`` stores the tables in
``benchmarks/results/postprocessing.md``.

**Agreement** (some 15 minutes, most of it pysaliency's): for each case of :data:`AGREEMENT`, both fits on the first
training images of the split, and the information gain over a uniform model of the held-out test images' fixations
(bit/fix). Ours fits the full-resolution maps (on its cells of 8 px); pysaliency fits the same maps block-averaged
4 x 4 (fixations divided by 4): at full resolution one of its iterations on 100 images takes some 50 s here, and a
fit hundreds of iterations. The maps are the contrast map and a centred Gaussian blob (sigma 20 % of the width, the
same for every image); pysaliency's default trust-constr steps outside its centre bias's bounds on the blob and fails
(``tests/pysaliency_reference.py``), so the blob is fitted with its SLSQP.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from repro import experiments as ex
from repro import metrics
from repro import postprocessing as pp

from markdown_table import report, table  # noqa: E402  (beside this script)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def contrast(image):
    """The README's example map: local standard deviation of the grey image, 17 x 17 pixels."""
    grey = image.mean(axis=2)
    mean, square = uniform_filter(grey, 17), uniform_filter(grey ** 2, 17)
    return np.sqrt(np.maximum(square - mean ** 2, 0))


#: (map, training images, test images, pysaliency's method, its iterations)
AGREEMENT = [("contrast", 20, 20, "trust-constr", 100), ("contrast", 100, 350, "trust-constr", 100),
             ("contrast", 350, 350, "trust-constr", 50), ("blob", 20, 20, "SLSQP", 100),
             ("blob", 100, 350, "SLSQP", 100)]


def blob(shape):
    """A centred isotropic Gaussian, sigma 20 % of the width."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    return np.exp(-((cols - shape[1] / 2) ** 2 + (rows - shape[0] / 2) ** 2) / (2 * (0.2 * shape[1]) ** 2))


def block_mean(saliency_map, factor=4):
    height, width = (saliency_map.shape[0] // factor) * factor, (saliency_map.shape[1] // factor) * factor
    return saliency_map[:height, :width].reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))


def agreement(setup, fit_and_score):
    """Rows of the agreement table (see the module docstring)."""
    fx, rows = setup.fixations, []
    for kind, n_train, n_test, method, iterations in AGREEMENT:
        train, test = setup.train[:n_train], setup.test[:n_test]
        maps = {int(n): contrast(setup.stimuli[int(n)]) if kind == "contrast" else blob(setup.stimuli.sizes[int(n)])
                for n in np.concatenate([train, test])}
        on_test = np.isin(fx.n, test)
        uniform = np.log(setup.stimuli.sizes[fx.n[on_test]].prod(axis=1))
        ours = pp.fit_postprocessing(maps, fx, train)
        ll = metrics.log_likelihoods(ours.density(maps), fx.filter(on_test))
        ours_ig = float(np.mean(ll + uniform) / np.log(2))
        small = {n: block_mean(m) for n, m in maps.items()}
        peer = fit_and_score(small, fx.x / 4, fx.y / 4, fx.n, train, test, maxiter=iterations, method=method)
        peer_ig = float(np.mean(peer["ll"] + np.log(setup.stimuli.sizes[fx.n[on_test]].prod(axis=1) / 16)) / np.log(2))
        rows.append([kind, f"{n_train} / {n_test}", f"{ours_ig:.4f}", f"{peer_ig:.4f}", f"{ours_ig - peer_ig:+.4f}",
                     f"{ours.sigma * ours.grid[1]:.1f} / {4 * peer['blur_radius']:.1f}",
                     f"{ours.aspect:.3f} / {peer['alpha']:.3f}",
                     f"{ours.info['iterations']}, {ours.info['seconds']:.1f} s / {peer['nit']} ({method}), "
                     f"{peer['seconds']:.0f} s"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-images", type=int, default=20)
    parser.add_argument("--peer-iterations", type=int, default=10)
    parser.add_argument("--no-agreement", action="store_true", help="leave out the agreement table (15 min)")
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
    intro = (f"{ex.machine()}, {threads} thread(s) "
             f"(OPENBLAS_NUM_THREADS; torch.set_num_threads for the peer); load average {min(loads):.1f} to "
             f"{max(loads):.1f} during the run. OSIE's 350 training images (800 x 600 px), all 15 subjects; maps: grey-level "
             f"contrast (README), read onto the cells in {reading:.0f} s (not part of a fit). A fit: from the cells to "
             f"the fitted postprocessing (20 nonlinearity and 12 centre-bias support points, blur, aspect; tolerance "
             f"{1e-7:g}). Log-likelihood: mean over the fitting fixations, nats. Peer in the same run: pysaliency's "
             f"fit of the same maps at pixel resolution (torch, float32) on the first {len(few)} training images; per "
             f"evaluation of the objective and its gradient, ours is {ratio:.0f} times as fast on the same images.")
    header = ["fit", "images", "fixations", "seconds", "iterations (evaluations)",
              "seconds per evaluation (peer: per iteration)", "log-likelihood"]
    if not args.no_agreement:
        agreeing = agreement(setup, fit_and_score)
        intro += ("\n\n" + table(header, rows) + "\n\n## Agreement with pysaliency\n\nInformation gain over a uniform model "
                  "on the held-out test images (bit/fix), ours on full-resolution maps, pysaliency's on the same maps "
                  "block-averaged 4 x 4 (see the script's docstring); blur in full-resolution pixels and the centre "
                  f"bias's aspect, ours / pysaliency's. Load average at the end {os.getloadavg()[0]:.1f}.")
        header = ["map", "training / test images", "ours", "pysaliency", "difference", "blur (px)", "aspect",
                  "iterations, seconds"]
        rows = agreeing
    report("The postprocessing of saliency maps: one fit on OSIE", intro, header, rows, "postprocessing", args.write)


if __name__ == "__main__":
    main()
