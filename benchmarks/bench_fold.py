"""One fold fit of the experiments (repro.experiments.fit_and_score) on OSIE: its time and what precedes it.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fold.py [--data DIR] [--layers conv5] [--layers ...]
                                                           [--folds 2] [--write]

For each layer subset (default: conv5 alone and all 15 AlexNet layers), the one-time work is timed
separately from the folds: the dataset (centre bias and gold standard fits, once per process), the
feature extraction of the 700 images (once per machine, then cached), the feature scales on the 350
training images (once per layer and image set, then cached on disk), the Theano compilation (once
per process), the per-process preparation (features read into memory, centre bias in cells), then
``--folds`` leave-one-subject-out folds: SFO (20 passes, 10 subfunctions) and the scoring of all
700 images (log-likelihoods, AUC, shuffled AUC). As a peer measured in the same run, the speed of
a fixed float32 matrix product (GFLOP/s, best of 5) before and after says how fast the machine was;
the load average is stated too. ``--write`` stores the table in ``benchmarks/results/fold.md``.
"""
import argparse
import os
import resource
import time
from argparse import Namespace

import numpy as np

from repro import experiments as ex
from repro import model as readout
from repro.network import ALEXNET_LAYERS

from markdown_table import report  # noqa: E402  (beside this script)
from timing import best_time  # noqa: E402


def gemm_gflops():
    """GFLOP/s of a 1024 x 1024 float32 matrix product (numpy), best of 5."""
    a, b = np.random.RandomState(0).rand(2, 1024, 1024).astype(np.float32)
    return 2 * 1024 ** 3 / best_time(lambda: a @ b, 5)[0] / 1e9


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--layers", nargs="+", action="append", help="a layer subset (repeatable)")
    parser.add_argument("--folds", type=int, default=2, help="folds timed per subset")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    subsets = args.layers or [["conv5"], list(ALEXNET_LAYERS)]
    before = gemm_gflops()

    options = ex.options_of(Namespace(dataset="osie", data_dir=args.data, weights=None, quick=False, seed=0))
    setup, setup_seconds = timed(lambda: ex.load_setup(options))
    rows = []
    for layers in subsets:
        _, extraction = timed(lambda: setup.store.extract(setup.stimuli, layers, progress=False))
        train_images = [setup.stimuli[int(n)] for n in setup.train]
        _, scales = timed(lambda: setup.store.feature_scales(train_images, layers, progress=False))
        _, compiling = timed(lambda: (readout._compiled_loglik_and_grad(len(layers)),
                                      readout._compiled_saliency(len(layers))))
        ex.release_prepared()
        data, preparing = timed(lambda: ex.prepared(setup, "alexnet", layers))
        folds = []
        for subject in setup.folds[:args.folds]:
            result, _ = ex.fit_and_score(ex.fit_config(setup, layers, subject))
            folds.append(result)
        fits = [r["seconds_fit"] + r["seconds_score"] for r in folds]
        held = "float16" if data.train[0].source[0].dtype == np.float16 else "float32"
        rows.append([" ".join(layers) if len(layers) < 4 else f"all {len(layers)} layers", str(len(data.scales)),
                     f"{extraction:.0f}", f"{scales:.1f}", f"{compiling:.1f}",
                     f"{preparing:.1f} ({held})",
                     ", ".join(f"{r['seconds_fit']:.1f} + {r['seconds_score']:.1f}" for r in folds),
                     f"{min(fits):.1f}", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.1f}"])
        ex.release_prepared()
    after = gemm_gflops()
    intro = (f"OSIE (700 images of 800 x 600 px, 350 for training), AlexNet in full padding, lambda 0.001, "
             f"{ex.FULL['passes']} SFO passes over {ex.FULL['batches']} subfunctions, one process, "
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}. Seconds. One-time work (a column that takes only seconds read its result from the cache): "
             f"the dataset (centre bias, gold standard) {setup_seconds:.0f} s; per subset the columns before the "
             f"folds. A fold: SFO + scoring of all 700 images. Peer in the same run: a 1024 x 1024 float32 matrix "
             f"product ran at {before:.0f} GFLOP/s before and {after:.0f} GFLOP/s after; load average "
             f"{os.getloadavg()[0]:.2f} at the end. Peak memory is the process's resident maximum so far.")
    report("One fold fit of DeepGaze I on OSIE", intro,
           ["layers", "features", "feature extraction", "feature scales", "Theano compilation",
            "preparation (features held as)", "folds: fit + scoring", "best fold", "peak memory (GB)"],
           rows, "fold", args.write)


if __name__ == "__main__":
    main()
