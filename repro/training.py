"""Training DeepGaze I: maximum likelihood with SFO over minibatches of images.

The paper: "To minimize the cost function on the training set of fixations, the mini-batch based
BFGS method as described in Sohl-Dickstein et al. (2014) was used. [...] To avoid overfitting to the
subjects, leave-one-out cross-validation over the 15 subjects contained in the database was used."

The cost on N training fixations is

    c(w, sigma, alpha) = -1/N sum_i log p(x_i, y_i) + lambda ||w||_1 / ||w||_2,

split into SFO subfunctions, each a group of images with their fixations (the penalty is shared
equally among the subfunctions, so the subfunctions sum to the cost).
"""
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from tqdm.auto import tqdm

from . import metrics
from .features import feature_scales, grid_shape
from .model import DEFAULT_LAMBDA, DeepGazeI
from .sfo import SFO


#: Training data larger than this (bytes of feature maps) is read from the feature cache on demand.
MEMORY_BUDGET = 4 * 2 ** 30


@dataclass
class ImageData:
    """What the readout needs of one image.

    Attributes
    ----------
    source : list of ndarray, each (C_l, h_l, w_l), or callable
        The image's feature maps, or a function returning them (read from disk on demand,
        see :meth:`repro.features.FeatureStore.reader`); :attr:`features` gives the maps.
    log_centerbias : ndarray, shape (H, W)
        Log prior at the image's pixels (zeros: uniform prior).
    x, y : ndarray, shape (n,)
        Fixations in pixels (origin top-left), scored at ``(int(y), int(x))``.
    """

    source: object
    log_centerbias: np.ndarray
    x: np.ndarray
    y: np.ndarray
    _index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        height, width = self.log_centerbias.shape
        x, y = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
        outside = ~((x >= 0) & (x < width) & (y >= 0) & (y < height))       # before truncation; NaN too
        if outside.any():
            bad = np.flatnonzero(outside)[0]
            raise ValueError(f"fixation ({self.x[bad]}, {self.y[bad]}) lies outside the {width} x {height} image")
        self._index = y.astype(int) * width + x.astype(int)

    @property
    def features(self):
        """The feature maps, list of ``(C_l, h_l, w_l)``."""
        return self.source() if callable(self.source) else self.source

    @property
    def fixation_index(self):
        """Flat pixel indices ``int(y) * W + int(x)``, shape (n,)."""
        return self._index


def _uniform_or(log_centerbias, n, shape):
    """Log prior ``(H, W)`` of image ``n``: ``log_centerbias(n)``, or zeros (uniform) if it is None."""
    return np.zeros(shape, np.float32) if log_centerbias is None else np.asarray(log_centerbias(n), np.float32)


def prepare_images(store, stimuli, fixations, layers, log_centerbias=None, images=None, in_memory="auto",
                   progress=True):
    """Collect what training or evaluation needs of each image.

    Parameters
    ----------
    store : repro.features.FeatureStore
    stimuli : repro.datasets.Stimuli
    fixations : repro.datasets.Fixations
        Fixations of any images of ``stimuli`` (``n`` indexes ``stimuli``).
    layers : list of str
    log_centerbias : callable, optional
        ``log_centerbias(n) -> (H, W)`` log prior of image ``n``, e.g.
        ``lambda n: center_bias.log_density(n)`` (leave-one-image-out). Default: uniform.
    images : sequence of int, optional
        Image indices to prepare (default: every image that has fixations).
    in_memory : bool or "auto"
        Hold the feature maps in memory, or read them from the store's files whenever they are used.
        ``"auto"``: in memory unless they would take more than :data:`MEMORY_BUDGET` bytes
        (estimated from the first image).
    progress : bool

    Returns
    -------
    list of ImageData, in the order of ``images``
    """
    images = fixations.images if images is None else np.asarray(images, dtype=int)
    prepared = []
    for n in tqdm(images, desc="images", disable=not progress, unit="img"):
        image = stimuli[int(n)]
        if not prepared and in_memory == "auto":
            size = sum(f.nbytes for f in store.features(image, layers))
            in_memory = size * len(images) <= MEMORY_BUDGET
        source = store.features(image, layers) if in_memory else store.reader(image, layers)
        on_image = fixations.for_images([n])
        prepared.append(ImageData(source, _uniform_or(log_centerbias, int(n), image.shape[:2]),
                                  on_image.x, on_image.y))
    return prepared


