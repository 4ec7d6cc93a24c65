"""Evaluation metrics for fixation densities and saliency maps, as the field computes them.

The definitions follow pysaliency (the DeepGaze authors' library) and the MIT Saliency
Benchmark; ``docs/metrics.md`` lists them with reference values the tests reproduce.

Maps are given per image, one way (:func:`repro.density.as_density`): a density model
(:class:`repro.density.DensityModel`, whose ``log_density(n)`` is scored), a function ``n -> (height,
width)`` array, or maps indexed by ``n`` (a list, an array ``(n_images, height, width)``, a dict), so whole
datasets are scored without holding all maps at once. A map may also be a :class:`CellMap`, a map
constant on rectangular cells (a coarse map upsampled by nearest neighbour, such as DeepGaze I's
density on its readout grid): log-likelihoods, AUC and shuffled AUC then work on the cells, with
exactly the values of the pixel map, without forming it. Fixations are a
:class:`repro.datasets.Fixations` (only ``x``, ``y``, ``n`` are used) and are scored at the pixel
``(int(x), int(y))``. Per-fixation metrics return one value per fixation, in the fixations'
order; :func:`average` turns them into a mean over fixations or over images.

Information gain and explained information have one home: :class:`InformationSums`, the summed
log-likelihood gains in nats over a baseline, from which :func:`information_gain` (bit per fixation) and
:func:`explained_information` (a fraction) are computed, and the folds of a cross-validation are pooled.
"""
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .datasets import check_fixations, check_points, group_by_image
from .density import as_density

__all__ = ["CellMap", "image_groups", "log_likelihoods", "average", "InformationSums", "information_gain",
           "explained_information", "auc_per_fixation", "auc", "auc_judd", "shuffled_auc_per_fixation", "shuffled_auc",
           "rescaled_pixels", "nss_per_fixation", "nss", "cc", "kl_divergence", "mit_kl_divergence", "sim",
           "fixation_map", "per_image", "log_uniform"]

#: Regulariser of the MIT benchmark's KL divergence (MATLAB's ``eps``).
MIT_EPS = 2.2204e-16


def image_groups(fixations):
    """Yield ``(n, indices)`` for every image ``n`` with fixations, ``indices`` into ``fixations``.

    Raises ValueError for an empty set: no measure is defined on no fixations.
    """
    if not len(fixations):
        raise ValueError("no fixations to score (an empty Fixations); every measure needs at least one")
    images, groups = group_by_image(fixations.n)
    for n, indices in zip(images, groups):
        yield int(n), indices


class CellMap:
    """A ``(H, W)`` map constant on cells: pixel ``(y, x)`` has the value ``values[row_cell[y], col_cell[x]]``.

    Parameters
    ----------
    values : ndarray, shape (h, w)
    row_cell, col_cell : ndarray of int, shapes (H,) and (W,)
        The cell row of every pixel row and the cell column of every pixel column.
    """

    def __init__(self, values, row_cell, col_cell):
        self.values = np.asarray(values, dtype=float)
        self.row_cell, self.col_cell = np.asarray(row_cell), np.asarray(col_cell)
        self.shape = (len(self.row_cell), len(self.col_cell))

    def __getitem__(self, index):
        rows, cols = index
        return self.values[self.row_cell[rows], self.col_cell[cols]]

    def __array__(self, dtype=None):
        return self.values[self.row_cell][:, self.col_cell].astype(dtype or float)

    @property
    def pixels(self):
        """``(h, w)``: number of pixels in each cell."""
        return np.outer(np.bincount(self.row_cell, minlength=self.values.shape[0]),
                        np.bincount(self.col_cell, minlength=self.values.shape[1]))


def _map(maps, n, cells=False):
    """Map of image ``n`` of ``maps`` (a :class:`repro.density.DensityModel`, see :func:`repro.density.as_density`),
    as a float array (or as the :class:`CellMap` it is, with ``cells``)."""
    found = as_density(maps).log_density(n)
    return found if cells and isinstance(found, CellMap) else np.asarray(found, dtype=float)


def _pixels(array, fixations, indices, n):
    """Values of ``array`` (height, width) at the fixations ``indices`` of image ``n``."""
    x, y = fixations.x[indices], fixations.y[indices]
    check_points(x, y, array.shape, f"image {n}")
    return array[y.astype(int), x.astype(int)]


