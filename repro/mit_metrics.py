"""The MIT Saliency Benchmark's metric definitions, as its MATLAB code (``code_forMetrics`` of cvzoya/saliency)
computes them: the family to use when comparing with published MIT300 numbers (the paper's Figure 4).

Written from the benchmark's published description and observed behaviour, not translated from its code;
``tests/test_mit_metrics.py`` checks it against the benchmark's own outputs on real OSIE cases and
``docs/metrics.md`` ("MIT benchmark definitions") lists where it differs from :mod:`repro.metrics` (the
pysaliency-style family).

One-image functions take the benchmark's arguments: a saliency map ``(h, w)`` (any real map; resized to the
image, :func:`resize`, where its size differs), a *binary fixation map* ``(H, W)`` (:func:`fixation_map`:
1 at every fixated pixel ``(int(y), int(x))``, a pixel fixated twice counts once), and for the map-based
metrics a second map. The stochastic AUCs draw their non-fixations from a ``numpy.random.RandomState``
(seeded; the benchmark used MATLAB's generator, so single draws differ, their spread agrees) and return a
:class:`SplitAUC`: the mean over the splits, which is the benchmark's score, and every split's value.

The ``dataset_*`` functions score many images: maps given any way :func:`repro.density.as_density`
accepts, fixations a :class:`repro.datasets.Fixations`, ``sizes`` the ``(height, width)`` of every image.
A density model's maps are log-densities and are scored as densities, ``exp(log_density(n))``; arrays,
lists and functions are scored as they are (a :class:`repro.metrics.CellMap` as its pixel array). They
return one value per image with fixations, in increasing image index; the benchmark's score of a dataset
is the mean over images.
"""
from dataclasses import dataclass

import numpy as np

from .datasets import check_fixations, check_points
from .density import DensityModel, as_density
from .metrics import image_groups, rescaled_pixels

__all__ = ["MATLAB_EPS", "SplitAUC", "resize", "rescale", "fixation_map", "other_map", "auc_judd", "auc_borji",
           "auc_shuffled", "nss", "cc", "kl_divergence", "similarity", "info_gain", "saliency_map_of",
           "dataset_auc_judd", "dataset_auc_borji", "dataset_auc_shuffled", "dataset_nss", "dataset_info_gain",
           "dataset_map_metric", "benchmark_aucs"]

#: MATLAB's ``eps`` (``2 ** -52``), unrounded: what the benchmark's ``KLdiv`` and ``InfoGain`` add.
#: (:data:`repro.metrics.MIT_EPS` is it rounded to 2.2204e-16.)
MATLAB_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class SplitAUC:
    """A stochastic AUC: the value of every random split of non-fixations, and their mean (the score).

    Attributes
    ----------
    splits : ndarray, shape (n_splits,)
    """
    splits: np.ndarray

    @property
    def mean(self):
        """The benchmark's score: the mean over the splits."""
        return float(np.mean(self.splits))

    @property
    def std(self):
        """Standard deviation over the splits (ddof=1, as MATLAB's ``std``)."""
        return float(np.std(self.splits, ddof=1)) if len(self.splits) > 1 else 0.0

    def __float__(self):
        return self.mean


# --------------------------------------------------------------------------- preprocessing

def _keys_cubic(x):
    """The bicubic kernel of Keys with ``a = -0.5`` (MATLAB's ``imresize`` default)."""
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x ** 2 + 1
    far = ((-0.5 * x + 2.5) * x - 4) * x + 2
    return np.where(x <= 1, near, np.where(x <= 2, far, 0.0))


def _resize_matrix(n_in, n_out):
    """``(n_out, n_in)`` weights of one axis of MATLAB's bicubic ``imresize``: pixel centres aligned, the kernel
    widened by the shrink factor (antialiasing) when shrinking, edges mirrored."""
    scale = n_out / n_in
    widen = min(scale, 1.0)
    centres = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)      # 1-based input coordinates
    taps = int(np.ceil(4 / widen)) + 2
    sources = np.floor(centres - 2 / widen)[:, None] + np.arange(taps)
    weights = widen * _keys_cubic(widen * (centres[:, None] - sources))
    weights /= weights.sum(axis=1, keepdims=True)
    mirrored = np.r_[np.arange(n_in), np.arange(n_in)[::-1]][np.mod(sources - 1, 2 * n_in).astype(int)]
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps), mirrored.ravel()), weights.ravel())
    return matrix


