"""Leave-one-subject-out cross-validation, the paper's protocol (Section 2.3).

"To avoid overfitting to the subjects, leave-one-out cross-validation over the 15 subjects contained in
the database was used." One *fold* holds out one subject: the readout is fitted to the other subjects'
fixations on the training images, then every fixation is scored, and each lands in one role:

* ``test_subjects``: the held-out subject's fixations on the training images;
* ``train_subjects``: the other subjects' fixations there (what the fold was fitted to);
* ``test_images``: every fixation on the test images.

What all folds of one readout share (features, centre bias in cells, feature scales, the baseline's and
the gold standard's log-likelihoods) is prepared once (:func:`prepare`); :func:`fold` fits one fold,
:func:`fold_scores` scores it, and :func:`aggregate` pools the folds' scores. :func:`subject_cross_validation`
runs these for all folds in this process; ``repro.experiments`` runs the same :func:`fold` and
:func:`fold_scores` as one job of a cached, distributed grid, and the same :func:`aggregate`.
"""
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from . import metrics, mit_metrics
from .density import DensityFunction
from .training import MEMORY_BUDGET, fixation_log_likelihoods, log_masses, prepare_images, saliencies, train_model

__all__ = ["ROLES", "Prepared", "prepare", "fold", "score", "roles", "fold_scores", "aggregate",
           "subject_cross_validation"]

#: The roles of a fixation in a fold (see the module docstring).
ROLES = ("test_subjects", "train_subjects", "test_images")


@dataclass
class Prepared:
    """What every fold of one readout (network and layers) shares.

    Attributes
    ----------
    train, test : list of repro.training.ImageData
        The training and test images with all their fixations and the leave-one-image-out centre
        bias in their cells.
    images : ndarray of int, shape (len(train) + len(test),)
        Their indices in the stimuli, training images first.
    positions : list of ndarray of int
        For each image of ``train + test``, the indices of its fixations in the fixations prepared.
    scales : ndarray, shape (K,)
        Feature scales on the training images (cached on disk by the feature store).
    geometry : repro.resampling.Geometry
    sizes : ndarray of int, shape (n_images, 2)
        ``(height, width)`` of every image of the stimuli (what shuffled AUC rescales by).
    baseline_ll, gold_ll : ndarray, shape (n_fixations,), or None
        The leave-one-image-out centre bias's and the gold standard's log-likelihood (nats) of every fixation
        prepared: what information gain and explained information are measured against.
    seconds : float
        Time it took.
    """
    train: list
    test: list
    images: np.ndarray
    positions: list
    scales: np.ndarray
    geometry: object
    sizes: np.ndarray = None
    baseline_ll: np.ndarray = None
    gold_ll: np.ndarray = None
    seconds: float = 0.0

    @property
    def train_images(self):
        """Indices of the training images in the stimuli, ndarray of int."""
        return self.images[:len(self.train)]

    @property
    def test_images(self):
        """Indices of the test images in the stimuli, ndarray of int."""
        return self.images[len(self.train):]


def prepare(store, stimuli, fixations, train_images, test_images, layers, log_centerbias, baseline_ll=None,
            gold_ll=None, progress=False):
    """Prepare the images of a cross-validation of a readout of ``layers``.

    The training images are held in memory as :func:`repro.training.prepare_images` decides (float32,
    compact, or read from the feature cache). The test images are held as float32 only when they fit beside
    the training images held in memory, within :data:`repro.training.MEMORY_BUDGET` for both; else they are
    read from the cache whenever they are scored (scores never use compact maps).

    Parameters
    ----------
    store : repro.features.FeatureStore
    stimuli : repro.datasets.Stimuli
    fixations : repro.datasets.Fixations
    train_images, test_images : sequence of int
    layers : list of str
    log_centerbias : repro.density.DensityModel or callable
        The leave-one-image-out centre bias (see :func:`repro.density.log_prior_in_cells`).
    baseline_ll, gold_ll : ndarray, shape (n_fixations,), optional
        Log-likelihoods (nats) of ``fixations`` under the baseline (the leave-one-image-out centre bias,
        :meth:`repro.centerbias.CenterBias.log_likelihoods`) and the gold standard
        (:meth:`repro.goldstandard.GoldStandard.log_likelihoods`); without them :func:`fold_scores` gives no
        information gains.
    progress : bool

    Returns
    -------
    Prepared
    """
    start = time.perf_counter()
    train_images, test_images, layers = np.asarray(train_images, int), np.asarray(test_images, int), list(layers)
    train = prepare_images(store, stimuli, fixations, layers, log_centerbias, images=train_images, progress=progress)
    in_memory = all(not callable(image.source) for image in train)
    held = sum(m.nbytes for image in train for m in image.source) if in_memory else 0
    test_bytes = sum(m.size for m in train[0].source) * 4 * len(test_images) if in_memory and train else 0
    test = prepare_images(store, stimuli, fixations, layers, log_centerbias, images=test_images,
                          in_memory=in_memory and held + test_bytes <= MEMORY_BUDGET, progress=progress)
    images = np.concatenate([train_images, test_images])
    positions = [np.flatnonzero(fixations.n == n) for n in images]
    scales = store.feature_scales([stimuli[int(n)] for n in train_images], layers, progress=progress)
    return Prepared(train, test, images, positions, scales, store.extractor.geometry(layers), np.asarray(stimuli.sizes),
                    baseline_ll, gold_ll, time.perf_counter() - start)


