"""Across datasets: DeepGaze I trained on one dataset, tested on another ("trained on -> tested on").

    python experiments/cross_dataset.py [--train osie mit1003] [--workers N] [--publish]

The conv5 readout (lambda 0.001) of each dataset's leave-one-subject-out folds, trained on that
dataset's training images (as in Figures 3 and 4), is scored on the test half of every dataset and on
all images of the datasets it was not trained on, each with the tested dataset's own centre bias
and gold standard: explained information (% of the gold standard's gain over the centre bias),
information gain (bit/fix), AUC (centre-bias prior) and shuffled AUC (uniform prior), the folds
combined as in Figure 3. The diagonal (a dataset's own test half) repeats Figures 3 and 4.
Writes results/cross_dataset.{png,pdf,csv,json} (``--publish``: experiments/results/across/).
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex
from repro.datasets import DATASET_FOLDERS


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--train", nargs="+", choices=list(DATASET_FOLDERS), default=["osie", "mit1003"],
                   help="datasets trained on (each is also tested on)")
    args = p.parse_args(argv)
    start = time.time()
    setups = {name: ex.load_setup(ex.options_of(_with(args, dataset=name))) for name in args.train}
    configs = {name: [ex.fit_config(s, ["conv5"], k) for k in s.folds] for name, s in setups.items()}
    grids = {name: ex.grid_runner(args)(folds) for name, folds in configs.items()}
    models = {name: [ex.load_model(c, args.cache) for c in folds] for name, folds in configs.items()}
    rows = []
    for tested, setup in setups.items():                 # by tested dataset: its images are prepared once
        parts = {"test half": setup.test, "all images": np.arange(len(setup.stimuli))}
        for trained in setups:
            for part, images in parts.items():
                if part == "all images" and trained == tested:
                    continue                             # its training images: not a test
                scores = ex.transfer_scores(models[trained], setup, images)
                rows.append({"trained_on": trained, "tested_on": tested, "images": f"{part} ({scores['n_images']})",
                             "explained_percent": 100 * scores["explained"], "ig_bits": scores["ig_bits"],
                             "auc_percent": 100 * scores["auc"], "sauc_percent": 100 * scores["sauc"],
                             "n_fixations": scores["n_fixations"]})
        ex.release_prepared()

    plt = ex.pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    labels = [f"{r['trained_on']} ->\n{r['tested_on']}, {r['images']}" for r in rows]
    for ax, key, name in ((axes[0], "explained_percent", "explained information (%)"),
                          (axes[1], "auc_percent", "AUC, centre-bias prior (%)"),
                          (axes[2], "sauc_percent", "shuffled AUC, uniform prior (%)")):
        colours = ["C0" if r["trained_on"] == r["tested_on"] else "C1" for r in rows]
        ax.bar(range(len(rows)), [r[key] for r in rows], color=colours, edgecolor="k")
        for i, r in enumerate(rows):
            ax.annotate(f"{r[key]:.1f}", (i, r[key]), xytext=(0, 2), textcoords="offset points", ha="center",
                        fontsize=8)
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=30, ha="right")
        ax.set_ylabel(name)
        ax.set_ylim(0 if key == "explained_percent" else 50, 100)
        ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch
    axes[0].legend(handles=[Patch(facecolor="C0", edgecolor="k", label="same dataset"),
                            Patch(facecolor="C1", edgecolor="k", label="other dataset")], fontsize=8, loc="upper right")
    first = next(iter(setups.values()))
    ex.label_figure(figure, first, "DeepGaze I (conv5) trained on one dataset, tested on another "
                                   f"({len(first.folds)} fold models each; tested dataset's centre bias and gold standard)")
    figure.tight_layout()
    cross = [r for r in rows if r["trained_on"] != r["tested_on"]]
    ex.write_results("cross_dataset", figure, rows, first, _with(args, dataset="across"), start=start,
                     grids=list(grids.values()),
                     datasets={name: ex.portable_options(s.options) for name, s in setups.items()},
                     labels={name: s.label for name, s in setups.items()},
                     line="; ".join(f"{r['trained_on']} -> {r['tested_on']} {r['images']}: "
                                    f"{r['explained_percent']:.1f} % explained, sAUC {r['sauc_percent']:.2f} %"
                                    for r in cross))
    return rows


def _with(args, **changes):
    """A copy of the parsed options with some changed."""
    return type(args)(**{**vars(args), **changes})


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
