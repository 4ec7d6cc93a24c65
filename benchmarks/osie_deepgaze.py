"""DeepGaze I (AlexNet conv5) trained and evaluated on OSIE, with the timings of the model issue.

    python benchmarks/osie_deepgaze.py [--data DIR] [--subjects K] [--passes P] [--write]

Trained on the training half of OSIE (``repro.datasets.osie_split``, 350 images), the first, forced
central fixation of each trial dropped, with leave-one-subject-out cross-validation over the first
``K`` subjects (all 15 by default, as the paper). Reported, as in the paper's Section 2:

* information gain over the leave-one-image-out centre bias (bit/fix) and explained information
  (% of the gold standard's gain) on the test images, for the test subjects on the training images
  and for the training subjects on the training images;
* AUC with the centre bias as prior and shuffled AUC with a uniform prior, on the test images,
  averaged over the fold models;
* the same for the centre bias and the gold standard;
* wall times: feature extraction of all 700 images (cold cache unless ``--reuse-cache``), one fit.

``--write`` stores the table in ``benchmarks/results/osie_deepgaze.md`` (and the numbers as JSON).
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from repro import metrics, paths
from repro.centerbias import fit_center_bias
from repro.datasets import load_osie, osie_split
from repro.features import FeatureExtractor, FeatureStore
from repro.goldstandard import fit_gold_standard
from repro.network import Network
from repro.training import density_function, subject_cross_validation

from markdown_table import report  # noqa: E402  (beside this script)

LAYERS = ["conv5"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--subjects", type=int, default=15, help="held-out subjects (folds) to run")
    parser.add_argument("--passes", type=int, default=20, help="SFO passes per fit")
    parser.add_argument("--batches", type=int, default=10, help="SFO subfunctions (image groups)")
    parser.add_argument("--regularization", type=float, default=0.001)
    parser.add_argument("--geometry", choices=("receptive_field", "stretch"), default="receptive_field",
                        help="place maps at their receptive-field centres, or stretch them over the image")
    parser.add_argument("--reuse-cache", action="store_true", help="use the project's feature cache")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    data = paths.data_dir(args.data)
    stimuli, fixations = load_osie(data / "osie", keep_first=False)
    train, test = osie_split(stimuli)
    folder = data / "weights" / "bvlc_alexnet"
    network = Network(folder / "deploy.prototxt", folder / "bvlc_alexnet_conv_q8.v2.caffemodel",
                      padding="full", last_layer="pool5")
    extractor = FeatureExtractor(network)
    store = FeatureStore(extractor, None if args.reuse_cache else Path(tempfile.mkdtemp(prefix="features-")))

    start = time.perf_counter()
    store.extract(stimuli, LAYERS)
    extraction = time.perf_counter() - start

    center_bias = fit_center_bias(stimuli.sizes, fixations)
    cb_ll = center_bias.log_likelihoods()
    gold_ll = fit_gold_standard(stimuli.sizes, fixations, center_bias).log_likelihoods(cb_ll)
    uniform_ll = metrics.log_uniform(fixations, stimuli.sizes)

    start = time.perf_counter()
    cv = subject_cross_validation(store, stimuli, fixations, train, test, LAYERS, center_bias.log_density,
                                  subjects=fixations.subjects[:args.subjects], num_passes=args.passes,
                                  n_batches=args.batches, regularization=args.regularization,
                                  geometry=extractor.geometry(LAYERS) if args.geometry == "receptive_field" else None)
    cv_seconds = time.perf_counter() - start

    on_test = np.isin(fixations.n, test)
    test_fix = fixations.filter(on_test)
    scored = {"test images": ("ll_test_images", on_test),
              "training images, test subjects": ("ll_test_subjects", np.isfinite(cv["ll_test_subjects"])),
              "training images, training subjects": ("ll_train_subjects", np.isfinite(cv["ll_train_subjects"]))}
    results = {"extraction_seconds": extraction, "cv_seconds": cv_seconds, "fit_seconds": cv_seconds / len(cv["models"]),
               "subjects": [int(s) for s in cv["subjects"]], "passes": args.passes,
               "n_fixations": len(fixations), "n_test_fixations": int(on_test.sum())}
    rows = []
    for name, (key, mask) in scored.items():
        ll = cv[key][mask]
        ig = metrics.information_gain(ll, cb_ll[mask])
        gold = metrics.information_gain(gold_ll[mask], cb_ll[mask])
        results[name] = {"ig_bits": ig, "gold_ig_bits": gold, "explained": ig / gold}
        rows.append([f"DeepGaze I, {name}", f"{ig:.3f}", f"{100 * ig / gold:.1f} %", "", ""])

    aucs, sh_aucs = [], []
    for model in cv["models"]:
        aucs.append(metrics.auc(density_function(model, store, stimuli, center_bias.log_density), test_fix))
        sh_aucs.append(metrics.shuffled_auc(density_function(model, store, stimuli), test_fix, stimuli.sizes))
    cb_maps = {n: center_bias.log_density(n) for n in test_fix.images}
    cb_auc = metrics.auc(cb_maps.__getitem__, test_fix)
    cb_sauc = metrics.shuffled_auc(cb_maps.__getitem__, test_fix, stimuli.sizes)
    results.update(auc=float(np.mean(aucs)), sauc=float(np.mean(sh_aucs)), centerbias_auc=cb_auc,
                   centerbias_sauc=cb_sauc,
                   centerbias_ig_over_uniform=metrics.information_gain(cb_ll[on_test], uniform_ll[on_test]),
                   gold_ig_bits_test=metrics.information_gain(gold_ll[on_test], cb_ll[on_test]),
                   sigma=[m.sigma for m in cv["models"]], alpha=[m.alpha for m in cv["models"]],
                   nonzero_weights=[int((np.abs(m.w) > 1e-3 * np.abs(m.w).max()).sum()) for m in cv["models"]])
    rows[0][3:] = [f"{100 * results['auc']:.2f} %", f"{100 * results['sauc']:.2f} %"]
    rows.append(["centre bias (baseline)", "0", "0 %", f"{100 * cb_auc:.2f} %", f"{100 * cb_sauc:.2f} %"])
    rows.append(["gold standard, test images", f"{results['gold_ig_bits_test']:.3f}", "100 %", "", ""])

    intro = (f"OSIE, AlexNet conv5 (8-bit conv2-5 weights), train/test halves of 350 images, first fixation dropped, "
             f"{len(cv['models'])} leave-one-subject-out folds, {args.passes} SFO passes, lambda {args.regularization}, "
             f"maps {'at their receptive-field centres' if args.geometry == 'receptive_field' else 'stretched over the image'}. "
             f"IG over the leave-one-image-out centre bias (bit/fix, averaged over fixations). AUC with the centre-bias "
             f"prior, shuffled AUC with a uniform prior, on the test images. Feature extraction of 700 images: "
             f"{extraction:.0f} s{' (from the cache)' if args.reuse_cache else ''}; one fit (and its scoring): {results['fit_seconds']:.0f} s. "
             f"Centre bias over uniform on the test images: {results['centerbias_ig_over_uniform']:.3f} bit/fix.")
    report("DeepGaze I on OSIE", intro, ["model", "IG (bit/fix)", "explained information", "AUC", "shuffled AUC"],
           rows, "osie_deepgaze", args.write)
    if args.write:
        target = Path(__file__).resolve().parent / "results" / "osie_deepgaze.json"
        target.write_text(json.dumps(results, indent=1, default=float))
    return results


if __name__ == "__main__":
    main()
