"""Figure 1: example images with their fixations and DeepGaze I's log-density, uniform prior and centre bias.

    python experiments/fig1_examples.py [--dataset demo|osie|mit1003] [--quick] [--examples K]

DeepGaze I (AlexNet conv5, lambda 0.001), the model of the first leave-one-subject-out fold, on test
images: each row shows the image with all fixations on it, the model's log-density with a uniform
prior (what shuffled AUC scores), and with the nonparametric centre bias (what the log-likelihood
scores). Writes results/fig1_examples.{png,pdf,csv,json}.
"""
import sys
import time

import numpy as np

from repro import cli
from repro import experiments as ex
from repro import metrics


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=4, help="number of test images shown")
    args = p.parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    config = ex.fit_config(setup, ["conv5"], setup.folds[0])
    grid = ex.grid_runner(args)([config])
    model = ex.load_model(config, args.cache)
    examples = setup.test[:(2 if args.quick else args.examples)]

    plt = ex.pyplot()
    figure, axes = plt.subplots(len(examples), 3, figsize=(12, 3.4 * len(examples)), squeeze=False)
    rows = []
    for ax_row, n in zip(axes, examples):
        image = setup.stimuli[int(n)]
        features = setup.store.features(image, ["conv5"])
        on_image = setup.fixations.for_images([n])
        uniform = model.log_density_from_features(features, np.zeros(image.shape[:2], np.float32))
        prior = model.log_density_from_features(features, setup.center_bias.log_density(int(n)))
        ax_row[0].imshow(image)
        ax_row[0].scatter(on_image.x, on_image.y, s=6, c="yellow", edgecolors="k", linewidths=0.3, label="fixations")
        ax_row[0].set_title(f"image {setup.stimuli.ids[n]} ({image.shape[1]} x {image.shape[0]} px), "
                            f"{len(on_image)} fixations", fontsize=9)
        ax_row[0].legend(fontsize=7, loc="lower right")
        for ax, density, name in ((ax_row[1], uniform, "uniform prior"), (ax_row[2], prior, "centre-bias prior")):
            shown = ax.imshow(density / np.log(2), cmap="magma")
            figure.colorbar(shown, ax=ax, fraction=0.046, label="log2 p (bit per pixel)")
            ll = metrics.log_likelihoods(lambda _: density, on_image)
            ax.set_title(f"DeepGaze I, {name}\n{np.mean(ll) / np.log(2):.2f} bit/fix", fontsize=9)
            rows.append({"image": setup.stimuli.ids[n], "prior": name, "fixations": len(on_image),
                         "mean_log2_likelihood_bits": float(np.mean(ll) / np.log(2)),
                         "uniform_log2_bits": float(-np.log2(image.shape[0] * image.shape[1]))})
        for ax in ax_row:
            ax.set_xlabel("x (px)")
            ax.set_ylabel("y (px)")
    ex.label_figure(figure, setup, "Figure 1: fixations and DeepGaze I log-densities on test images")
    figure.tight_layout()
    gain = np.mean([r["mean_log2_likelihood_bits"] - r["uniform_log2_bits"] for r in rows if r["prior"] == "centre-bias prior"])
    ex.write_results("fig1_examples", figure, rows, setup, args, start=start, grids=[grid], held_out_subject=setup.folds[0],
                     line=f"{len(examples)} test images, {gain:.2f} bit/fix over uniform with the centre-bias prior")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
