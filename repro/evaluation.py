"""Any saliency model's maps scored as the paper scores models: postprocessed on the training images, scored on
the test images.

:func:`evaluate_maps` fits the postprocessing (:mod:`repro.postprocessing`) of one model's maps to the fixations
of all subjects on the training images and scores its density on the test images, with every measure of
:mod:`repro.metrics`:

- **log-likelihood** (nats per fixation), **information gain** over the leave-one-image-out centre bias (bit per
  fixation) and **explained information** (the fraction of the gold standard's gain), as the paper's Figure 3;
- **AUC** of the density (with its fitted centre bias) and **shuffled AUC** of the density without it (the
  postprocessing with a flat centre bias), as the paper's Figure 4 scores DeepGaze I, and, with ``mit``, the same
  two as the MIT benchmark computes them (:func:`repro.mit_metrics.benchmark_aucs`);
- **NSS** of the density at the fixations; **CC**, **KL** (of the gold standard from the model: ``sum p_gold
  log(p_gold / p_model)``) and **SIM** of the density against the gold standard's density of all subjects, mean
  over the test images.

With ``subjects``, the log-likelihood, information gain and explained information are leave-one-subject-out, as
the readout's: each test fixation is scored by the postprocessing fitted without its subject (one fit per subject);
the other measures come from the fit on all subjects. ``python -m repro evaluate`` runs this on a folder of maps.
"""
import time

import numpy as np
from tqdm.auto import tqdm

from . import metrics, mit_metrics
from .centerbias import fit_center_bias
from .density import DensityFunction
from .goldstandard import fit_gold_standard
from .postprocessing import fit_postprocessing

__all__ = ["SCORES", "evaluate_maps", "scores_table", "evaluation_figure"]

#: What :func:`evaluate_maps` reports: key, unit, meaning.
SCORES = [
    ("information_gain", "bit/fix", "information gain over the leave-one-image-out centre bias"),
    ("explained_information", "fraction", "of the gold standard's information gain"),
    ("log_likelihood", "nat/fix", "mean log-likelihood of the test fixations"),
    ("gold_information_gain", "bit/fix", "the gold standard's information gain (100 % explained)"),
    ("auc", "fraction", "AUC of the density, with its fitted centre bias (pysaliency's definition)"),
    ("sauc", "fraction", "shuffled AUC of the density without its centre bias (pysaliency's definition)"),
    ("mit_auc_judd", "fraction", "AUC-Judd as the MIT benchmark computes it, with the centre bias"),
    ("mit_sauc", "fraction", "shuffled AUC as the MIT benchmark computes it, without the centre bias"),
    ("nss", "", "normalised scanpath saliency of the density, mean over fixations"),
    ("cc", "", "correlation of the density with the gold standard's, mean over images"),
    ("kl", "nat", "KL divergence of the gold standard's density from the model's, mean over images"),
    ("sim", "", "similarity (histogram intersection) with the gold standard's density, mean over images"),
]


def _cell_maps(postprocessing, density, images):
    """``{n: CellMap}`` of the log-density of ``postprocessing`` on the maps of ``density`` (a MapDensity)."""
    found = {}
    for n in images:
        cells = density.cells(int(n))
        found[int(n)] = metrics.CellMap(postprocessing.log_cell_density(cells), cells.grid.row_cell,
                                        cells.grid.col_cell)
    return found


def _image_scores(log_densities, gold_standard, images):
    """CC, KL and SIM of each image's density against the gold standard's (all subjects), mean over ``images``."""
    values = {"cc": [], "kl": [], "sim": []}
    for n in images:
        model, gold = np.exp(np.asarray(log_densities[int(n)])), np.exp(gold_standard.log_density(int(n)))
        values["cc"].append(metrics.cc(model, gold))
        values["kl"].append(metrics.kl_divergence(model, gold))
        values["sim"].append(metrics.sim(model, gold))
    return {key: float(np.mean(v)) for key, v in values.items()}


