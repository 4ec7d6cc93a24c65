"""Figure 4: AUC (centre-bias prior) and shuffled AUC (uniform prior) of DeepGaze I, the earlier models and the centre bias.

    python experiments/fig4_auc.py [--dataset demo|osie|mit1003] [--quick] [--workers N] [--models all]

On the test images of the chosen dataset, each measure computed two ways: as pysaliency computes it
(:mod:`repro.metrics`: every fixation against all pixels, or against all other images' fixations) and as the
MIT Saliency Benchmark's code computed the paper's numbers (:mod:`repro.mit_metrics`: AUC-Judd with jitter;
shuffled AUC against the fixated pixels of 10 other images, 100 random splits, thresholds in steps of 0.1 of the
rescaled map; maps scored as densities). MIT300, the paper's benchmark, has no public fixations, so the paper's
MIT300 values (AUC 84.40 %, shuffled AUC 71.69 %, MIT definitions) are shown as published numbers beside our MIT
family, with the paper's MIT300 values of the best earlier models (its Figure 4 caption), hatched. DeepGaze I:
AlexNet conv5, lambda 0.001, fold models of the leave-one-subject-out cross-validation averaged. The earlier
saliency models (--models, as in fig3_information_gain.py; the same cached jobs): AUC of the postprocessed map
with its fitted centre bias, shuffled AUC without it, as the paper scored DeepGaze I. Each panel in ascending
order. Writes results/fig4_auc.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex
from repro import metrics, mit_metrics
from repro.density import DensityFunction

#: The panels: (key of the rows, axis label), pysaliency's family above, the MIT benchmark's below.
PANELS = (("auc", "AUC, centre-bias prior (%)\npysaliency definition"),
          ("sauc", "shuffled AUC, uniform prior (%)\npysaliency definition"),
          ("mit_auc", "AUC-Judd, centre-bias prior (%)\nMIT benchmark definition"),
          ("mit_sauc", "shuffled AUC, uniform prior (%)\nMIT benchmark definition"))


def model_row(name, scores, source):
    """A row of the table: the four measures of ``scores`` (:func:`repro.evaluation.evaluate_maps`'s keys), in %."""
    return {"model": name, "source": source, "auc": 100 * scores["auc"], "sauc": 100 * scores["sauc"],
            "mit_auc": 100 * scores["mit_auc_judd"], "mit_sauc": 100 * scores["mit_sauc"], "mit_sauc_splits": None}


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0], models=True).parse_args(argv)
    start = time.time()
    names = ex.model_names(args.models)
    setup = ex.load_setup(ex.options_of(args))
    folds = [ex.fit_config(setup, ["conv5"], s, mit=True) for s in setup.folds]
    grid = ex.grid_runner(args)(folds + [ex.saliency_config(setup, name) for name in names])
    earlier = {name: result for name, result in zip(names, grid[len(folds):])}
    scores = ex.aggregate(grid[:len(folds)])
    test = setup.fixations.filter(np.isin(setup.fixations.n, setup.test))
    # the leave-one-image-out centre bias of each test image, computed once for the four measures
    cb = DensityFunction({n: setup.center_bias.log_density(n) for n in test.images}.__getitem__, "centre bias")
    cb_mit = mit_metrics.benchmark_aucs(cb, cb, test, setup.stimuli.sizes)
    this_run = "this run, test images"
    rows = [{"model": "centre bias", "source": this_run, "auc": 100 * metrics.auc(cb, test),
             "sauc": 100 * metrics.shuffled_auc(cb, test, setup.stimuli.sizes), "mit_auc": 100 * cb_mit["auc_judd"],
             "mit_sauc": 100 * cb_mit["sauc"], "mit_sauc_splits": 100 * cb_mit["sauc_splits"]},
            {"model": "DeepGaze I (conv5)", "source": this_run, "auc": 100 * scores["auc_test"],
             "sauc": 100 * scores["sauc_test"], "mit_auc": 100 * scores["mit_auc_test"],
             "mit_sauc": 100 * scores["mit_sauc_test"], "mit_sauc_splits": 100 * scores["mit_sauc_test_splits"]},
            *(model_row(name, result["scores"], this_run) for name, result in earlier.items()),
            *({"auc": None, "sauc": None, "mit_auc": None, "mit_sauc": None, "mit_sauc_splits": None, **row}
              for measure in ("mit_auc", "mit_sauc") for row in ex.published_rows(measure, measure))]

    plt = ex.pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(max(10, 1.1 * len(rows)), 8.5))
    for ax, (key, name) in zip(axes.ravel(), PANELS):
        shown = sorted((row for row in rows if row[key] is not None), key=lambda row: row[key])
        ex.bar_chart(ax, shown, key, fmt="{:.2f}", published_note="MIT300, published")
        ax.axhline(50, color="k", lw=0.8, ls=":")
        ax.set_ylim(min(40, min(r[key] for r in shown) - 5), 100)
        ax.set_ylabel(name)
        ax.legend(fontsize=8, loc="upper left")
    ex.label_figure(figure, setup, "Figure 4: AUC and shuffled AUC on the test images, pysaliency's definitions (top) "
                                   "and the MIT benchmark's (bottom;\nMIT300 has no public fixations: its values are "
                                   "the paper's, computed by the benchmark)")
    figure.tight_layout()
    model, centre = rows[1], rows[0]
    ex.write_results("fig4_auc", figure, rows, setup, args, start=start, grids=[grid],
                     line=f"DeepGaze I AUC {model['auc']:.2f} %, sAUC {model['sauc']:.2f} % (MIT definitions: "
                          f"{model['mit_auc']:.2f} %, {model['mit_sauc']:.2f} %); centre bias AUC {centre['auc']:.2f} %, "
                          f"sAUC {centre['sauc']:.2f} % (MIT: {centre['mit_auc']:.2f} %, {centre['mit_sauc']:.2f} %); "
                          f"paper, MIT300, MIT definitions: 84.40 %, 71.69 %", saliency_models=earlier)
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
