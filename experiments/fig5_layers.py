"""Figure 5: which AlexNet layers DeepGaze I should read (the paper's layer-selection study).

    python experiments/fig5_layers.py [--dataset demo|osie|mit1003] [--quick] [--workers N]

Readouts are trained on subsets of the 15 layers, with leave-one-subject-out cross-validation on the
training images: (a) layers from a given depth upwards, (b) up to a given depth, (c) of a given depth,
(d) of a given type. For each: explained information (% of the gold standard's gain over the centre
bias) on the training images for training and test subjects, and shuffled AUC (uniform prior, fold
models averaged) on training and test images. Dotted lines: the paper's final model, conv5 alone.
Writes results/fig5_layers.{png,pdf,csv,json}. ``--panels a b`` runs some panels only: on OSIE the whole
grid takes about an hour with 2 workers (the script prints its estimate first), and it can be published one
part at a time (``--publish`` keeps the panels published before, and takes the scores of layer subsets they
already contain instead of refitting).
"""
import json
import sys
import time

from repro import cli
from repro import experiments as ex
from repro.network import ALEXNET_LAYERS

TYPES = ("conv", "relu", "pool", "norm")
PANELS = ("a", "b", "c", "d")


def depth(layer):
    """The block of a layer, 1 (conv1 ... pool1) to 5 (conv5 ... pool5)."""
    return int(layer[-1])


def layer_subsets(quick=False):
    """``{panel: [(x label, layers), ...]}`` for the four panels of Figure 5."""
    depths = {"a": (4, 5), "b": (1,), "c": (5,)} if quick else {p: (1, 2, 3, 4, 5) for p in "abc"}
    types = ("norm",) if quick else TYPES
    rule = {"a": lambda l, d: depth(l) >= d, "b": lambda l, d: depth(l) <= d, "c": lambda l, d: depth(l) == d}
    panels = {p: [(str(d), [l for l in ALEXNET_LAYERS if rule[p](l, d)]) for d in depths[p]] for p in "abc"}
    panels["d"] = [(t, [l for l in ALEXNET_LAYERS if l.startswith(t)]) for t in types]
    return panels


TITLES = {"a": "(a) layers from depth ... upwards", "b": "(b) layers up to depth ...",
          "c": "(c) layers of depth ...", "d": "(d) layers of type ..."}
XLABELS = {"a": "lowest depth (block)", "b": "highest depth (block)", "c": "depth (block)", "d": "layer type"}


def announce_estimate(args, setup, subsets):
    """Fit the smallest and the largest subset on the first fold (cached: they are part of the grid) and print
    the grid's estimated wall time from their measured times. The fits run where the grid's do (in workers,
    with ``--workers``), so this process never holds the data of many layers."""
    sizes = {s: (ex.feature_values(setup, s), len(setup.folds)) for s in subsets}
    ends = [min(subsets, key=lambda s: sizes[s][0]), max(subsets, key=lambda s: sizes[s][0])]
    measured = ex.grid_runner(args)([ex.fit_config(setup, s, setup.folds[0]) for s in ends])
    ex.release_prepared()
    workers = args.workers or 1
    seconds = ex.estimate_seconds(sizes, {sizes[s][0]: r for s, r in zip(ends, measured)}, workers)
    print(f"fig5_layers {ex.tag(args)}: {len(subsets)} layer subsets x {len(setup.folds)} folds, estimated "
          f"{seconds / 60:.0f} min with {workers} worker(s) (from fits of {' '.join(ends[0])} and all "
          f"{len(ends[1])} layers: {measured[0]['seconds_fit'] + measured[0]['seconds_score']:.0f} s and "
          f"{measured[1]['seconds_fit'] + measured[1]['seconds_score']:.0f} s per fold)", flush=True)
    return seconds


def published(args, setup):
    """With ``--publish``: the JSON an earlier run published with the same dataset options and fit settings
    (SFO settings, lambda, the sources' digest), else ``{}``. Its panels are kept, and its layer subsets are not
    refitted: a fit is determined by its config (seeded), so a refit would reproduce the published scores."""
    path = ex.PUBLISHED_RESULTS / args.dataset / "fig5_layers.json"
    if not args.publish or not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    if earlier["options"] != ex.portable_options(setup.options) or earlier.get("fit") != fit_settings(setup):
        return {}
    return earlier


def fit_settings(setup):
    """What, besides the layers and the fold, determines a fit (SFO settings, lambda, the digest of the sources)."""
    config = ex.fit_config(setup, ["conv5"], setup.folds[0])
    return {key: config[key] for key in ("regularization", "passes", "batches", "seed", "sources")}