def evaluate_maps(maps, stimuli, fixations, train, test, center_bias=None, gold_standard=None, subjects=False,
                  mit=False, progress=True, **fit_options):
    """Fit the postprocessing of a model's maps on the training images and score it on the test images.

    Parameters
    ----------
    maps : callable, sequence or mapping
        Saliency map ``(H, W)`` of every image ``n`` (or its :class:`repro.postprocessing.MapCells`, as
        :func:`repro.saliency_maps.load_maps` reads a folder).
    stimuli : repro.datasets.Stimuli
    fixations : repro.datasets.Fixations
    train, test : sequence of int
        Image indices of the two halves.
    center_bias : repro.centerbias.CenterBias, optional
        The baseline (default: fitted here, :func:`repro.centerbias.fit_center_bias`).
    gold_standard : repro.goldstandard.GoldStandard, optional
        Default: fitted here (:func:`repro.goldstandard.fit_gold_standard`).
    subjects : bool
        Information gain leave-one-subject-out (one fit per subject; see the module docstring).
    mit : bool
        Also the MIT benchmark's AUC-Judd and shuffled AUC (some 20 s for 350 images).
    progress : bool
    **fit_options
        Passed to :func:`repro.postprocessing.fit_postprocessing` (``maxiter``, ``tol``).

    Returns
    -------
    dict
        ``scores``: every key of :data:`SCORES` computed; ``postprocessing``: the fitted
        :class:`repro.postprocessing.Postprocessing` (all subjects); ``folds``: with ``subjects``, each subject's fit
        (``Postprocessing.to_json``); ``images``, ``fixations``: how many were fitted and scored; ``seconds``.
    """
    began = time.perf_counter()
    train, test = np.asarray(train, int), np.asarray(test, int)
    if center_bias is None:
        center_bias = fit_center_bias(stimuli.sizes, fixations)
    baseline_ll = center_bias.log_likelihoods()
    if gold_standard is None:
        gold_standard = fit_gold_standard(stimuli.sizes, fixations, center_bias)
    gold_ll = gold_standard.log_likelihoods(baseline_ll)
    on_test = np.isin(fixations.n, test)
    if not on_test.any():
        raise ValueError(f"no fixations on the {len(test)} test images: nothing to score")
    scored = fixations.filter(on_test)

    fitted = fit_postprocessing(maps, fixations, train, progress=progress, **fit_options)
    density = fitted.density(maps)
    with_prior = _cell_maps(fitted, density, test)
    flat = _cell_maps(fitted.without_centerbias(), density, test)
    ll = metrics.log_likelihoods(with_prior, scored)
    folds = []
    if subjects:
        ll = np.full(len(scored), np.nan)
        for subject in tqdm(fixations.subjects, desc="held-out subjects", disable=not progress):
            fold = fit_postprocessing(maps, fixations.filter(fixations.subject != subject), train, **fit_options)
            mine = scored.subject == subject
            ll[mine] = metrics.log_likelihoods(_cell_maps(fold, density, test), scored.filter(mine))
            folds.append({"subject": int(subject), **fold.to_json()})
    sums = metrics.InformationSums.of(ll, baseline_ll[on_test], gold_ll[on_test])
    scores = {"information_gain": sums.information_gain, "explained_information": sums.explained_information,
              "log_likelihood": float(ll.mean()), "gold_information_gain": sums.gold_information_gain,
              "auc": metrics.auc(with_prior, scored),
              "sauc": metrics.shuffled_auc(flat, scored, stimuli.sizes),
              "nss": metrics.nss(lambda n: np.exp(np.asarray(with_prior[n])), scored)}    # one pixel map at a time
    if mit:
        found = mit_metrics.benchmark_aucs(DensityFunction(with_prior.__getitem__), DensityFunction(flat.__getitem__),
                                           scored, stimuli.sizes)
        scores.update(mit_auc_judd=found["auc_judd"], mit_sauc=found["sauc"])
    scores.update(_image_scores(with_prior, gold_standard, test))
    return {"scores": scores, "postprocessing": fitted, "folds": folds, "subjects": bool(subjects),
            "images": {"train": int(len(train)), "test": int(len(test))},
            "fixations": {"train": int(fitted.info["fixations"]), "test": int(on_test.sum())},
            "seconds": time.perf_counter() - began}