def resize(saliency_map, shape):
    """A map resized to ``shape`` as MATLAB's ``imresize(map, shape)`` does (bicubic, antialiased when
    shrinking); returned unchanged (as float) when it has that shape already.

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    shape : tuple (H, W)

    Returns
    -------
    ndarray, shape (H, W), float64
    """
    saliency_map = np.asarray(saliency_map, dtype=float)
    if saliency_map.shape == tuple(shape):
        return saliency_map
    rows, cols = _resize_matrix(saliency_map.shape[0], shape[0]), _resize_matrix(saliency_map.shape[1], shape[1])
    return rows @ saliency_map @ cols.T


def rescale(saliency_map):
    """``(s - min) / (max - min)``, the map in [0, 1]; all nan for a constant map (MATLAB's 0 / 0).

    Parameters
    ----------
    saliency_map : array_like, shape (H, W)
    """
    saliency_map = np.asarray(saliency_map, dtype=float)
    low, high = saliency_map.min(), saliency_map.max()
    if high == low:
        return np.full(saliency_map.shape, np.nan)
    return (saliency_map - low) / (high - low)


def fixation_map(shape, x, y):
    """The benchmark's binary fixation map: True at every fixated pixel ``(int(y), int(x))`` (truncated).

    Parameters
    ----------
    shape : tuple (H, W)
    x, y : array_like, shape (n_fixations,)
        Pixel coordinates, origin at the top-left corner; all inside the image.

    Returns
    -------
    ndarray of bool, shape (H, W)
        A pixel fixated more than once is True once.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_points(x, y, shape, "fixation map")
    fixated = np.zeros(shape, dtype=bool)
    fixated[y.astype(int), x.astype(int)] = True
    return fixated


def _fixated(saliency_map, fixations):
    """The saliency map at the size of the binary fixation map, and the map's values at the fixated pixels."""
    fixations = np.asarray(fixations, dtype=bool)
    if not fixations.any():
        raise ValueError("no fixated pixel: the benchmark's score is undefined (MATLAB returns NaN)")
    return resize(saliency_map, fixations.shape), fixations


# --------------------------------------------------------------------------- AUC family

def auc_judd(saliency_map, fixations, jitter=False, seed=0):
    """AUC-Judd (the benchmark's ``AUC_Judd``).

    The map (resized to the image; with ``jitter``, plus uniform noise in [0, 1e-7) first) is rescaled
    to [0, 1]. Thresholds are the values at the fixated pixels; at the ``i``-th highest threshold the
    hit rate is ``i / n_fixated`` (ties among fixated values get no half credit) and the false-alarm rate
    ``(#pixels >= threshold - i) / (#pixels - n_fixated)``; the ROC curve runs from (0, 0) to (1, 1).

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    fixations : array_like of bool, shape (H, W)
        Binary fixation map (:func:`fixation_map`).
    jitter : bool
        Add the benchmark's tie-breaking noise (its default is on; the reference runs use off).
    seed : int or numpy.random.RandomState
        For the noise.

    Returns
    -------
    float
        nan for a constant map without jitter (MATLAB's 0 / 0 rescaling).
    """
    saliency, fixations = _fixated(saliency_map, fixations)
    if jitter:
        saliency = saliency + _random_state(seed).rand(*saliency.shape) / 1e7
    saliency = rescale(saliency)
    if np.isnan(saliency).all():
        return float("nan")
    thresholds = np.sort(saliency[fixations])[::-1]
    n_fixated, n_pixels = len(thresholds), saliency.size
    above = n_pixels - np.searchsorted(np.sort(saliency, axis=None), thresholds, "left")
    ranks = np.arange(1, n_fixated + 1)
    hits = np.r_[0, ranks / n_fixated, 1]
    false_alarms = np.r_[0, (above - ranks) / (n_pixels - n_fixated), 1]
    return float(np.trapz(hits, false_alarms))


def _random_state(seed):
    return seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)


def _thresholds(step_size, top):
    """GNU Octave's range ``0:step_size:top``, highest first (elements ``i * step_size``, the last clipped to
    ``top``); empty for a nan ``top``."""
    if np.isnan(top):
        return np.empty(0)
    count = int(np.floor(top / step_size * (1 + 3 * MATLAB_EPS))) + 1
    values = np.arange(count) * step_size
    values[-1] = min(values[-1], top)
    return values[::-1]


def _split_auc(positives, negatives, step_size):
    """Area under the ROC curve of one split, thresholds at steps of ``step_size`` up to the largest value."""
    thresholds = _thresholds(step_size, np.max(np.r_[positives, negatives]))    # none for a constant map (nan)

    def rate(values):
        return (len(values) - np.searchsorted(np.sort(values), thresholds, "left")) / len(values)

    return float(np.trapz(np.r_[0, rate(positives), 1], np.r_[0, rate(negatives), 1]))