def draw(rows, setup):
    """Figure 5 from its table: each panel a pair, explained information (left) and shuffled AUC (right), as in
    the paper; panels a b / c d. A panel without rows says which command runs it."""
    plt = ex.pyplot()
    final = next(row for row in rows if row["panel"] == "final model")
    figure, axes = plt.subplots(2, 4, figsize=(17, 8))
    for index, panel in enumerate(PANELS):
        left, right = axes[index // 2, 2 * (index % 2)], axes[index // 2, 2 * (index % 2) + 1]
        entries = [row for row in rows if row["panel"] == panel]
        xs = range(len(entries))
        for key, name, marker in (("explained_train_subjects", "training subjects", "o"),
                                  ("explained_test_subjects", "test subjects", "s")):
            left.plot(xs, [100 * row[key] for row in entries], marker=marker, label=name)
        left.axhline(100 * final["explained_test_subjects"], ls=":", color="k", label="conv5 only, test subjects")
        for key, name, marker in (("sauc_train", "training images", "o"), ("sauc_test", "test images", "s")):
            right.plot(xs, [100 * row[key] for row in entries], marker=marker, label=name)
        right.axhline(100 * final["sauc_test"], ls=":", color="k", label="conv5 only, test images")
        left.set_title(TITLES[panel], fontsize=10, loc="left")
        left.set_ylabel("explained information,\ntraining images (%)")
        right.set_ylabel("shuffled AUC, uniform prior (%)")
        for ax in (left, right):
            ax.set_xticks(list(xs), [row["x"] for row in entries])
            ax.set_xlabel(XLABELS[panel])
            ax.grid(alpha=0.3)
            if not entries:
                ax.text(0.5, 0.5, f"panel ({panel}) not run yet:\nfig5_layers.py --panels {panel}",
                        transform=ax.transAxes, ha="center", va="center", fontsize=9, color="grey")
    for column in (0, 1):                                # one scale per measure, so the panels compare
        low, high = zip(*(ax.get_ylim() for ax in axes[:, column::2].ravel()))
        for ax in axes[:, column::2].ravel():
            ax.set_ylim(min(low), max(high))
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].legend(fontsize=8)
    ex.label_figure(figure, setup, f"Figure 5: DeepGaze I on subsets of AlexNet layers "
                                   f"({len(setup.folds)} leave-one-subject-out folds)")
    figure.tight_layout()
    return figure


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--panels", nargs="+", choices=PANELS, default=list(PANELS),
                   help="panels to run (default all); with --publish, the other panels already published are kept")
    args = p.parse_args(argv)
    start = time.time()
    setup = ex.load_setup(ex.options_of(args))
    panels = {panel: entries for panel, entries in layer_subsets(args.quick).items() if panel in args.panels}
    earlier = published(args, setup)
    known = {tuple(row["layers"].split()): row for row in earlier.get("rows", [])}
    wanted = {tuple(layers) for entries in panels.values() for _, layers in entries} | {("conv5",)}
    subsets = sorted(wanted - set(known), key=lambda s: (len(s), s))
    results = []
    if subsets:
        setup.store.extract(setup.stimuli, sorted({l for s in subsets for l in s}, key=ALEXNET_LAYERS.index))
        announce_estimate(args, setup, subsets)
        results = ex.grid_runner(args)([ex.fit_config(setup, s, subject) for s in subsets for subject in setup.folds])
    n = len(setup.folds)
    measured = {layers: {"n_features": len(results[i * n]["w"]), **ex.aggregate(results[i * n:(i + 1) * n])}
                for i, layers in enumerate(subsets)}
    columns = lambda row: {k: v for k, v in row.items() if k not in ("panel", "x", "layers")}
    scores = {**{layers: columns(row) for layers, row in known.items()}, **measured}

    rows = [{"panel": panel, "x": x, "layers": " ".join(layers), **scores[tuple(layers)]}
            for panel, entries in panels.items() for x, layers in entries]
    rows += [row for row in earlier.get("rows", []) if row["panel"] in PANELS and row["panel"] not in panels]
    rows = sorted(rows, key=lambda row: PANELS.index(row["panel"]))
    rows.append({"panel": "final model", "x": "conv5", "layers": "conv5", **scores[("conv5",)]})
    figure = draw(rows, setup)
    final = scores[("conv5",)]
    best = max(rows, key=lambda row: row["sauc_test"])
    shown = sorted({row["panel"] for row in rows} & set(PANELS))
    ex.write_results("fig5_layers", figure, rows, setup, args, start=start, grids=[results] if subsets else [],
                     earlier_runs=earlier.get("earlier_runs", []) + ([earlier["run"]] if earlier else []),
                     best_test_sauc=best["layers"], panels=shown, fit=fit_settings(setup),
                     line=f"panels {' '.join(shown)} ({len(subsets)} layer subsets x {n} folds run now, "
                          f"{len(wanted) - len(subsets)} taken from the published run); conv5 alone: "
                          f"explained {100 * final['explained_test_subjects']:.1f} % (test subjects), sAUC test "
                          f"{100 * final['sauc_test']:.2f} %; best test sAUC: {best['layers']} "
                          f"({100 * best['sauc_test']:.2f} %)")
    return rows


if __name__ == "__main__":
    sys.exit(cli.run(main))   # a user error: one line 'error: ...', status 1