# --------------------------------------------------------------------------- likelihoods

def log_likelihoods(log_densities, fixations):
    """Log-likelihood in nats of every fixation under per-image log-densities.

    Parameters
    ----------
    log_densities : DensityModel, callable, sequence or mapping
        ``(height, width)`` log-density of image ``n`` (normalised: ``logsumexp == 0``), see
        :func:`repro.density.as_density`.
    fixations : Fixations

    Returns
    -------
    ndarray, shape (n_fixations,)
    """
    values = np.empty(len(fixations))
    for n, indices in image_groups(fixations):
        values[indices] = _pixels(_map(log_densities, n, cells=True), fixations, indices, n)
    return values


def log_uniform(fixations, sizes):
    """Log-likelihood of every fixation under the uniform model, ``-log(height * width)``.

    ``sizes`` : array_like, shape (n_images, 2), ``(height, width)`` per image index.
    """
    check_fixations(fixations, sizes, "log_uniform")
    sizes = np.asarray(sizes, dtype=float)
    return -np.log(sizes[fixations.n, 0] * sizes[fixations.n, 1])


def average(values, fixations=None, per="fixation"):
    """Mean of per-fixation values over fixations (``per="fixation"``) or over images
    (``per="image"``: first within each image, then over the images with fixations)."""
    values = np.asarray(values, dtype=float)
    if not values.size:
        raise ValueError("no values to average (no fixations)")
    if per == "fixation":
        return float(values.mean())
    if per != "image":
        raise ValueError(f"per must be 'fixation' or 'image', not {per!r}")
    if fixations is None:
        raise ValueError("averaging per image needs the fixations")
    return float(np.mean([values[indices].mean() for _, indices in image_groups(fixations)]))


@dataclass(frozen=True)
class InformationSums:
    """Summed log-likelihood gains (nats) over a baseline, of a model and of the gold standard, on ``n`` fixations.

    What information gain and explained information are computed from, and what the folds of a
    cross-validation are pooled by (``sum(folds, InformationSums())``): pooled, every fixation weighs the
    same. Written to JSON as :meth:`as_dict`.

    Attributes
    ----------
    model : float
        ``sum log p_model(fixation) - log p_baseline(fixation)``, nats.
    gold : float
        The same for the gold standard (nan where none was given).
    n : int
        Number of fixations.
    """
    model: float = 0.0
    gold: float = 0.0
    n: int = 0

    @classmethod
    def of(cls, ll_model, ll_baseline, ll_gold=None):
        """The sums of per-fixation log-likelihoods (nats, arrays of one shape)."""
        ll_model, ll_baseline = np.asarray(ll_model, dtype=float), np.asarray(ll_baseline, dtype=float)
        if ll_model.shape != ll_baseline.shape:
            raise ValueError(f"{ll_model.size} model log-likelihoods but {ll_baseline.size} of the baseline")
        gold = float("nan") if ll_gold is None else float(np.sum(np.asarray(ll_gold, dtype=float) - ll_baseline))
        return cls(float(np.sum(ll_model - ll_baseline)), gold, int(ll_model.size))

    def __add__(self, other):
        return InformationSums(self.model + other.model, self.gold + other.gold, self.n + other.n)

    def as_dict(self):
        return asdict(self)

    @property
    def information_gain(self):
        """Bit per fixation: ``model / n / ln 2`` (nan without fixations)."""
        return self.model / self.n / np.log(2) if self.n else float("nan")

    @property
    def gold_information_gain(self):
        """The gold standard's, bit per fixation (the explainable information)."""
        return self.gold / self.n / np.log(2) if self.n else float("nan")

    @property
    def explained_information(self):
        """``model / gold``, the fraction of the explainable information the model explains (nan if gold is 0)."""
        return self.model / self.gold if self.gold else float("nan")


def _gains(ll_model, ll_baseline, ll_gold, fixations, per):
    """:class:`InformationSums` pooled over all fixations (``per="fixation"``: a list of one) or one for each image
    with fixations (``per="image"``)."""
    pooled = InformationSums.of(ll_model, ll_baseline, ll_gold)
    if not pooled.n:
        raise ValueError("no values to average (no fixations)")
    if per == "fixation":
        return [pooled]
    if per != "image":
        raise ValueError(f"per must be 'fixation' or 'image', not {per!r}")
    if fixations is None:
        raise ValueError("averaging per image needs the fixations")
    ll_model, ll_baseline = np.asarray(ll_model, dtype=float), np.asarray(ll_baseline, dtype=float)
    ll_gold = None if ll_gold is None else np.asarray(ll_gold, dtype=float)
    return [InformationSums.of(ll_model[i], ll_baseline[i], None if ll_gold is None else ll_gold[i])
            for _, i in image_groups(fixations)]


