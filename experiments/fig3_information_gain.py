"""Figure 3: explained information of DeepGaze I beside the centre bias and the gold standard.

    python experiments/fig3_information_gain.py [--dataset demo|osie|mit1003] [--quick] [--workers N]

DeepGaze I (AlexNet conv5, lambda 0.001) with leave-one-subject-out cross-validation on the training
images, scored on the test images: information gain over the leave-one-image-out centre bias (bit/fix)
and explained information (% of the gold standard's gain). The paper's published MIT1003 values
(eDN 34 %, DeepGaze I 56 %) are drawn as hatched bars, marked as published, not recomputed.
Writes results/fig3_information_gain.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import experiments as ex
from repro import metrics


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0]).parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    scores = ex.aggregate(ex.grid_runner(args)([ex.fit_config(setup, ["conv5"], s) for s in setup.folds]))
    on_test = np.isin(setup.fixations.n, setup.test)
    gold_ig = metrics.information_gain(setup.gold_ll[on_test], setup.cb_ll[on_test])
    rows = [{"model": "centre bias", "source": "this run", "ig_bits": 0.0, "explained_percent": 0.0},
            {"model": "DeepGaze I (conv5)", "source": "this run", "ig_bits": scores["ig_test_images"],
             "explained_percent": 100 * scores["explained_test_images"]},
            {"model": "gold standard", "source": "this run", "ig_bits": gold_ig, "explained_percent": 100.0},
            {"model": "eDN", "source": "published (paper, MIT1003)", "ig_bits": None,
             "explained_percent": 100 * ex.PAPER["explained_eDN"]},
            {"model": "DeepGaze I", "source": "published (paper, MIT1003)", "ig_bits": None,
             "explained_percent": 100 * ex.PAPER["explained_DeepGazeI"]}]

    plt = ex.pyplot()
    figure, ax = plt.subplots(figsize=(8, 4.8))
    for i, row in enumerate(rows):
        published = row["source"].startswith("published")
        ax.bar(i, row["explained_percent"], color="lightgrey" if published else "C0", hatch="//" if published else None,
               edgecolor="k", label="published value (paper, MIT1003)" if published and i == 3 else
               ("this run, test images" if i == 0 else None))
        ax.text(i, row["explained_percent"] + 1, f"{row['explained_percent']:.1f} %", ha="center", fontsize=9)
    ax.set_xticks(range(len(rows)), [r["model"] + ("\n(published)" if r["source"].startswith("pub") else "")
                                     for r in rows], fontsize=9)
    ax.set_ylabel("explained information (% of gold standard's gain\nover the centre bias)")
    ax.set_ylim(min(0, min(r["explained_percent"] for r in rows)) - 5, 115)
    ax.legend(fontsize=8, loc="upper left")
    ex.label_figure(figure, setup, f"Figure 3: explained information on the test images "
                                   f"(gold standard: {gold_ig:.3f} bit/fix over the centre bias)")
    figure.tight_layout()
    png = ex.write_results("fig3_information_gain", figure, rows,
                           {"options": setup.options, "label": setup.label, "network": setup.network_note,
                            "folds": setup.folds, "scores": scores}, args.out)
    print(f"fig3_information_gain [{args.dataset}{' quick' if args.quick else ''}]: DeepGaze I (conv5) "
          f"{scores['ig_test_images']:.3f} bit/fix = {100 * scores['explained_test_images']:.1f} % explained "
          f"(paper: 56 % on MIT1003); {time.time() - start:.0f} s -> {png}")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
