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
import importlib.util
import os
import resource
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

from repro import experiments as ex
from repro import model as readout
from repro import training
from repro.features import FeatureStore, feature_scales
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


def figure5_estimate(setup, calibration):
    """What ``experiments/fig5_layers.py --dataset osie`` would take, estimated from this run's folds."""
    if len(calibration) < 2:
        return ""
    spec = importlib.util.spec_from_file_location("fig5", Path(__file__).resolve().parents[1] / "experiments" / "fig5_layers.py")
    fig5 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fig5)
    subsets = {tuple(layers) for entries in fig5.layer_subsets().values() for _, layers in entries} | {("conv5",)}
    sizes = {s: (ex.feature_values(setup, s), len(setup.folds)) for s in subsets}
    minutes = [ex.estimate_seconds(sizes, calibration, workers) / 60 for workers in (1, 2)]
    return (f"Figure 5 on OSIE ({len(subsets)} layer subsets x {len(setup.folds)} folds), estimated from these "
            f"folds as `fig5_layers.py` estimates it: {minutes[0]:.0f} min in one process, {minutes[1]:.0f} min "
            f"with `--workers 2` (two processes that share the memory bandwidth run slower than one alone).")


def compact_versus_float32(setup):
    """Explained information on the test images of the first conv5 fold, fitted from float32 and from compact
    (bfloat16) features: what holding large training sets compactly costs."""
    fx, layers, subject = setup.fixations, ["conv5"], setup.folds[0]
    geometry = setup.store.extractor.geometry(layers)
    scales = setup.store.feature_scales([setup.stimuli[int(n)] for n in setup.train], layers, progress=False)
    on_test = np.isin(fx.n, setup.test)
    order = np.argsort(fx.n[on_test], kind="stable")                  # prepared images list fixations by image
    explained = {}
    for held in (True, "compact"):
        train = training.prepare_images(setup.store, setup.stimuli, fx.filter(fx.subject != subject), layers,
                                        setup.center_bias, images=setup.train, in_memory=held, progress=False)
        test = training.prepare_images(setup.store, setup.stimuli, fx, layers, setup.center_bias,
                                       images=setup.test, in_memory=held, progress=False)
        model, _ = training.train_model(train, layers, geometry, scales=scales, progress=False,
                                        n_batches=ex.FULL["batches"], num_passes=ex.FULL["passes"])
        ll = np.empty(on_test.sum())
        ll[order] = training.log_likelihoods(model, test)
        cb, gold = setup.cb_ll[on_test], setup.gold_ll[on_test]
        explained[held] = (ll - cb).sum() / (gold - cb).sum()
    return f"{100 * explained['compact']:.4f} % vs {100 * explained[True]:.4f} % explained on the test images"


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
    rows, calibration = [], {}
    for layers in subsets:
        with tempfile.TemporaryDirectory() as fresh:          # extraction without the cache, 10 images
            sample = FeatureStore(setup.store.extractor, fresh)
            sample.features(setup.stimuli[0], layers)            # the network's compilation is not timed
            _, per_image = timed(lambda: [sample.features(setup.stimuli[n], layers) for n in range(1, 11)])
        _, extraction = timed(lambda: setup.store.extract(setup.stimuli, layers, progress=False))
        train_images = [setup.stimuli[int(n)] for n in setup.train]
        _, scales = timed(lambda: feature_scales(((image.shape[:2], setup.store.features(image, layers))
                                                  for image in train_images), setup.store.extractor.geometry(layers)))
        _, cached_scales = timed(lambda: setup.store.feature_scales(train_images, layers, progress=False))
        ex.release_prepared()
        data, preparing = timed(lambda: ex.prepared(setup, "alexnet", layers))
        compact = any(image.compact for image in data.train)           # training from bfloat16 maps
        _, compiling = timed(lambda: readout.compile_readout(len(layers), compact=compact))
        folds = []
        for subject in setup.folds[:args.folds]:
            result, _ = ex.fit_and_score(ex.fit_config(setup, layers, subject))
            folds.append(result)
        fits = [r["seconds_fit"] + r["seconds_score"] for r in folds]
        best = folds[int(np.argmin(fits))]
        calibration[ex.feature_values(setup, layers)] = {**best, "seconds_prepare": preparing, "seconds_compile": compiling}
        held = "bfloat16" if compact else "float32"
        rows.append([" ".join(layers) if len(layers) < 4 else f"all {len(layers)} layers", str(len(data.scales)),
                     f"{700 * per_image / 10:.0f} ({extraction:.0f})", f"{scales:.1f} ({cached_scales:.1f})",
                     f"{compiling:.1f}",
                     f"{preparing:.1f} ({held})",
                     ", ".join(f"{r['seconds_fit']:.1f} + {r['seconds_score']:.1f}" for r in folds),
                     f"{min(fits):.1f}", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.1f}"])
        ex.release_prepared()
    compare = compact_versus_float32(setup)
    figure5 = figure5_estimate(setup, calibration)
    after = gemm_gflops()
    intro = (f"OSIE (700 images of 800 x 600 px, 350 for training), AlexNet in full padding, lambda 0.001, "
             f"{ex.FULL['passes']} SFO passes over {ex.FULL['batches']} subfunctions, one process, "
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}. Seconds. One-time work: "
             f"the dataset (centre bias, gold standard) {setup_seconds:.0f} s; per subset the columns before the "
             f"folds: feature extraction of the 700 images without a cache (10 images timed, times 70; in "
             f"parentheses this run's, from the cache where it was filled before), the feature scales computed "
             f"(and read back from their cache, as every later fold does), compilation, preparation. A fold: SFO + scoring of all 700 images. Peer in the same run: a 1024 x 1024 float32 matrix "
             f"product ran at {before:.0f} GFLOP/s before and {after:.0f} GFLOP/s after; load average "
             f"{os.getloadavg()[0]:.2f} at the end. Peak memory is the process's resident maximum so far. "
             f"Training sets beyond {training.COMPACT_ABOVE / 2 ** 30:g} GiB of float32 are held as bfloat16 "
             f"(repro.training.COMPACT_ABOVE), which the readout reads directly (repro.bfloat16); the same conv5 fold "
             f"(subject {setup.folds[0]}) fitted from bfloat16 instead of float32 features: {compare}. "
             f"{figure5}")
    report("One fold fit of DeepGaze I on OSIE", intro,
           ["layers", "features", "feature extraction (this run)", "feature scales (cached)", "Theano compilation",
            "preparation (features held as)", "folds: fit + scoring", "best fold", "peak memory (GB)"],
           rows, "fold", args.write)


if __name__ == "__main__":
    main()