def density_function(model, store, stimuli, log_centerbias=None):
    """``n -> (H, W)`` log-density of ``model`` on image ``n``, computed when asked (nothing kept).

    What the metrics of :mod:`repro.metrics` take as ``log_densities`` / ``saliency_maps``; each
    call reads the image's features from ``store``. ``log_centerbias`` as in :func:`prepare_images`.
    """
    def log_density(n):
        image = stimuli[int(n)]
        return model.log_density_from_features(store.features(image, model.layers),
                                               _uniform_or(log_centerbias, int(n), image.shape[:2]))
    return log_density


def minibatches(n_images, n_batches, seed=0):
    """Split image indices into ``n_batches`` groups of nearly equal size, shuffled by ``seed``.

    Returns
    -------
    list of ndarray of int
    """
    n_batches = max(1, min(n_batches, n_images))
    order = np.random.RandomState(seed).permutation(n_images)
    return [np.sort(part) for part in np.array_split(order, n_batches)]


def objective(model, images, batches):
    """The SFO subfunctions of the DeepGaze I cost.

    Parameters
    ----------
    model : repro.model.DeepGazeI
    images : list of ImageData
    batches : list of ndarray of int
        Image indices of each subfunction.

    Returns
    -------
    f_df : callable ``(theta, batch_index) -> (value, grad)``
        ``theta`` and ``grad`` as :attr:`repro.model.DeepGazeI.parameters`.
    """
    n_fixations = sum(len(image.fixation_index) for image in images)
    if n_fixations == 0:
        raise ValueError("no training fixations")

    def f_df(theta, batch_index):
        penalty, penalty_grad = model.penalty_and_grad(theta)
        value = penalty / len(batches)
        grad = {"w": penalty_grad / len(batches), "log_sigma": np.array(0.0), "alpha": np.array(0.0)}
        for index in batches[batch_index]:
            image = images[index]
            if len(image.fixation_index) == 0:
                continue
            loglik, loglik_grad = model.loglik_and_grad(image.features, image.log_centerbias,
                                                        image.fixation_index, theta)
            value -= loglik / n_fixations
            for key in grad:
                grad[key] = grad[key] - loglik_grad[key] / n_fixations
        return value, grad

    return f_df


def fit(model, images, n_batches=10, num_passes=20, seed=0, progress=True):
    """Fit ``w``, ``sigma`` and ``alpha`` of ``model`` to the fixations of ``images`` with SFO.

    Parameters
    ----------
    model : repro.model.DeepGazeI
        Its current parameters are the starting point; it is updated in place.
    images : list of ImageData
    n_batches : int
        Number of SFO subfunctions (groups of images).
    num_passes : int
        Effective passes through the data.
    seed : int
        Seeds the grouping of images and SFO's own choices.
    progress : bool

    Returns
    -------
    history : dict
        ``{'objective': [...], 'passes': [...]}``, the full cost after each pass as SFO recorded it.
    """
    batches = minibatches(len(images), n_batches, seed)
    optimizer = SFO(objective(model, images, batches), model.parameters, list(range(len(batches))),
                    seed=seed, display=0)
    for _ in tqdm(range(num_passes), desc="SFO passes", disable=not progress):
        model.parameters = optimizer.optimize(num_passes=1)
    return optimizer.history


def log_likelihoods(model, images):
    """Per-fixation log-likelihoods (nats) of ``model`` on ``images``, concatenated in image order."""
    return np.concatenate([model.log_density_from_features(image.features, image.log_centerbias)
                           .ravel()[image.fixation_index] for image in images])


