"""Figure 7: the first patches of the four most weighted conv5 features, in their images, beside the response.

    python experiments/fig7_feature_details.py [--dataset demo|osie|mit1003] [--quick]

As Figure 6 (fold-averaged conv5 readout, features ranked by |weight|); for each of the four features
and its first four patches: the whole image with the patch outlined, and the feature's response map
over the image (conv5 units, upsampled to the image only for display). Writes
results/fig7_feature_details.{png,pdf,csv,json}.
"""
import sys
import time

from repro import cli
from repro import experiments as ex


def main(argv=None):
    args = ex.parser(__doc__.splitlines()[0]).parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    n_features, n_patches = (2, 2) if args.quick else (4, 4)
    found, grid = ex.top_feature_patches(args, setup, n_features, n_patches)

    plt = ex.pyplot()
    from matplotlib.patches import Rectangle
    figure, axes = plt.subplots(n_features, 2 * n_patches, figsize=(4.6 * n_patches, 2.0 * n_features + 1.0),
                                squeeze=False)
    rows = []
    for rank, (channel, weight, units) in enumerate(found):
        for k, (n, row, col, response) in enumerate(units):
            image = setup.stimuli[n]
            top, left, size = ex.unit_box(setup, "conv5", row, col)
            ax_image, ax_response = axes[rank, 2 * k], axes[rank, 2 * k + 1]
            ax_image.imshow(image)
            ax_image.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, color="red", lw=1.2))
            ax_image.set_title(f"#{rank + 1} conv5[{channel}], {setup.stimuli.ids[n]}", fontsize=7)
            shown = ax_response.imshow(setup.store.features(image, ["conv5"])[0][channel], cmap="RdBu_r")
            ax_response.plot(col, row, "k+", ms=8)
            figure.colorbar(shown, ax=ax_response, fraction=0.046)
            ax_response.set_title(f"response (w = {weight:+.2f})", fontsize=7)
            ax_response.set_xlabel("conv5 column (unit)", fontsize=7)
            ax_response.set_ylabel("conv5 row (unit)", fontsize=7)
            ax_image.set_xlabel("x (px)", fontsize=7)
            ax_image.set_ylabel("y (px)", fontsize=7)
            for ax in (ax_image, ax_response):
                ax.tick_params(labelsize=6)
            rows.append({"rank": rank + 1, "channel": channel, "weight": weight, "image": setup.stimuli.ids[n],
                         "top_px": top, "left_px": left, "size_px": size, "response": response})
    ex.label_figure(figure, setup, "Figure 7: patches of the most weighted conv5 features in context (red box: "
                                   "receptive field of the extreme unit, +) and the feature's response map")
    figure.tight_layout()
    ex.write_results("fig7_feature_details", figure, rows, setup, args, start=start, grids=[grid],
                     line=f"features {[c for c, _, _ in found]} x {n_patches} patches")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