def _rescaled_and_fixated(saliency_map, fixations):
    """The map resized and rescaled, flattened ``(H * W,)``, and its values at the fixated pixels."""
    saliency, fixations = _fixated(saliency_map, fixations)
    saliency = rescale(saliency).ravel()
    return saliency, saliency[fixations.ravel()]


def _auc_over_splits(positives, draw, n_splits, step_size):
    """:class:`SplitAUC` of ``positives`` against the non-fixations ``draw()`` returns, split after split."""
    return SplitAUC(np.array([_split_auc(positives, draw(), step_size) for _ in range(n_splits)]))


def auc_borji(saliency_map, fixations, n_splits=100, step_size=0.1, seed=0):
    """AUC-Borji (the benchmark's ``AUC_Borji``).

    The map (resized, rescaled to [0, 1]) at the fixated pixels are the positives. Each split draws as many
    non-fixations as there are fixated pixels, uniformly over all pixels of the image with replacement
    (fixated ones included); thresholds run from the split's largest value down to 0 in steps of ``step_size``.

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    fixations : array_like of bool, shape (H, W)
    n_splits : int
    step_size : float
    seed : int or numpy.random.RandomState

    Returns
    -------
    SplitAUC
        ``float()`` of it (its ``mean``) is the benchmark's score. A constant map gives 0.5.
    """
    saliency, positives = _rescaled_and_fixated(saliency_map, fixations)
    rng = _random_state(seed)
    return _auc_over_splits(positives, lambda: saliency[rng.randint(0, saliency.size, len(positives))],
                            n_splits, step_size)


def auc_shuffled(saliency_map, fixations, other, n_splits=100, step_size=0.1, seed=0):
    """Shuffled AUC (the benchmark's ``AUC_shuffled``).

    As :func:`auc_borji`, but each split's non-fixations are ``min(n_fixated, n_other)`` distinct pixels
    drawn at random (without replacement) from the pixels fixated on other images (``other``, the
    benchmark's ``otherMap``: a pixel fixated on several images counts once).

    Parameters
    ----------
    other : array_like of bool, shape (H, W)
        Binary map of the pixels fixated on the other images (:func:`other_map`).
    saliency_map, fixations, n_splits, step_size, seed
        As for :func:`auc_borji`.

    Returns
    -------
    SplitAUC
    """
    saliency, positives = _rescaled_and_fixated(saliency_map, fixations)
    candidates = saliency[np.asarray(other, dtype=bool).ravel()]
    if not len(candidates):
        raise ValueError("no pixel fixated on other images: shuffled AUC has no non-fixations")
    count, rng = min(len(positives), len(candidates)), _random_state(seed)
    return _auc_over_splits(positives, lambda: candidates[rng.permutation(len(candidates))[:count]],
                            n_splits, step_size)


# --------------------------------------------------------------------------- NSS, CC, KL, SIM, InfoGain

def nss(saliency_map, fixations):
    """NSS (the benchmark's ``NSS``): the map (resized) standardised with MATLAB's ``std`` (ddof=1), averaged
    over the fixated pixels (each once). No rescaling. nan for a constant map.

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    fixations : array_like of bool, shape (H, W)

    Returns
    -------
    float
    """
    saliency, fixations = _fixated(saliency_map, fixations)
    standardised = (saliency - saliency.mean()) / saliency.std(ddof=1)
    return float(standardised[fixations].mean())


def cc(saliency_map, map_2):
    """CC (the benchmark's ``CC``): Pearson correlation of the two maps, the first resized to the second's size.

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    map_2 : array_like, shape (H, W)
        E.g. a continuous (blurred) fixation map.

    Returns
    -------
    float
        nan if either map is constant.
    """
    second = np.asarray(map_2, dtype=float)
    first, second = resize(saliency_map, second.shape).ravel(), second.ravel()
    first, second = first - first.mean(), second - second.mean()
    return float(np.sum(first * second) / np.sqrt(np.sum(first ** 2) * np.sum(second ** 2)))


def _distribution(saliency_map):
    """A map divided by its sum, unless it is all zero (then unchanged)."""
    return saliency_map / saliency_map.sum() if saliency_map.any() else saliency_map