def train_model(images, layers, regularization=DEFAULT_LAMBDA, n_batches=10, num_passes=20, seed=0,
                sigma=None, progress=True, metadata=None, geometry=None):
    """Build a DeepGaze I readout for ``layers`` and fit it to ``images``.

    The feature scales (unit standard deviation) are computed on ``images``, the training data.

    Parameters
    ----------
    images : list of ImageData
    layers : list of str
    regularization : float
        lambda of the sparsity penalty (0.001 in the paper).
    n_batches, num_passes, seed, progress
        As in :func:`fit`.
    sigma : float, optional
        Initial blur in grid cells (default: 2 % of the grid diagonal, at least 1).
    metadata : dict, optional
        Saved with the model.
    geometry : list of (float, float), optional
        Receptive-field placement of the maps (see :class:`repro.model.DeepGazeI`); default: stretched.

    Returns
    -------
    model : repro.model.DeepGazeI
    history : dict
    """
    channels = [f.shape[0] for f in images[0].features]
    grid = grid_shape([f.shape for f in images[0].features])
    sigma = max(1.0, 0.02 * np.hypot(*grid)) if sigma is None else sigma
    # Random start with ||w||_2 about 0.5 (a saliency of about half a nat): at much smaller norms the
    # scale-free penalty ||w||_1 / ||w||_2 is so curved that SFO's first steps are tiny.
    start = np.random.RandomState(seed).randn(sum(channels)) * 0.5 / np.sqrt(sum(channels))
    model = DeepGazeI(layers, channels, feature_scales(image.features for image in images),
                      w=start, sigma=sigma, alpha=1.0,
                      regularization=regularization, metadata=metadata, geometry=geometry)
    history = fit(model, images, n_batches=n_batches, num_passes=num_passes, seed=seed, progress=progress)
    return model, history


def log_densities(model, images):
    """The model's log-density ``(H, W)`` of each image, as a list in the order of ``images``."""
    return [model.log_density_from_features(image.features, image.log_centerbias) for image in images]


def subject_cross_validation(store, stimuli, fixations, train_images, test_images, layers,
                             log_centerbias, subjects=None, progress=True, **fit_options):
    """Leave-one-subject-out cross-validation of DeepGaze I, as the paper trains and evaluates it.

    For every held-out subject s, a model is fitted to the other subjects' fixations on the training
    images, then evaluated on (a) subject s's fixations on the training images ("test subjects"),
    (b) the other subjects' fixations there ("training subjects"), (c) every fixation on the test
    images. Log-likelihoods are averaged over the folds in which a fixation is scored this way
    (information gains, being linear in them, are then the fold averages).

    Parameters
    ----------
    store : repro.features.FeatureStore
    stimuli : repro.datasets.Stimuli
    fixations : repro.datasets.Fixations
    train_images, test_images : sequence of int
    layers : list of str
    log_centerbias : callable
        ``n -> (H, W)`` log prior of image ``n`` (leave-one-image-out centre bias).
    subjects : sequence of int, optional
        Subjects to hold out (default: all; fewer gives a quicker, partial cross-validation).
    **fit_options
        Passed to :func:`train_model` (``regularization``, ``num_passes``, ``n_batches``, ``seed``).

    Returns
    -------
    dict
        ``'ll_test_subjects'``, ``'ll_train_subjects'``: per-fixation log-likelihoods (nats) aligned with
        ``fixations`` (NaN where a fixation is not on a training image / never scored so);
        ``'ll_test_images'``: likewise for fixations on test images; ``'models'``: the fitted models;
        ``'subjects'``: the held-out subjects.
    """
    train_images, test_images = np.asarray(train_images), np.asarray(test_images)
    log_centerbias = lru_cache(maxsize=None)(log_centerbias)      # each image's prior is computed once
    subjects = fixations.subjects if subjects is None else np.asarray(subjects)
    on_train, on_test = np.isin(fixations.n, train_images), np.isin(fixations.n, test_images)
    sums = {key: np.zeros(len(fixations)) for key in ("test_subjects", "train_subjects", "test_images")}
    counts = {key: np.zeros(len(fixations)) for key in sums}

    def score(model, mask, key):
        sums[key][mask] += metrics.log_likelihoods(density_function(model, store, stimuli, log_centerbias),
                                                   fixations.filter(mask))
        counts[key][mask] += 1

    models = []
    for subject in tqdm(subjects, desc="held-out subjects", disable=not progress):
        training = on_train & (fixations.subject != subject)
        images = prepare_images(store, stimuli, fixations.filter(training), layers, log_centerbias,
                                images=train_images, progress=False)
        metadata = {"held_out_subject": int(subject), "network": getattr(store.extractor, "metadata", None)}
        model, _ = train_model(images, layers, progress=False, metadata=metadata, **fit_options)
        models.append(model)
        score(model, on_train & (fixations.subject == subject), "test_subjects")
        score(model, training, "train_subjects")
        score(model, on_test, "test_images")
    result = {f"ll_{key}": np.where(counts[key] > 0, sums[key] / np.maximum(counts[key], 1), np.nan)
              for key in sums}
    result.update(models=models, subjects=list(subjects))
    return result
