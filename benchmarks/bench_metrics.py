"""Speed of the metrics and of the baseline fits on all 98,321 OSIE fixations (700 images).

    python benchmarks/bench_metrics.py [--data DIR] [--write]

Every metric of ``repro.metrics`` runs over the whole dataset; the peer is a direct
per-fixation implementation (the definition written as a loop, as in a first implementation),
timed on a subset of images in the same run and scaled to the full dataset. The fits of the
centre bias and the gold standard are timed as well. ``--write`` stores the table in
``benchmarks/results/metrics.md``. Data: ``--data``, else ``DEEPGAZE_DATA``.
"""
import argparse
import platform
import time
import numpy as np

from repro import metrics, paths
from repro.centerbias import CenterBias, fit_center_bias
from repro.datasets import load_osie
from repro.goldstandard import fit_gold_standard

from markdown_table import report  # noqa: E402  (beside this script)

DISTINCT_MAPS = 20
PEER_IMAGES = 20


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def peer_log_likelihoods(maps, fixations):
    return np.array([maps(n)[int(y), int(x)] for x, y, n in zip(fixations.x, fixations.y, fixations.n)])


def peer_auc(maps, fixations):
    values = []
    for x, y, n in zip(fixations.x, fixations.y, fixations.n):
        saliency = maps(n)
        value = saliency[int(y), int(x)]
        values.append(np.mean(saliency < value) + 0.5 * np.mean(saliency == value))
    return np.array(values)


def peer_shuffled_auc(maps, fixations, all_fixations):
    values = []
    for x, y, n in zip(fixations.x, fixations.y, fixations.n):
        saliency = maps(n)
        others = all_fixations.n != n
        negatives = saliency[all_fixations.y_int[others], all_fixations.x_int[others]]
        value = saliency[int(y), int(x)]
        values.append(np.mean(negatives < value) + 0.5 * np.mean(negatives == value))
    return np.array(values)


def peer_nss(maps, fixations):
    return np.array([(maps(n)[int(y), int(x)] - maps(n).mean()) / maps(n).std()
                     for x, y, n in zip(fixations.x, fixations.y, fixations.n)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/metrics.md")
    args = parser.parse_args(argv)

    stimuli, fixations = load_osie(paths.data_dir(args.data) / "osie", keep_first=True)
    sizes = stimuli.sizes
    center_bias = CenterBias(sizes, fixations, bandwidth=0.0273, eps=1e-15)
    # DISTINCT_MAPS leave-one-image-out centre-bias maps, image n gets map n % DISTINCT_MAPS,
    # so that map generation is not part of the timing
    stored = [center_bias.log_density(n=n) for n in range(DISTINCT_MAPS)]
    log_maps = lambda n: stored[n % DISTINCT_MAPS]  # noqa: E731
    exp_stored = [np.exp(m) for m in stored]
    maps = lambda n: exp_stored[n % DISTINCT_MAPS]  # noqa: E731
    subset = fixations.for_images(range(PEER_IMAGES))
    scale = len(fixations) / len(subset)

    rows = []

    def compare(name, ours, peer=None, check=None):
        values, seconds = timed(*ours)
        row = [name, f"{seconds:.2f}", "", ""]
        if peer is not None:
            peer_values, peer_seconds = timed(*peer)
            row[2] = f"{peer_seconds * scale:.1f}"
            row[3] = f"{peer_seconds * scale / seconds:.0f}x"
            np.testing.assert_allclose(check(values), peer_values, rtol=1e-9, atol=1e-12)
        rows.append(row)
        print(" | ".join(row), flush=True)

    in_subset = np.isin(fixations.n, range(PEER_IMAGES))
    compare("log-likelihoods (+ IG)", (metrics.log_likelihoods, log_maps, fixations),
            (peer_log_likelihoods, log_maps, subset), lambda v: v[in_subset])
    compare("AUC, uniform nonfixations", (metrics.auc_per_fixation, maps, fixations),
            (peer_auc, maps, subset), lambda v: v[in_subset])
    compare("shuffled AUC", (metrics.shuffled_auc_per_fixation, maps, fixations, sizes),
            (peer_shuffled_auc, maps, subset, fixations), lambda v: v[in_subset])
    compare("NSS", (metrics.nss_per_fixation, maps, fixations), (peer_nss, maps, subset), lambda v: v[in_subset])
    compare("AUC-Judd", (metrics.auc_judd, maps, fixations))

    def gold_map(n):
        chosen = fixations.n == n
        return metrics.fixation_map(tuple(sizes[n]), fixations.x[chosen], fixations.y[chosen], sigma=0.0273 * 800)

    _, seconds = timed(lambda: [gold_map(n) for n in range(PEER_IMAGES)])
    rows.append(["blurred fixation maps (sigma 22 px), per image", f"{seconds / PEER_IMAGES:.3f}", "", ""])
    stored_gold = [gold_map(n) for n in range(DISTINCT_MAPS)]
    gold_maps = lambda n: stored_gold[n % DISTINCT_MAPS]  # noqa: E731
    for name, metric in [("CC", metrics.cc), ("KL", metrics.kl_divergence), ("MIT KL", metrics.mit_kl_divergence),
                         ("SIM", metrics.sim)]:
        compare(f"{name} vs blurred fixation map", (metrics.per_image, metric, maps, gold_maps, range(len(stimuli))))
    fitted, seconds = timed(fit_center_bias, sizes, fixations)
    rows.append(["fit centre bias (leave-one-image-out)", f"{seconds:.1f}", "", ""])
    print(" | ".join(rows[-1]), flush=True)
    _, seconds = timed(fit_gold_standard, sizes, fixations, fitted)
    rows.append(["fit gold standard (leave-one-subject-out)", f"{seconds:.1f}", "", ""])
    print(" | ".join(rows[-1]), flush=True)

    intro = (f"`python benchmarks/bench_metrics.py --write` on {platform.processor() or platform.machine()}, "
             f"Python {platform.python_version()}, numpy {np.__version__}. The direct loop is timed on "
             f"{PEER_IMAGES} images ({len(subset)} fixations) and scaled by the fixation count; its values equal "
             "ours (checked in the run). Maps are precomputed (20 distinct centre-bias maps), so only the metric "
             "is timed; the blurred fixation maps that CC/KL/SIM compare with cost the time per image given in "
             "the table. The machine's 2 cores were shared with other jobs, so absolute times are pessimistic.")
    header = ["step (98,321 OSIE fixations, 700 images of 800 x 600)", "repro, s", "direct loop, s (scaled)",
              "speed-up"]
    report("Metrics and baseline fits on OSIE", intro, header, rows, "metrics", args.write)


if __name__ == "__main__":
    main()
