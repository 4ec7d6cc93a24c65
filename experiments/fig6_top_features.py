"""Figure 6: the 10 most weighted conv5 features of DeepGaze I and the 9 image patches each responds to most.

    python experiments/fig6_top_features.py [--dataset demo|osie|mit1003] [--quick]

Weights: the fold average of the leave-one-subject-out conv5 readouts (lambda 0.001), features ranked by
|weight|. For each feature, the 9 images with the largest response (smallest, for negative weights)
give one patch each: the receptive field of the extreme conv5 unit, in image pixels (grey where it
reaches beyond the image). Writes results/fig6_top_features.{png,pdf,csv,json}.
"""
import sys
import time

from repro import cli
from repro import experiments as ex


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0]).parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    n_features, n_patches = (4, 4) if args.quick else (10, 9)
    found, grid = ex.top_feature_patches(args, setup, n_features, n_patches)

    plt = ex.pyplot()
    figure, axes = plt.subplots(n_features, n_patches, figsize=(1.3 * n_patches + 1, 1.4 * n_features + 1), squeeze=False)
    rows = []
    for rank, (ax_row, (channel, weight, units)) in enumerate(zip(axes, found)):
        for ax, (n, row, col, response) in zip(ax_row, units):
            ax.imshow(ex.crop(setup.stimuli[n], *ex.unit_box(setup, "conv5", row, col)))
            ax.set_xticks([]), ax.set_yticks([])
            rows.append({"rank": rank + 1, "channel": channel, "weight": weight, "image": setup.stimuli.ids[n],
                         "row": row, "col": col, "response": response})
        ax_row[0].set_ylabel(f"#{rank + 1}: conv5[{channel}]\nw = {weight:+.2f}", fontsize=8)
    size = ex.unit_box(setup, "conv5", 0, 0)[2]
    ex.label_figure(figure, setup, f"Figure 6: most weighted conv5 features, patches of maximum (minimum for w < 0) "
                                   f"response ({size} x {size} px receptive fields)")
    figure.tight_layout()
    ex.write_results("fig6_top_features", figure, rows, setup, args, start=start, grids=[grid],
                     line=f"top conv5 features {[c for c, _, _ in found]} "
                          f"(weights {', '.join(f'{w:+.2f}' for _, w, _ in found)})")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