def information_gain(ll_model, ll_baseline, fixations=None, per="fixation"):
    """Information gain of a model over a baseline in bit per fixation.

    Parameters
    ----------
    ll_model, ll_baseline : array_like, shape (n_fixations,)
        Per-fixation log-likelihoods in nats (see :func:`log_likelihoods`).
    fixations : Fixations, optional
        Needed for ``per="image"``.
    per : {"fixation", "image"}
        Pooled over all fixations (:attr:`InformationSums.information_gain`), or the mean of the images' own.
    """
    return float(np.mean([sums.information_gain for sums in _gains(ll_model, ll_baseline, None, fixations, per)]))


def explained_information(ll_model, ll_gold, ll_baseline, fixations=None, per="fixation"):
    """Fraction of the explainable information a model explains: its information gain over the baseline divided
    by the gold standard's, on the same fixations (:attr:`InformationSums.explained_information`; with
    ``per="image"``, the ratio of the two per-image means)."""
    gains = _gains(ll_model, ll_baseline, ll_gold, fixations, per)
    if per == "fixation":
        return gains[0].explained_information
    return float(np.mean([sums.information_gain for sums in gains])
                 / np.mean([sums.gold_information_gain for sums in gains]))


# --------------------------------------------------------------------------- AUC family

#: Value bins of the first, branch-free pass of :func:`_count_below`.
VALUE_BINS = 4096


def _exact_count_below(levels, values):
    """For sorted distinct ``levels``: how many ``values`` lie strictly below and exactly at each."""
    slot = np.searchsorted(levels, values, "left")               # number of levels below each value
    at_or_below = np.cumsum(np.bincount(slot, minlength=len(levels) + 1))[:len(levels)]
    hit = slot < len(levels)
    equal = np.bincount(slot[hit][levels[slot[hit]] == values[hit]], minlength=len(levels))
    return at_or_below - equal, equal


def _count_below(levels, values):
    """How many ``values`` lie strictly below and exactly at each of the sorted distinct ``levels``.

    Exact, but fast for many values and few levels: values are first binned into
    :data:`VALUE_BINS` equal-width bins (a monotone map, so a value in a lower bin than a level is
    below it); only values sharing a bin with some level are compared exactly.

    Returns
    -------
    less, equal : ndarray of int, shape (n_levels,)
    """
    low, high = values.min(), values.max()
    if not high > low:
        return _exact_count_below(levels, values)
    scale = VALUE_BINS / (high - low)

    def bin_of(x):
        return np.clip((x - low) * scale, 0, VALUE_BINS - 1).astype(np.intp)   # clip, then truncate = floor

    level_bins = bin_of(levels)
    flagged = np.zeros(VALUE_BINS, dtype=bool)
    flagged[level_bins] = True
    value_bins = bin_of(values)
    close = flagged[value_bins]
    counts = np.bincount(value_bins[~close], minlength=VALUE_BINS)
    below_by_bins = np.cumsum(counts)[level_bins]      # values in lower bins (a level's own bin has none here)
    less, equal = _exact_count_below(levels, values[close])
    return below_by_bins + less, equal


def _fraction_below(values, negatives, weights=None):
    """For each value, ``(#negatives < value + #negatives == value / 2) / #negatives``; with ``weights``,
    every negative counts its weight (a cell counts its pixels)."""
    if weights is not None:
        order = np.argsort(negatives, kind="stable")
        levels, cumulative = negatives[order], np.r_[0, np.cumsum(weights[order])]
        less = cumulative[np.searchsorted(levels, values, "left")]
        equal = cumulative[np.searchsorted(levels, values, "right")] - less
        return (less + 0.5 * equal) / cumulative[-1]
    levels, where = np.unique(values, return_inverse=True)
    less, equal = _count_below(levels, negatives)
    return ((less + 0.5 * equal) / len(negatives))[where]


