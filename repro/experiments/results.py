"""What the experiment scripts write: tables, figures and run records, in ``results/`` or, with ``--publish``,
committed under ``experiments/results/<dataset>/``."""
import csv
import json
import os
import platform
import time
from pathlib import Path

from .. import paths

__all__ = ["PUBLISHED_RESULTS", "tag", "portable_options", "run_record", "shrink_png", "machine",
           "write_results", "is_published", "bar_chart", "pyplot", "label_figure"]

#: Where ``--publish`` writes a script's results (committed, one folder per dataset).
PUBLISHED_RESULTS = paths.PROJECT_ROOT / "experiments" / "results"


def tag(args):
    """``[<dataset>]`` or ``[<dataset> quick]``: how a script's printed summary names its run."""
    return f"[{args.dataset}{' quick' if args.quick else ''}]"


def portable_options(options):
    """``options`` with its paths relative to the project root, as committed results name them."""
    return {key: (os.path.relpath(value, paths.PROJECT_ROOT) if key in ("data_dir", "weights") and value else value)
            for key, value in options.items()}


def run_record(args, start, grids=()):
    """What a script's run took: its wall time, workers, and the fits of its grids (run now or read from the cache).

    ``fit_seconds`` sums the fits' own times (:func:`fit_and_score`'s ``seconds``), whenever they ran.
    """
    fits = [result for grid in grids for result in grid]
    return {"date": time.strftime("%Y-%m-%d"), "wall_seconds": round(time.time() - start, 1),
            "workers": args.workers, "fits": len(fits), "fits_computed": sum(g.computed for g in grids),
            "fit_seconds": round(sum(result.get("seconds", 0.0) for result in fits), 1)}


def shrink_png(path, colours=256):
    """Rewrite a PNG with an adaptive palette of ``colours`` (committed figures stay small: photographs in
    Figures 1, 6 and 7 take megabytes in full colour)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colours)
    small.save(path, format="PNG", optimize=True)


def machine():
    """``'<date>, <CPU model>, <n> cores'``: what every committed figure records beside its timings."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if line.startswith("model name")]
    return f"{time.strftime('%Y-%m-%d')}, {names[0] if names else platform.processor() or 'unknown CPU'}, " \
           f"{os.cpu_count()} cores"


def write_results(name, figure, rows, setup, args, line, start, grids=(), **extra):
    """Write ``<args.out>/<name>.{png,pdf,csv,json}``, close the figure and print the script's one-line summary.

    With ``--publish``, write ``experiments/results/<dataset>/<name>.{png,csv,json}`` instead: the results
    committed with the project (refused for ``--quick``). The JSON holds the table, the setup (dataset
    options with relative paths, data label, network note, folds), the run (:func:`run_record`) and ``extra``.

    Parameters
    ----------
    name : str
    figure : matplotlib.figure.Figure
    rows : list of dict
        The table (same keys in every row).
    setup : Setup
    args : argparse.Namespace
        The script's options (``out``, ``publish``, ``dataset``, ``quick``, ``workers``).
    line : str
        What the printed summary says, after ``<name> [<dataset> quick]:``.
    start : float
        ``time.time()`` at the script's start (the line ends with the seconds taken and the PNG).
    grids : sequence of GridResults
        The grids the script ran, for the run record.
    **extra
        More JSON-able information for the JSON (scores, notes).

    Returns
    -------
    Path
        The PNG.
    """
    if args.publish:
        if args.quick:
            raise ValueError("--publish writes the committed results of full configurations: drop --quick")
        out, formats = PUBLISHED_RESULTS / args.dataset, ("png",)
    else:
        out, formats = Path(args.out), ("png", "pdf")
    out.mkdir(parents=True, exist_ok=True)
    for ext in formats:
        with paths.atomic_path(out / f"{name}.{ext}") as tmp:
            figure.savefig(tmp, format=ext, dpi=100, bbox_inches="tight")
            if ext == "png" and args.publish:
                shrink_png(tmp)
    pyplot().close(figure)                   # written: scripts run in one process (tests) must not pile figures up
    with paths.atomic_path(out / f"{name}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {"rows": rows, "options": portable_options(setup.options), "label": setup.label,
               "network": setup.network_note, "folds": setup.folds, "run": run_record(args, start, grids), **extra}
    with paths.atomic_path(out / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1, default=float))
    png = out / f"{name}.png"
    print(f"{name} {tag(args)}: {line}; {time.time() - start:.0f} s -> {png}")
    return png


def is_published(row):
    """Whether a table row is a number copied from the paper (its ``source`` starts with "published")."""
    return row["source"].startswith("published")


def bar_chart(ax, rows, key, fmt="{:.1f}", published_note="published"):
    """One bar per row, this run's values in blue, published values hatched grey, each with its value.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rows : list of dict
        With ``'model'`` (the bar's label; a parenthesis goes on a line of its own), ``'source'`` (legend
        entry; "published ..." for the paper's numbers) and ``key`` (the height).
    key : str
    fmt : str
        Format of the value written above each bar.
    published_note : str
        Added under the label of published bars.
    """
    seen = set()
    for i, row in enumerate(rows):
        published = is_published(row)
        ax.bar(i, row[key], color="lightgrey" if published else "C0", hatch="//" if published else None,
               edgecolor="k", label=None if row["source"] in seen else row["source"])
        seen.add(row["source"])
        below = row[key] < 0
        ax.annotate(fmt.format(row[key]), (i, row[key]), xytext=(0, -2 if below else 2), textcoords="offset points",
                    ha="center", va="top" if below else "bottom", fontsize=8)
    labels = [row["model"].replace(" (", "\n(") + (f"\n({published_note})" if is_published(row) else "")
              for row in rows]
    crowded = len(rows) > 6                                 # slanted labels, which would overlap side by side
    ax.set_xticks(range(len(rows)), labels, fontsize=8, rotation=35 if crowded else 0,
                  ha="right" if crowded else "center", rotation_mode="anchor")


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def label_figure(figure, setup, title):
    """Title the figure with what it shows and which data and network it comes from (and, for ``--quick``
    runs, that their numbers are not meaningful)."""
    quick = ("\nQUICK CONFIGURATION (a few images, one fold, short fits): a smoke test, its numbers are not "
             "meaningful" if setup.options["quick"] else "")
    figure.suptitle(f"{title}\n{setup.label}; {setup.network_note}{quick}", fontsize=9,
                    color="darkred" if setup.options["dataset"] == "demo" or quick else "black")
