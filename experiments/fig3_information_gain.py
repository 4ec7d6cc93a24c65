"""Figure 3: explained information of DeepGaze I and a GoogLeNet readout beside the centre bias and the gold standard.

    python experiments/fig3_information_gain.py [--dataset demo|osie|mit1003] [--quick] [--workers N]

DeepGaze I (AlexNet conv5, lambda 0.001) and the same readout of GoogLeNet's inception_4e/output (the
paper's proposed next step: a better network), both with leave-one-subject-out cross-validation on the
training images (same folds), scored on the test images: information gain over the leave-one-image-out
centre bias (bit/fix) and explained information (% of the gold standard's gain). Without GoogLeNet
weights (<data>/weights/bvlc_googlenet) its bar is left out, and the figure and summary say so. The
paper's published MIT1003 values (eDN 34 %, DeepGaze I 56 %) are drawn as hatched bars, marked as
published, not recomputed. Writes results/fig3_information_gain.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex
from repro import metrics

THIS_RUN, PUBLISHED = "this run, test images", "published (paper, MIT1003)"


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0]).parse_args(argv)
    start = time.time()
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
    results = ex.grid_runner(args)(configs)
    n = len(setup.folds)
    scores = {name: ex.aggregate(results[i * n:(i + 1) * n]) for i, name in enumerate(readouts)}
    on_test = np.isin(setup.fixations.n, setup.test)
    gold_ig = metrics.information_gain(setup.gold_ll[on_test], setup.cb_ll[on_test])
    rows = [{"model": "centre bias", "source": THIS_RUN, "ig_bits": 0.0, "explained_percent": 0.0},
            *({"model": name, "source": THIS_RUN, "ig_bits": s["ig_test_images"],
               "explained_percent": 100 * s["explained_test_images"]} for name, s in scores.items()),
            {"model": "gold standard", "source": THIS_RUN, "ig_bits": gold_ig, "explained_percent": 100.0},
            {"model": "eDN", "source": PUBLISHED, "ig_bits": None, "explained_percent": 100 * ex.PAPER["explained_eDN"]},
            {"model": "DeepGaze I", "source": PUBLISHED, "ig_bits": None,
             "explained_percent": 100 * ex.PAPER["explained_DeepGazeI"]}]

    plt = ex.pyplot()
    figure, ax = plt.subplots(figsize=(9, 4.8))
    ex.bar_chart(ax, rows, "explained_percent", fmt="{:.1f} %")
    ax.set_ylabel("explained information (% of gold standard's gain\nover the centre bias)")
    ax.set_ylim(min(0, min(r["explained_percent"] for r in rows)) - 15, 115)
    ax.axhline(0, color="k", lw=0.8)
    ax.legend(fontsize=8, loc="upper left")
    ex.label_figure(figure, setup, f"Figure 3: explained information on the test images "
                                   f"(gold standard: {gold_ig:.3f} bit/fix over the centre bias)\n{googlenet_note}")
    figure.tight_layout()
    line = "; ".join([f"{name} {s['ig_test_images']:.3f} bit/fix = {100 * s['explained_test_images']:.1f} %"
                      for name, s in scores.items()] + ([] if with_googlenet else [googlenet_note]))
    ex.write_results("fig3_information_gain", figure, rows, setup, args, start=start, grids=[results],
                     line=f"explained information on the test images (paper, DeepGaze I on MIT1003: 56 %): {line}",
                     scores=scores, googlenet=googlenet_note)
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