def auc_per_fixation(saliency_maps, fixations):
    """AUC of every fixation against uniform nonfixations (all pixels of its image).

    The fraction of pixels whose saliency is below the fixated value, ties counting one half.
    Its mean over the fixations of an image is the image's AUC.

    Returns
    -------
    ndarray, shape (n_fixations,)
    """
    values = np.empty(len(fixations))
    for n, indices in image_groups(fixations):
        saliency = _map(saliency_maps, n, cells=True)
        fixated = _pixels(saliency, fixations, indices, n)
        if isinstance(saliency, CellMap):
            values[indices] = _fraction_below(fixated, saliency.values.ravel(), saliency.pixels.ravel())
        else:
            values[indices] = _fraction_below(fixated, saliency.ravel())
    return values


def auc(saliency_maps, fixations, per="fixation"):
    """AUC with uniform nonfixations, averaged over fixations or over images."""
    return average(auc_per_fixation(saliency_maps, fixations), fixations, per)


def _count_at_or_above(thresholds, values):
    """For each threshold, the number of ``values`` at or above it."""
    levels, where = np.unique(thresholds, return_inverse=True)
    return (len(values) - _count_below(levels, values)[0])[where]


def _roc_area_at_positives(positives, negatives):
    """Judd's ROC area: thresholds at the positive values (plus above and below everything)."""
    top = max(positives.max(), negatives.max()) + 1
    bottom = min(positives.min(), negatives.min())
    thresholds = np.sort(np.r_[top, positives, bottom])[::-1]
    hits = _count_at_or_above(thresholds, positives) / len(positives)
    false_alarms = _count_at_or_above(thresholds, negatives) / len(negatives)
    return np.trapz(np.r_[0, hits], np.r_[0, false_alarms])


def auc_judd(saliency_maps, fixations, jitter=False, noise_size=1e-7, seed=42, per_image=False):
    """AUC-Judd: thresholds at the fixated values, nonfixations are all pixels not fixated.

    Parameters
    ----------
    jitter : bool
        Add Gaussian noise of std ``noise_size`` to each map (MIT's tie-breaking; draws from one
        ``RandomState(seed)`` image after image, in image order).
    per_image : bool
        Return the value of every image with fixations instead of their mean.
    """
    rng = np.random.RandomState(seed)
    values = []
    for n, indices in image_groups(fixations):
        saliency = _map(saliency_maps, n)
        if jitter:
            saliency = saliency + rng.randn(*saliency.shape) * noise_size
        positives = _pixels(saliency, fixations, indices, n)
        fixated = np.zeros(saliency.shape, dtype=bool)
        fixated[fixations.y_int[indices], fixations.x_int[indices]] = True
        values.append(_roc_area_at_positives(positives, saliency[~fixated]))
    return np.asarray(values) if per_image else float(np.mean(values))


def rescaled_pixels(fixations, sizes, shape):
    """The pixel of every fixation in an image of ``shape``: its coordinates scaled by the size ratio (exactly 1.0
    for images of that size), truncated, and kept inside the image where rounding takes a point within one ulp of
    the far edge to ``height`` or ``width``. What shuffled AUC compares a fixation with (here and in
    :func:`repro.mit_metrics.other_map`).

    Parameters
    ----------
    fixations : Fixations
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index.
    shape : tuple (H, W)

    Returns
    -------
    rows, cols : ndarray of int, shape (n_fixations,)
    """
    sizes = np.asarray(sizes, dtype=float)
    height, width = shape
    return (np.minimum((fixations.y * (height / sizes[fixations.n, 0])).astype(int), height - 1),
            np.minimum((fixations.x * (width / sizes[fixations.n, 1])).astype(int), width - 1))


def shuffled_auc_per_fixation(saliency_maps, fixations, sizes):
    """Shuffled AUC of every fixation: nonfixations are all fixations on all *other* images,
    each rescaled to this image's size (``x * width / its_width``, truncated, and kept inside the image
    where rounding takes a point within one ulp of the far edge to ``width``); duplicates kept.

    Parameters
    ----------
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index.
    """
    check_fixations(fixations, sizes, "shuffled AUC")
    values = np.empty(len(fixations))
    positions = {}
    for n, indices in image_groups(fixations):
        saliency = _map(saliency_maps, n, cells=True)
        if saliency.shape not in positions:
            positions[saliency.shape] = rescaled_pixels(fixations, sizes, saliency.shape)
        rows, cols = positions[saliency.shape]
        others = fixations.n != n
        values[indices] = _fraction_below(_pixels(saliency, fixations, indices, n), saliency[rows[others], cols[others]])
    return values