def kl_divergence(saliency_map, fixation_density):
    """KL divergence in nats (the benchmark's ``KLdiv``): both maps divided by their sums (no shift, no
    rescaling; the first resized to the second), ``sum q * log(eps + q / (p + eps))`` with MATLAB's
    unrounded ``eps`` (:data:`MATLAB_EPS`).

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
        ``p``, the model.
    fixation_density : array_like, shape (H, W)
        ``q``, the continuous fixation map.

    Returns
    -------
    float
    """
    gold = np.asarray(fixation_density, dtype=float)
    model, gold = _distribution(resize(saliency_map, gold.shape)), _distribution(gold)
    return float(np.sum(gold * np.log(MATLAB_EPS + gold / (model + MATLAB_EPS))))


def _rescaled_distribution(saliency_map):
    """Rescaled to [0, 1], then divided by its sum; an all-zero map stays zero."""
    return _distribution(rescale(saliency_map)) if saliency_map.any() else saliency_map


def similarity(saliency_map, map_2):
    """SIM (the benchmark's ``similarity``): ``sum min(p1, p2)`` of the two maps each rescaled to [0, 1] and
    then divided by its sum (the first resized to the second's size).

    Parameters
    ----------
    saliency_map : array_like, shape (h, w)
    map_2 : array_like, shape (H, W)

    Returns
    -------
    float
    """
    second = np.asarray(map_2, dtype=float)
    first = resize(saliency_map, second.shape)
    return float(np.minimum(_rescaled_distribution(first), _rescaled_distribution(second)).sum())


def info_gain(saliency_map, fixations, baseline_map):
    """Information gain in bit per fixated pixel (the benchmark's ``InfoGain``).

    Both maps (resized to the image) are rescaled to [0, 1] and divided by their sums; the score is the mean
    over the fixated pixels (each once) of ``log2(eps + p) - log2(eps + p_baseline)``.

    Parameters
    ----------
    saliency_map, baseline_map : array_like, shapes (h, w) and (h', w')
    fixations : array_like of bool, shape (H, W)

    Returns
    -------
    float
    """
    saliency, fixations = _fixated(saliency_map, fixations)
    model = _distribution(rescale(saliency))[fixations]
    baseline = _distribution(rescale(resize(baseline_map, fixations.shape)))[fixations]
    return float(np.mean(np.log2(MATLAB_EPS + model) - np.log2(MATLAB_EPS + baseline)))


# --------------------------------------------------------------------------- datasets

def saliency_map_of(saliency_maps, n):
    """The saliency map the benchmark would be given for image ``n``.

    Parameters
    ----------
    saliency_maps : DensityModel, callable, sequence or mapping
        See :func:`repro.density.as_density`. A density model's log-density is exponentiated; anything else
        is taken as it is (a :class:`repro.metrics.CellMap` as its pixel array).
    n : int

    Returns
    -------
    ndarray, shape (h, w), float64
    """
    found = np.asarray(as_density(saliency_maps).log_density(n), dtype=float)
    return np.exp(found) if isinstance(saliency_maps, DensityModel) else found


def other_map(fixations, sizes, n, images=None):
    """The ``otherMap`` of image ``n``: the pixels fixated on other images, their coordinates rescaled to
    image ``n``'s size (:func:`repro.metrics.rescaled_pixels`), as a binary map.

    Parameters
    ----------
    fixations : Fixations
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index.
    n : int
    images : array_like of int, optional
        The other images to take (default: all but ``n``; Borji's setting is 10 random ones).

    Returns
    -------
    ndarray of bool, shape sizes[n]
    """
    height, width = (int(v) for v in np.asarray(sizes)[n])
    chosen = fixations.n != n if images is None else np.isin(fixations.n, images) & (fixations.n != n)
    rows, cols = rescaled_pixels(fixations.filter(chosen), sizes, (height, width))
    found = np.zeros((height, width), dtype=bool)
    found[rows, cols] = True
    return found


def _each_image(saliency_maps, fixations, sizes, score):
    """``score(n, saliency_map, binary_fixation_map)`` of every image with fixations, in image order."""
    check_fixations(fixations, sizes, "MIT metrics")
    sizes = np.asarray(sizes)
    values = []
    for n, indices in image_groups(fixations):
        fixated = fixation_map(tuple(int(v) for v in sizes[n]), fixations.x[indices], fixations.y[indices])
        values.append(score(n, saliency_map_of(saliency_maps, n), fixated))
    return values


def dataset_auc_judd(saliency_maps, fixations, sizes, jitter=False, seed=0):
    """:func:`auc_judd` of every image with fixations; the noise drawn from one ``RandomState(seed)``.

    Returns
    -------
    ndarray, shape (n_images_with_fixations,)
    """
    rng = _random_state(seed)
    return np.array(_each_image(saliency_maps, fixations, sizes,
                                lambda n, saliency, fixated: auc_judd(saliency, fixated, jitter, rng)))


