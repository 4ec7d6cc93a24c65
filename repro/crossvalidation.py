"""Leave-one-subject-out cross-validation, the paper's protocol (Section 2.3).

"To avoid overfitting to the subjects, leave-one-out cross-validation over the 15 subjects contained in
the database was used." One *fold* holds out one subject: the readout is fitted to the other subjects'
fixations on the training images, then every fixation is scored, and each lands in one role:

* ``test_subjects``: the held-out subject's fixations on the training images;
* ``train_subjects``: the other subjects' fixations there (what the fold was fitted to);
* ``test_images``: every fixation on the test images.

What all folds of one readout share (features, centre bias in cells, feature scales) is prepared once
(:func:`prepare`); :func:`fold` fits one fold and :func:`score` scores it. :func:`subject_cross_validation`
runs all folds in this process; ``repro.experiments`` runs the same :func:`fold` as one job of a cached,
distributed grid.
"""
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from . import metrics
from .training import MEMORY_BUDGET, fixation_log_likelihoods, log_masses, prepare_images, saliencies, train_model

__all__ = ["Prepared", "prepare", "fold", "score", "roles", "subject_cross_validation"]


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
    seconds : float
        Time it took.
    """
    train: list
    test: list
    images: np.ndarray
    positions: list
    scales: np.ndarray
    geometry: object
    seconds: float = 0.0


def prepare(store, stimuli, fixations, train_images, test_images, layers, log_centerbias, progress=False):
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
    log_centerbias : CenterBias or callable
        The leave-one-image-out centre bias (see :func:`repro.training.log_prior_in_cells`).
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
    return Prepared(train, test, images, positions, scales, store.extractor.geometry(layers),
                    time.perf_counter() - start)


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
    """``{role: mask over fixations}`` of the fold of held-out ``subject`` (the module's three roles)."""
    on_train = np.isin(fixations.n, train_images)
    return {"test_subjects": on_train & (fixations.subject == subject),
            "train_subjects": on_train & (fixations.subject != subject),
            "test_images": np.isin(fixations.n, test_images)}


def subject_cross_validation(store, stimuli, fixations, train_images, test_images, layers,
                             log_centerbias, subjects=None, progress=True, **fit_options):
    """Leave-one-subject-out cross-validation of DeepGaze I, as the paper trains and evaluates it.

    Every fold (:func:`fold`) is scored on all fixations (:func:`score`); each fixation's log-likelihoods
    are averaged over the folds in which it has a role (information gains, being linear in them, are then
    the fold averages).

    Parameters
    ----------
    store, stimuli, fixations, train_images, test_images, layers, log_centerbias
        As for :func:`prepare`.
    subjects : sequence of int, optional
        Subjects to hold out (default: all; fewer gives a quicker, partial cross-validation).
    progress : bool
    **fit_options
        Passed to :func:`repro.training.train_model` (``regularization``, ``num_passes``, ``n_batches``, ``seed``).

    Returns
    -------
    dict
        ``'ll_test_subjects'``, ``'ll_train_subjects'``, ``'ll_test_images'``: per-fixation log-likelihoods
        (nats) aligned with ``fixations``, NaN where a fixation never has that role; ``'models'``: the fitted
        models; ``'subjects'``: the held-out subjects.
    """
    subjects = fixations.subjects if subjects is None else np.asarray(subjects)
    data = prepare(store, stimuli, fixations, train_images, test_images, layers, log_centerbias, progress=progress)
    sums = {key: np.zeros(len(fixations)) for key in ("test_subjects", "train_subjects", "test_images")}
    counts = {key: np.zeros(len(fixations)) for key in sums}
    models = []
    for subject in tqdm(subjects, desc="held-out subjects", disable=not progress):
        model = fold(data, fixations, subject, layers, metadata={"network": getattr(store.extractor, "metadata", None)},
                     **fit_options)
        models.append(model)
        ll = score(model, data, len(fixations), maps=False)
        for key, mask in roles(fixations, subject, train_images, test_images).items():
            sums[key][mask] += ll[mask]
            counts[key][mask] += 1
    result = {f"ll_{key}": np.where(counts[key] > 0, sums[key] / np.maximum(counts[key], 1), np.nan)
              for key in sums}
    result.update(models=models, subjects=list(subjects))
    return result