def scores_table(result):
    """Rows ``{'score', 'value', 'unit', 'meaning'}`` of :func:`evaluate_maps`'s scores, then the fitted blur and
    aspect (for a CSV)."""
    rows = [{"score": key, "value": result["scores"][key], "unit": unit, "meaning": meaning}
            for key, unit, meaning in SCORES if key in result["scores"]]
    fitted = result["postprocessing"]
    rows += [{"score": "sigma", "value": fitted.sigma * fitted.grid[1], "unit": "pixels",
              "meaning": "fitted blur of the maps"},
             {"score": "aspect", "value": fitted.aspect, "unit": "", "meaning": "fitted aspect of the centre bias's "
              "elliptic distance (0.71: round in image-normalised coordinates)"}]
    return rows


def evaluation_figure(result, density, stimuli, fixations, raw_maps, examples, title=""):
    """The fitted postprocessing and what it does: the nonlinearity and the centre bias (as a function and on the
    first example's image), then, for each example test image, the image with its fixations, the raw map and the
    converted density.

    Parameters
    ----------
    result : dict
        Of :func:`evaluate_maps`.
    density : repro.postprocessing.MapDensity
        The maps converted by ``result['postprocessing']``.
    stimuli, fixations
    raw_maps : callable
        ``n -> (H, W)`` raw saliency map.
    examples : sequence of int
        Image indices shown (three, say).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import pyplot as plt

    fitted = result["postprocessing"]
    figure, axes = plt.subplots(1 + len(examples), 3, figsize=(12, 3.2 * (1 + len(examples))))
    values = np.linspace(0, 1, 201)
    axes[0, 0].semilogy(values, fitted.nonlinearity_at(values), color="C0")
    axes[0, 0].semilogy(np.linspace(0, 1, fitted.nonlinearity.size), np.exp(fitted.nonlinearity), "o", ms=3, color="C0")
    axes[0, 0].set(xlabel="saliency, normalised to the fitting maps' range", ylabel="nonlinearity f (log scale)",
                   title=f"nonlinearity (after a blur of {fitted.sigma * fitted.grid[1]:.1f} px)")
    axes[0, 1].plot(values, fitted.centerbias_at(values), color="C1")
    axes[0, 1].plot(np.linspace(0, 1, fitted.centerbias.size), np.exp(fitted.centerbias), "o", ms=3, color="C1")
    axes[0, 1].set(xlabel="elliptic distance from the centre (0 centre, 1 corner)", ylabel="centre bias g",
                   title=f"centre bias (aspect {fitted.aspect:.2f})")
    first = int(examples[0])
    height, width = stimuli.sizes[first]
    yy, xx = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    a2 = fitted.aspect ** 2
    distance = np.sqrt((xx ** 2 / a2 + yy ** 2 / (1 - a2)) / (1 / a2 + 1 / (1 - a2)))
    axes[0, 2].imshow(fitted.centerbias_at(distance), cmap="magma")
    axes[0, 2].set_title("centre bias on the image", fontsize=10)
    for row, n in enumerate(examples, start=1):
        n = int(n)
        on_image = fixations.filter(fixations.n == n)
        axes[row, 0].imshow(stimuli[n])
        axes[row, 0].scatter(on_image.x, on_image.y, s=6, c="cyan", edgecolors="k", linewidths=0.3)
        axes[row, 0].set_title(f"image {stimuli.ids[n]}, {len(on_image)} fixations", fontsize=10)
        axes[row, 1].imshow(raw_maps(n), cmap="gray")
        axes[row, 1].set_title("saliency map (before)", fontsize=10)
        log_density = density.log_density(n)
        axes[row, 2].imshow(log_density, cmap="inferno", vmin=max(log_density.min(), log_density.max() - np.log(1000)))
        axes[row, 2].set_title("log-density (after)", fontsize=10)
    for ax in axes[1:].ravel().tolist() + [axes[0, 2]]:
        ax.set_xticks([]), ax.set_yticks([])
    scores = result["scores"]
    figure.suptitle(f"{title}\ntest images: information gain {scores['information_gain']:.3f} bit/fix, explained "
                    f"{100 * scores['explained_information']:.1f} %, AUC {100 * scores['auc']:.2f} %, "
                    f"shuffled AUC {100 * scores['sauc']:.2f} %", fontsize=10)
    figure.tight_layout()
    return figure