def dataset_auc_borji(saliency_maps, fixations, sizes, n_splits=100, step_size=0.1, seed=0):
    """:func:`auc_borji` of every image with fixations, drawing from one ``RandomState(seed)``.

    Returns
    -------
    list of SplitAUC, one per image with fixations
    """
    rng = _random_state(seed)
    return _each_image(saliency_maps, fixations, sizes,
                       lambda n, saliency, fixated: auc_borji(saliency, fixated, n_splits, step_size, rng))


def dataset_auc_shuffled(saliency_maps, fixations, sizes, n_splits=100, step_size=0.1, seed=0, n_other=None):
    """:func:`auc_shuffled` of every image with fixations against its :func:`other_map`.

    Parameters
    ----------
    n_other : int, optional
        Take the fixations of this many other images drawn at random among those with fixations (the benchmark's
        10) instead of all others.
    seed : int or numpy.random.RandomState
        One generator for everything, image after image.

    Returns
    -------
    list of SplitAUC, one per image with fixations
    """
    rng = _random_state(seed)
    with_fixations = np.unique(fixations.n)

    def score(n, saliency, fixated):
        others = with_fixations[with_fixations != n]
        images = None if n_other is None else rng.choice(others, min(n_other, len(others)), replace=False)
        return auc_shuffled(saliency, fixated, other_map(fixations, sizes, n, images), n_splits, step_size, rng)

    return _each_image(saliency_maps, fixations, sizes, score)


def dataset_nss(saliency_maps, fixations, sizes):
    """:func:`nss` of every image with fixations.

    Returns
    -------
    ndarray, shape (n_images_with_fixations,)
    """
    return np.array(_each_image(saliency_maps, fixations, sizes, lambda n, saliency, fixated: nss(saliency, fixated)))


def dataset_info_gain(saliency_maps, baseline_maps, fixations, sizes):
    """:func:`info_gain` of every image with fixations over ``baseline_maps`` (read like ``saliency_maps``).

    Returns
    -------
    ndarray, shape (n_images_with_fixations,)
    """
    return np.array(_each_image(saliency_maps, fixations, sizes, lambda n, saliency, fixated: info_gain(
        saliency, fixated, saliency_map_of(baseline_maps, n))))


def dataset_map_metric(metric, saliency_maps, other_maps, images):
    """``metric(saliency_map, other_map)`` (:func:`cc`, :func:`kl_divergence`, :func:`similarity`) of every
    image index in ``images``; both kinds of maps read as :func:`saliency_map_of` does.

    Returns
    -------
    ndarray, shape (len(images),)
    """
    return np.array([metric(saliency_map_of(saliency_maps, n), saliency_map_of(other_maps, n)) for n in images])


def benchmark_aucs(prior_maps, flat_maps, fixations, sizes, seed=0, n_other=10):
    """The two numbers the paper's Figure 4 compares with MIT300, as the benchmark computes them on a set of images.

    Parameters
    ----------
    prior_maps : DensityModel, callable, sequence or mapping
        The maps with the model's centre bias (AUC-Judd is scored on them, with the benchmark's jitter).
    flat_maps : DensityModel, callable, sequence or mapping
        The maps without it (a uniform prior: shuffled AUC). May be ``prior_maps``, for a model with no prior of
        its own (the centre bias itself).
    fixations : repro.datasets.Fixations
        The scored fixations; shuffled AUC's non-fixations are drawn from those of ``n_other`` other images
        among them (the benchmark's 10), 100 splits at threshold steps of 0.1.
    sizes : array_like, shape (n_images, 2)
    seed : int
        One ``RandomState(seed)`` for the jitter, another for the shuffled AUC's draws.
    n_other : int

    Returns
    -------
    dict
        ``auc_judd`` and ``sauc``: means over the images (fractions); ``sauc_splits``: the standard deviation over
        the 100 splits of the images' mean (each split's value averaged over the images): how much the
        benchmark's random draws move the score.
    """
    judd = dataset_auc_judd(prior_maps, fixations, sizes, jitter=True, seed=seed)
    shuffled = dataset_auc_shuffled(flat_maps, fixations, sizes, seed=seed, n_other=n_other)
    per_split = np.mean([auc.splits for auc in shuffled], axis=0)            # (n_splits,): the score of each split
    return {"auc_judd": float(np.mean(judd)), "sauc": float(np.mean(per_split)),
            "sauc_splits": float(np.std(per_split, ddof=1))}