def fold(data, fixations, subject, layers, metadata=None, progress=False, **fit_options):
    """Fit the fold of held-out ``subject``: the readout of ``layers`` on the other subjects' fixations on
    the training images of ``data``.

    Parameters
    ----------
    data : Prepared
    fixations : repro.datasets.Fixations
        The fixations ``data`` was prepared with.
    subject : int
    layers : list of str
    metadata : dict, optional
        Recorded in the model besides ``held_out_subject``.
    progress : bool
    **fit_options
        Passed to :func:`repro.training.train_model` (``regularization``, ``num_passes``, ``n_batches``, ``seed``).

    Returns
    -------
    repro.model.DeepGazeI
    """
    training = [image.with_fixations(fixations.subject[where] != subject)
                for image, where in zip(data.train, data.positions)]
    model, _ = train_model(training, layers, data.geometry, scales=data.scales, progress=progress,
                           metadata={"held_out_subject": int(subject), **(metadata or {})}, **fit_options)
    return model


def _pixel_maps(indices, images, masses):
    """``{n: CellMap}``: the pixel log-density of each image (index ``n``), held on its cells."""
    return {int(n): metrics.CellMap(image.grid.pixel_log_density(mass), image.grid.row_cell, image.grid.col_cell)
            for n, image, mass in zip(indices, images, masses)}


def score(model, data, n_fixations, maps=True):
    """A readout's log-likelihoods, and its pixel log-densities, on the prepared images.

    Parameters
    ----------
    model : repro.model.DeepGazeI
    data : Prepared
    n_fixations : int
        Number of fixations ``data`` was prepared with.
    maps : bool
        Also return the pixel log-densities (for AUC and shuffled AUC).

    Returns
    -------
    ll : ndarray, shape (n_fixations,)
        Log-likelihood (nat) of every fixation on the prepared images, centre-bias prior (NaN elsewhere).
    with_prior, flat : dict
        With ``maps``: ``{image index: metrics.CellMap}``, pixel log-densities with the centre-bias prior and
        with a uniform one (what shuffled AUC scores).
    """
    images = data.train + data.test
    saliency = saliencies(model, images)                 # one evaluation serves both priors
    masses = log_masses(model, images, saliency)
    ll = np.full(n_fixations, np.nan)
    ll[np.concatenate(data.positions)] = fixation_log_likelihoods(images, masses)
    if not maps:
        return ll
    uniform = [image.with_prior(image.grid.log_pixels) for image in images]
    return ll, _pixel_maps(data.images, images, masses), \
        _pixel_maps(data.images, uniform, log_masses(model, uniform, saliency))


def roles(fixations, subject, train_images, test_images):
    """``{role: mask over fixations}`` of the fold of held-out ``subject`` (the module's :data:`ROLES`)."""
    on_train = np.isin(fixations.n, train_images)
    return {"test_subjects": on_train & (fixations.subject == subject),
            "train_subjects": on_train & (fixations.subject != subject),
            "test_images": np.isin(fixations.n, test_images)}


