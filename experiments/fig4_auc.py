"""Figure 4: AUC (centre-bias prior) and shuffled AUC (uniform prior) of DeepGaze I and the centre bias.

    python experiments/fig4_auc.py [--dataset demo|osie|mit1003] [--quick] [--workers N]

On the test images of the chosen dataset (MIT300, the paper's benchmark, has no public fixations, so
the paper's MIT300 values, AUC 84.40 % and shuffled AUC 71.69 %, are shown as published numbers).
DeepGaze I: AlexNet conv5, lambda 0.001, fold models of the leave-one-subject-out cross-validation
averaged. Writes results/fig4_auc.{png,pdf,csv,json}.
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
    grid = ex.grid_runner(args)([ex.fit_config(setup, ["conv5"], s) for s in setup.folds])
    scores = ex.aggregate(grid)
    test = setup.fixations.filter(np.isin(setup.fixations.n, setup.test))
    cb = {n: setup.center_bias.log_density(n) for n in test.images}
    rows = [{"model": "centre bias", "source": "this run, test images", "auc": 100 * metrics.auc(cb.__getitem__, test),
             "sauc": 100 * metrics.shuffled_auc(cb.__getitem__, test, setup.stimuli.sizes)},
            {"model": "DeepGaze I (conv5)", "source": "this run, test images", "auc": 100 * scores["auc_test"],
             "sauc": 100 * scores["sauc_test"]},
            {"model": "DeepGaze I", "source": "published (paper, MIT300)", "auc": 100 * ex.PAPER["auc_mit300"],
             "sauc": 100 * ex.PAPER["sauc_mit300"]}]

    plt = ex.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, key, name in ((axes[0], "auc", "AUC, centre-bias prior (%)"), (axes[1], "sauc", "shuffled AUC, uniform prior (%)")):
        ex.bar_chart(ax, rows, key, fmt="{:.2f}", published_note="MIT300, published")
        ax.axhline(50, color="k", lw=0.8, ls=":")
        ax.set_ylim(min(40, min(r[key] for r in rows) - 5), 100)
        ax.set_ylabel(name)
    axes[0].legend(fontsize=8, loc="upper left")
    ex.label_figure(figure, setup, "Figure 4: AUC and shuffled AUC on the test images "
                                   "(MIT300 has no public fixations: its values are the paper's)")
    figure.tight_layout()
    ex.write_results("fig4_auc", figure, rows, setup, args, start=start, grids=[grid],
                     line=f"DeepGaze I AUC {rows[1]['auc']:.2f} %, sAUC {rows[1]['sauc']:.2f} %; centre bias AUC "
                          f"{rows[0]['auc']:.2f} %, sAUC {rows[0]['sauc']:.2f} % (paper, MIT300: 84.40 %, 71.69 %)")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
