"""Figure 3: explained information of DeepGaze I, a GoogLeNet readout and the earlier saliency models, in ascending order.

    python experiments/fig3_information_gain.py [--dataset demo|osie|mit1003] [--quick] [--workers N] [--models all]

DeepGaze I (AlexNet conv5, lambda 0.001) and the same readout of GoogLeNet's inception_4e/output (the
paper's proposed next step: a better network), both with leave-one-subject-out cross-validation on the
training images (same folds), scored on the test images: information gain over the leave-one-image-out
centre bias (bit/fix) and explained information (% of the gold standard's gain). Beside them the earlier
saliency models (repro.saliency_models; --models: all, none or names separated by commas), each postprocessed
as the paper did (nonlinearity, centre bias, blur fitted on the training images) and scored on the same test
images (repro.experiments.comparison). Without GoogLeNet weights (<data>/weights/bvlc_googlenet) its bar is
left out, and the figure and summary say so. The paper's published MIT1003 values (eDN 34 %, DeepGaze I 56 %)
are drawn as hatched bars, marked as published, not recomputed. Writes
results/fig3_information_gain.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex
from repro import metrics

THIS_RUN = "this run, test images"


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0], models=True).parse_args(argv)
    start = time.time()
    names = ex.model_names(args.models)
    setup = ex.load_setup(ex.options_of(args))
    readouts = {"DeepGaze I (AlexNet conv5)": ("alexnet", "conv5")}
    with_googlenet = ex.googlenet_weights(setup.options) is not None
    if with_googlenet:
        readouts[f"GoogLeNet readout ({ex.GOOGLENET_LAYER})"] = ("googlenet", ex.GOOGLENET_LAYER)
        ex.setup_store(setup, "googlenet")          # loads GoogLeNet, its weights note goes to setup.notes
    googlenet_note = setup.notes.get("googlenet", "GoogLeNet readout not run: no GoogLeNet weights "
                                                  "(<data>/weights/bvlc_googlenet)")
    configs = [ex.fit_config(setup, [layer], s, network=network) for network, layer in readouts.values()
               for s in setup.folds]
    results = ex.grid_runner(args)(configs + [ex.saliency_config(setup, name) for name in names])
    n = len(setup.folds)
    scores = {name: ex.aggregate(results[i * n:(i + 1) * n]) for i, name in enumerate(readouts)}
    earlier = {name: result for name, result in zip(names, results[len(configs):])}
    on_test = np.isin(setup.fixations.n, setup.test)
    gold_ig = metrics.information_gain(setup.gold_ll[on_test], setup.cb_ll[on_test])
    rows = [{"model": "centre bias", "source": THIS_RUN, "ig_bits": 0.0, "explained_percent": 0.0},
            *({"model": name, "source": THIS_RUN, "ig_bits": s["ig_test_images"],
               "explained_percent": 100 * s["explained_test_images"]} for name, s in scores.items()),
            *({"model": name, "source": THIS_RUN, "ig_bits": r["scores"]["information_gain"],
               "explained_percent": 100 * r["scores"]["explained_information"]} for name, r in earlier.items()),
            *({**row, "ig_bits": None} for row in ex.published_rows("explained", "explained_percent"))]
    rows = sorted(rows, key=lambda row: row["explained_percent"]) + [
        {"model": "gold standard", "source": THIS_RUN, "ig_bits": gold_ig, "explained_percent": 100.0}]

    plt = ex.pyplot()
    figure, ax = plt.subplots(figsize=(max(9, 0.85 * len(rows)), 4.8))
    ex.bar_chart(ax, rows, "explained_percent", fmt="{:.1f} %")
    ax.set_ylabel("explained information (% of gold standard's gain\nover the centre bias)")
    ax.set_ylim(min(0, min(r["explained_percent"] for r in rows)) - 15, 115)
    ax.axhline(0, color="k", lw=0.8)
    ax.legend(fontsize=8, loc="upper left")
    ex.label_figure(figure, setup, f"Figure 3: explained information on the test images "
                                   f"(gold standard: {gold_ig:.3f} bit/fix over the centre bias)\n{googlenet_note}")
    figure.tight_layout()
    line = "; ".join([f"{row['model']} {row['ig_bits']:.3f} bit/fix = {row['explained_percent']:.1f} %"
                      for row in rows if row["source"] == THIS_RUN and row["model"] not in ("centre bias",
                                                                                           "gold standard")]
                     + ([] if with_googlenet else [googlenet_note]))
    ex.write_results("fig3_information_gain", figure, rows, setup, args, start=start, grids=[results],
                     line=f"explained information on the test images (paper, DeepGaze I on MIT1003: 56 %): {line}",
                     scores=scores, googlenet=googlenet_note, saliency_models=earlier)
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
