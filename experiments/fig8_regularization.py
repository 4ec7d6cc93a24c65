"""Figure 8: training and test performance of DeepGaze I (conv5) over a grid of the sparsity weight lambda.

    python experiments/fig8_regularization.py [--dataset demo|osie|mit1003] [--quick] [--workers N]

For each lambda of ``||w||_1 / ||w||_2`` (0, no penalty, drawn at the left end of the axis): explained
information on the training images (training and test subjects) and shuffled AUC (uniform prior) on training and test images, leave-one-subject-out
cross-validated as in Figure 5. Writes results/fig8_regularization.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex

LAMBDAS = (0.0, 1e-6, 1e-5, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
#: Where lambda = 0 is drawn on the logarithmic axis (labelled "0").
ZERO_AT = 1e-7


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0]).parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    lambdas = (0.0, 0.001, 0.1) if args.quick else LAMBDAS
    configs = [ex.fit_config(setup, ["conv5"], s, regularization=lam) for lam in lambdas for s in setup.folds]
    results = ex.grid_runner(args)(configs)
    n = len(setup.folds)
    rows = [{"lambda": lam, **ex.aggregate(results[i * n:(i + 1) * n]),
             "nonzero_weights": float(np.mean([np.sum(np.abs(r["w"]) > 1e-3 * np.max(np.abs(r["w"])))
                                               for r in results[i * n:(i + 1) * n]]))}
            for i, lam in enumerate(lambdas)]

    plt = ex.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    xs = [lam or ZERO_AT for lam in lambdas]
    for key, name, marker in (("explained_train_subjects", "training subjects", "o"),
                              ("explained_test_subjects", "test subjects", "s")):
        axes[0].semilogx(xs, [100 * r[key] for r in rows], marker=marker, label=name)
    for key, name, marker in (("sauc_train", "training images", "o"), ("sauc_test", "test images", "s")):
        axes[1].semilogx(xs, [100 * r[key] for r in rows], marker=marker, label=name)
    final = rows[lambdas.index(0.001)] if 0.001 in lambdas else None
    axes[0].set_ylabel("explained information, training images (%)")
    axes[1].set_ylabel("shuffled AUC, uniform prior (%)")
    if final:                                           # the paper's dotted lines: its final model
        axes[0].axhline(100 * final["explained_test_subjects"], color="k", ls=":", label="lambda 0.001, test subjects")
        axes[1].axhline(100 * final["sauc_test"], color="k", ls=":", label="lambda 0.001, test images")
    for ax in axes:
        if 0.0 in lambdas:
            ticks = [ZERO_AT] + [10.0 ** k for k in range(-6, 0)]
            ax.set_xticks(ticks, ["0"] + [f"$10^{{{k}}}$" for k in range(-6, 0)])
            ax.minorticks_off()
        ax.set_xlabel("regularisation lambda (weight of ||w||1 / ||w||2, unitless)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ex.label_figure(figure, setup, f"Figure 8: DeepGaze I (conv5) over lambda ({n} leave-one-subject-out folds)")
    figure.tight_layout()
    best = max(rows, key=lambda r: r["sauc_test"])
    ex.write_results("fig8_regularization", figure, rows, setup, args, start=start, grids=[results],
                     line=f"{len(lambdas)} lambdas x {n} folds; best test sAUC {100 * best['sauc_test']:.2f} % "
                          f"at lambda {best['lambda']}")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