def shuffled_auc(saliency_maps, fixations, sizes, per="fixation"):
    """Shuffled AUC averaged over fixations or images (see :func:`shuffled_auc_per_fixation`)."""
    return average(shuffled_auc_per_fixation(saliency_maps, fixations, sizes), fixations, per)


# --------------------------------------------------------------------------- NSS

def nss_per_fixation(saliency_maps, fixations):
    """Normalised scanpath saliency of every fixation: the map standardised with its mean and
    population standard deviation (ddof=0; not divided when constant), read at the fixation."""
    values = np.empty(len(fixations))
    for n, indices in image_groups(fixations):
        saliency = _map(saliency_maps, n)
        std = saliency.std()
        values[indices] = (_pixels(saliency, fixations, indices, n) - saliency.mean()) / (std if std else 1.0)
    return values


def nss(saliency_maps, fixations, per="fixation"):
    """NSS averaged over fixations or images."""
    return average(nss_per_fixation(saliency_maps, fixations), fixations, per)


# --------------------------------------------------------------------------- map-based metrics

def _density(saliency_map, minimum_value=0.0):
    """A saliency map as a density: shifted to be non-negative, ``minimum_value`` added, summed to 1
    (uniform if it sums to 0)."""
    saliency_map = np.asarray(saliency_map, dtype=float)
    saliency_map = saliency_map - min(saliency_map.min(), 0) + minimum_value
    total = saliency_map.sum()
    return saliency_map / total if total else np.full(saliency_map.shape, 1.0 / saliency_map.size)


def cc(map_1, map_2):
    """Pearson correlation of two maps ``(height, width)``; 0 if either is constant (all values equal: its
    floating-point standard deviation need not be exactly 0)."""
    map_1, map_2 = np.asarray(map_1, dtype=float).ravel(), np.asarray(map_2, dtype=float).ravel()
    if np.ptp(map_1) == 0 or np.ptp(map_2) == 0:
        return 0.0
    return float(np.corrcoef(map_1, map_2)[0, 1])


def kl_divergence(model_map, gold_map, minimum_value=1e-20):
    """Image-based KL divergence (nats) of a model from a gold-standard map.

    Both maps become densities (:func:`_density` with ``minimum_value`` added);
    ``sum p_gold * (log p_gold - log p_model)``.
    """
    p_model, p_gold = _density(model_map, minimum_value), _density(gold_map, minimum_value)
    return float(np.sum(p_gold * (np.log(p_gold) - np.log(p_model))))


def mit_kl_divergence(model_map, gold_map, eps=MIT_EPS):
    """The MIT benchmark's KL divergence: ``sum p_gold * log(eps + p_gold / (p_model + eps))``."""
    p_model, p_gold = _density(model_map), _density(gold_map)
    return float(np.sum(p_gold * np.log(eps + p_gold / (p_model + eps))))


def sim(map_1, map_2):
    """Similarity: ``sum min(p1, p2)`` of the two maps as densities."""
    return float(np.minimum(_density(map_1), _density(map_2)).sum())


def fixation_map(shape, x, y, sigma=None, unique=True, mode="reflect"):
    """Empirical saliency map: fixation counts at ``(int(y), int(x))``, optionally blurred.

    Parameters
    ----------
    shape : tuple
        ``(height, width)``.
    x, y : array_like
        Fixation coordinates in pixels.
    sigma : float, optional
        Standard deviation in pixels of the Gaussian blur (none if None).
    unique : bool
        Count repeated fixations on a pixel once.

    Returns
    -------
    ndarray, shape (height, width)
    """
    counts = np.zeros(shape)
    np.add.at(counts, (np.asarray(y).astype(int), np.asarray(x).astype(int)), 1)
    if unique:
        counts = np.minimum(counts, 1)
    return gaussian_filter(counts, sigma, mode=mode) if sigma else counts


def per_image(metric, maps_1, maps_2, images):
    """``metric(maps_1[n], maps_2[n])`` for every image index in ``images``.

    Example: ``per_image(cc, model_maps, gold_maps, range(len(stimuli))).mean()``.

    Returns
    -------
    ndarray, shape (len(images),)
    """
    return np.array([metric(_map(maps_1, n), _map(maps_2, n)) for n in images])