def fold_scores(model, data, fixations, subject, mit=False):
    """The scores of the fold of held-out ``subject``: what every fold records, and :func:`aggregate` pools.

    Parameters
    ----------
    model : repro.model.DeepGazeI
        The fold's readout (:func:`fold`).
    data : Prepared
    fixations : repro.datasets.Fixations
        The fixations ``data`` was prepared with.
    subject : int
    mit : bool
        Also score the test images as the MIT benchmark does (:func:`repro.mit_metrics.benchmark_aucs`, some 20 s
        for OSIE's 350 test images).

    Returns
    -------
    dict
        ``'gains'``: for each role, :meth:`repro.metrics.InformationSums.as_dict` of the model and the gold
        standard over the baseline (summed nats and the number of fixations; only with ``data.baseline_ll``);
        ``'sauc_train'``, ``'sauc_test'``: shuffled AUC with a uniform prior on the training / test images;
        ``'auc_test'``: AUC with the centre-bias prior on the test images; ``'w'``, ``'sigma'``, ``'alpha'``:
        the fitted readout; with ``mit``, ``mit_auc_test`` (AUC-Judd, centre-bias prior), ``mit_sauc_test`` (shuffled
        AUC, uniform prior) and ``mit_sauc_test_splits`` (its spread over the benchmark's random splits).
    """
    ll, with_prior, flat = score(model, data, len(fixations))
    on_train, on_test = np.isin(fixations.n, data.train_images), np.isin(fixations.n, data.test_images)
    result = {}
    if data.baseline_ll is not None:
        result["gains"] = {role: metrics.InformationSums.of(ll[mask], data.baseline_ll[mask], data.gold_ll[mask]
                                                            if data.gold_ll is not None else None).as_dict()
                           for role, mask in roles(fixations, subject, data.train_images, data.test_images).items()}
    result.update(sauc_train=metrics.shuffled_auc(flat, fixations.filter(on_train), data.sizes),
                  sauc_test=metrics.shuffled_auc(flat, fixations.filter(on_test), data.sizes),
                  auc_test=metrics.auc(with_prior, fixations.filter(on_test)),
                  w=model.w.tolist(), sigma=model.sigma, alpha=model.alpha)
    if mit:
        found = mit_metrics.benchmark_aucs(DensityFunction(with_prior.__getitem__), DensityFunction(flat.__getitem__),
                                           fixations.filter(on_test), data.sizes)
        result.update(mit_auc_test=found["auc_judd"], mit_sauc_test=found["sauc"],
                      mit_sauc_test_splits=found["sauc_splits"])
    return result


def aggregate(results):
    """Cross-validated scores of the folds of one readout (a list of :func:`fold_scores` results).

    Information gains pool the folds' sums (every fixation weighs the same, :class:`repro.metrics.InformationSums`);
    AUCs are the folds' mean.

    Returns
    -------
    dict
        ``explained_<role>`` (fraction of the gold standard's gain) and ``ig_<role>`` (bit/fix) for each of
        :data:`ROLES` (where the folds have ``'gains'``); fold means of ``sauc_train``, ``sauc_test``, ``auc_test`` and, where every fold has them, of the
        MIT benchmark's ``mit_auc_test``, ``mit_sauc_test``, ``mit_sauc_test_splits``.
    """
    out = {}
    for role in ROLES if all("gains" in r for r in results) else ():      # folds scored without a baseline: none
        pooled = sum((metrics.InformationSums(**r["gains"][role]) for r in results), metrics.InformationSums())
        out[f"explained_{role}"] = pooled.explained_information
        out[f"ig_{role}"] = pooled.information_gain
    for key in ("sauc_train", "sauc_test", "auc_test", "mit_auc_test", "mit_sauc_test", "mit_sauc_test_splits"):
        if all(key in r for r in results):
            out[key] = float(np.mean([r[key] for r in results]))
    return out


def subject_cross_validation(store, stimuli, fixations, train_images, test_images, layers, log_centerbias,
                             baseline_ll, gold_ll, subjects=None, progress=True, **fit_options):
    """Leave-one-subject-out cross-validation of DeepGaze I, as the paper trains and evaluates it: the loop the
    experiments' grid runs as separate jobs (:func:`fold`, :func:`fold_scores`, :func:`aggregate`), in this process.

    Parameters
    ----------
    store, stimuli, fixations, train_images, test_images, layers, log_centerbias, baseline_ll, gold_ll
        As for :func:`prepare`.
    subjects : sequence of int, optional
        Subjects to hold out (default: all; fewer gives a quicker, partial cross-validation).
    progress : bool
    **fit_options
        Passed to :func:`repro.training.train_model` (``regularization``, ``num_passes``, ``n_batches``, ``seed``).

    Returns
    -------
    dict
        ``'scores'``: :func:`aggregate` of the folds; ``'folds'``: each fold's :func:`fold_scores`; ``'models'``:
        the fitted readouts; ``'subjects'``: the held-out subjects.
    """
    subjects = fixations.subjects if subjects is None else np.asarray(subjects)
    data = prepare(store, stimuli, fixations, train_images, test_images, layers, log_centerbias, baseline_ll,
                   gold_ll, progress=progress)
    models, folds = [], []
    for subject in tqdm(subjects, desc="held-out subjects", disable=not progress):
        model = fold(data, fixations, subject, layers, metadata={"network": getattr(store.extractor, "metadata", None)},
                     **fit_options)
        models.append(model)
        folds.append(fold_scores(model, data, fixations, subject))
    return {"scores": aggregate(folds), "folds": folds, "models": models, "subjects": [int(s) for s in subjects]}
