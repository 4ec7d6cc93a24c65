"""DeepGaze I (AlexNet conv5) trained and evaluated on OSIE: the experiments' 15-fold grid, as a table.

    OPENBLAS_NUM_THREADS=1 python benchmarks/osie_deepgaze.py [--data DIR] [--workers 2] [--write]

The fits are those of ``experiments/fig4_auc.py --dataset osie`` (``repro.experiments.fit_config``,
cached by configuration, so either command reuses the other's fits): trained on the training half
of OSIE (350 images), first fixation dropped, leave-one-subject-out over the 15 subjects, lambda
0.001. Reported, as in the paper's Section 2: information gain over the leave-one-image-out centre
bias (bit/fix) and explained information (% of the gold standard's gain) on the test images, for the
test subjects and for the training subjects on the training images; AUC with the centre bias as
prior and shuffled AUC with a uniform prior, fold means; the centre bias and the gold standard; the
wall time of the grid and of its folds.

``--write`` stores the table in ``benchmarks/results/osie_deepgaze.md`` (earlier tables of that file,
from its "## Superseded" heading on, are kept) and the numbers in ``osie_deepgaze.json``.
"""
import argparse
import json
import os
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

from repro import experiments as ex
from repro import metrics

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--cache", help="cache of grid results (default: <cache>/experiments)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    setup = ex.load_setup(ex.options_of(Namespace(dataset="osie", data_dir=args.data, weights=None, quick=False,
                                                  seed=0)))
    results = ex.run_grid([ex.fit_config(setup, ["conv5"], s) for s in setup.folds], args.cache, workers=args.workers)
    wall = time.perf_counter() - start
    scores = ex.aggregate(results)
    fx = setup.fixations
    test = fx.filter(np.isin(fx.n, setup.test))
    cb = {n: setup.center_bias.log_density(n) for n in test.images}
    on_test = np.isin(fx.n, setup.test)
    gold_test = metrics.information_gain(setup.gold_ll[on_test], setup.cb_ll[on_test])
    numbers = {**scores, "centerbias_auc": metrics.auc(cb.__getitem__, test),
               "centerbias_sauc": metrics.shuffled_auc(cb.__getitem__, test, setup.stimuli.sizes),
               "gold_ig_test_images": gold_test, "folds": len(results), "grid_seconds": wall,
               "fold_seconds": [r["seconds"] for r in results], "sigma": [r["sigma"] for r in results],
               "alpha": [r["alpha"] for r in results]}
    rows = [f"| DeepGaze I, test images | {scores['ig_test_images']:.3f} | {100 * scores['explained_test_images']:.1f} % "
            f"| {100 * scores['auc_test']:.2f} % | {100 * scores['sauc_test']:.2f} % |",
            f"| DeepGaze I, training images, test subjects | {scores['ig_test_subjects']:.3f} | "
            f"{100 * scores['explained_test_subjects']:.1f} % |  |  |",
            f"| DeepGaze I, training images, training subjects | {scores['ig_train_subjects']:.3f} | "
            f"{100 * scores['explained_train_subjects']:.1f} % |  | {100 * scores['sauc_train']:.2f} % (training images) |",
            f"| centre bias (baseline) | 0 | 0 % | {100 * numbers['centerbias_auc']:.2f} % | "
            f"{100 * numbers['centerbias_sauc']:.2f} % |",
            f"| gold standard, test images | {gold_test:.3f} | 100 % |  |  |"]
    fold_seconds = numbers["fold_seconds"]
    text = "\n".join([
        "# DeepGaze I on OSIE", "",
        f"## Current: {len(results)} leave-one-subject-out folds, readout on AlexNet's conv1 grid", "",
        f"`OPENBLAS_NUM_THREADS=1 DEEPGAZE_DATA=../shared/data python benchmarks/osie_deepgaze.py --workers "
        f"{args.workers} --write` (the fits of `experiments/fig4_auc.py --dataset osie`, which ran them in "
        f"{args.workers or 1} process(es)): folds {min(fold_seconds):.0f}-{max(fold_seconds):.0f} s each as measured "
        f"when they ran, {sum(fold_seconds):.0f} s in all (the first fold of a process includes its preparation and "
        f"compilation); this script took {wall:.0f} s, load average {os.getloadavg()[0]:.2f} at its end. AlexNet conv5 (8-bit conv2-5 weights), maps at their receptive-field centres, readout on the grid of "
        f"conv1 (76 x 101 cells), train/test halves of 350 images, first fixation dropped, "
        f"{ex.FULL['passes']} SFO passes over {ex.FULL['batches']} image groups, lambda 0.001. IG over the "
        f"leave-one-image-out centre bias; AUC with the centre-bias prior, shuffled AUC with a uniform prior. Fold "
        f"models: sigma {min(numbers['sigma']):.2f}-{max(numbers['sigma']):.2f} grid cells, alpha "
        f"{min(numbers['alpha']):.2f}-{max(numbers['alpha']):.2f}.", "",
        "| model | IG (bit/fix) | explained information | AUC | shuffled AUC |", "|---|---|---|---|---|", *rows, ""])
    print(text)
    if args.write:
        target = RESULTS / "osie_deepgaze.md"
        old = target.read_text(encoding="utf-8") if target.is_file() else ""
        kept = old[old.index("## Superseded"):] if "## Superseded" in old else ""
        target.write_text(text + ("\n" + kept if kept else ""), encoding="utf-8")
        (RESULTS / "osie_deepgaze.json").write_text(json.dumps(numbers, indent=1, default=float))
        print(f"wrote {target}")
    return numbers


if __name__ == "__main__":
    main()
