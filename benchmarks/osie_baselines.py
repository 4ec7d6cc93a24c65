"""Centre bias and gold standard fitted on OSIE: the numbers of the metrics issue's closing note.

    python benchmarks/osie_baselines.py [--data DIR] [--write]

For both choices of ``keep_first`` (the first fixation of each trial is the forced central
start): the leave-one-image-out centre bias (bandwidth, eps) and its information gain over the
uniform model, the 100 x 100 frame variant, and the leave-one-subject-out gold standard
(bandwidth, weights) with its information gain over the centre bias, the explainable
information. Information gains in bit per fixation, averaged over fixations (and over images).
``--write`` stores the table in ``benchmarks/results/osie_baselines.md``.
"""
import argparse
import time

from repro import metrics, paths
from repro.centerbias import fit_center_bias
from repro.datasets import load_osie
from repro.goldstandard import fit_gold_standard

from markdown_table import report  # noqa: E402  (beside this script)


def evaluate(folder, keep_first):
    """One row of the table."""
    stimuli, fixations = load_osie(folder, keep_first=keep_first)
    start = time.perf_counter()
    center_bias = fit_center_bias(stimuli.sizes, fixations)
    center_bias_ll = center_bias.log_likelihoods()
    uniform_ll = metrics.log_uniform(fixations, stimuli.sizes)
    framed = fit_center_bias(stimuli.sizes, fixations, frame=(100, 100))
    framed_ll = framed.log_likelihoods()
    gold = fit_gold_standard(stimuli.sizes, fixations, center_bias)
    gold_ll = gold.log_likelihoods(center_bias_ll)
    seconds = time.perf_counter() - start

    def ig(model, baseline):
        return (f"{metrics.information_gain(model, baseline):.4f} "
                f"({metrics.information_gain(model, baseline, fixations, per='image'):.4f})")

    return [f"{keep_first}", f"{len(fixations)}",
            f"{center_bias.bandwidth:.4f}", f"{center_bias.eps:.1e}", ig(center_bias_ll, uniform_ll),
            f"{framed.bandwidth:.4f}", ig(framed_ll, uniform_ll),
            f"{gold.bandwidth:.4f}", " / ".join(f"{w:.4f}" for w in gold.weights), ig(gold_ll, center_bias_ll),
            f"{seconds:.0f}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/osie_baselines.md")
    args = parser.parse_args(argv)
    folder = paths.data_dir(args.data) / "osie"
    header = ["keep first fixation", "fixations", "centre bias bandwidth", "eps", "IG centre bias over uniform",
              "100x100 frame bandwidth", "IG frame centre bias over uniform", "gold bandwidth",
              "gold weights kde / centre bias / uniform", "IG gold over centre bias", "fit time, s"]
    rows = []
    for keep_first in (True, False):
        rows.append(evaluate(folder, keep_first))
        print(" | ".join(rows[-1]), flush=True)
    intro = ("`python benchmarks/osie_baselines.py --write`. Bandwidths relative to the image size (800 x 600); "
             "IG in bit/fix, mean over fixations (in brackets: over images). Centre bias leave-one-image-out, "
             "gold standard leave-one-subject-out (mixed with the centre bias and uniform).")
    report("OSIE: centre bias and gold standard", intro, header, rows, "osie_baselines", args.write)


if __name__ == "__main__":
    main()
