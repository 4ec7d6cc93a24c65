"""Test-only reference: pysaliency's fit of saliency maps to fixation densities.

pysaliency 0.2.22's :func:`pysaliency.saliency_map_conversion.optimize_for_information_gain` is the field's
reference implementation of the postprocessing of Kümmerer, Wallis & Bethge (2015): global min/max
normalisation, a fitted Gaussian blur, a monotone piecewise-linear nonlinearity, a fitted centre bias on an
elliptic distance, normalisation, all by maximum likelihood. :func:`fit_and_score` runs it on given maps and
fixation arrays, so tests can compare our own fit's held-out log-likelihood with pysaliency's.

This module is a helper for tests, not a test file: it imports pysaliency and torch (test dependencies only).

Adaptations to what is installed (pysaliency 0.2.22, torch 2.13 CPU), each found by running it:

1. **Collate of sparse fixation masks.** pysaliency builds each image's fixation mask as a sparse COO tensor
   (``pysaliency.torch_datasets.FixationMaskTransform``) and batches them with torch's default collate, which
   since torch 2.x raises ``RuntimeError: Batches of sparse tensors are not currently supported by the default
   collate_fn``: every fit fails on its first evaluation. At import, this module replaces the name
   ``FixationMaskTransform`` *inside* ``pysaliency.saliency_map_conversion_torch`` only (the one place the fit
   takes it from) with a subclass that returns pysaliency's own coalesced mask densified. The loss
   (``pysaliency.torch_utils.log_likelihood``) calls ``.to_dense()`` on the mask first anyway (a no-op on a dense
   tensor), so the objective and its gradient are unchanged. ``pysaliency.torch_datasets`` itself is untouched.
2. **Initial blur.** ``optimize_for_information_gain`` defaults to ``blur_radius=0``; pysaliency then skips the
   blur in the forward pass (``if self.blur.sigma > 0``), the blur parameter gets no gradient (``grad`` is None)
   and the fit fails with an AttributeError when it collects gradients. :data:`DEFAULT_BLUR_RADIUS` is the start
   used instead unless ``blur_radius`` is passed explicitly; the blur is still fitted (bounds [0, 1000] px).

3. **Float32 by default.** The maps are handed to pysaliency as float32 (``dtype``). pysaliency computes in the
   maps' dtype, and in float64 torch's CPU convolution of the blur falls back to its slow path: measured with one
   thread on an 800x600 map, one forward+backward pass takes 0.9 s at a 7 px blur and 3.1 s at 30 px in float64
   against 0.2 s at 7 px in float32. Pass ``dtype=np.float64`` for pysaliency's float64 path.

Known failure, not worked around: pysaliency's default optimiser (``method='trust-constr'``) can step outside
the bounds of the centre-bias values (>= 1e-6), and scipy's finite-difference Jacobian of pysaliency's constraints
then raises ``ValueError: `x0` violates bound constraints``. Seen on OSIE with a map identical for every image (a
centred Gaussian blob), at the third iteration, in float32 and float64 alike. ``method='SLSQP'`` (the default of
pysaliency's lower-level ``optimize_saliency_map_conversion``) fits that case.

Images without fixations are dropped from the fit: pysaliency's ``ImageDataset`` raises KeyError for them (it
pops each image's fixations from a per-image cache). They carry no likelihood; they are also left out of the
global min/max normalisation (computed, as pysaliency does, over the images of the fit).
"""
import time

import numpy as np

import pysaliency
import pysaliency.saliency_map_conversion_torch as _smct
from pysaliency.saliency_map_conversion import optimize_for_information_gain
from pysaliency.torch_datasets import FixationMaskTransform as _SparseFixationMaskTransform

__all__ = ["fit_and_score", "DEFAULT_BLUR_RADIUS", "MapModel"]

#: Initial blur (pixels) used instead of pysaliency's ``blur_radius=0``, which cannot be fitted (see module doc).
DEFAULT_BLUR_RADIUS = 1.0


class _DenseFixationMaskTransform(_SparseFixationMaskTransform):
    """pysaliency's fixation mask, densified so that torch's default collate can batch it (see module doc)."""

    def __call__(self, item):
        item = super().__call__(item)
        item["fixation_mask"] = item["fixation_mask"].to_dense()
        return item


def _patch_collate():
    if _smct.FixationMaskTransform is _SparseFixationMaskTransform:
        _smct.FixationMaskTransform = _DenseFixationMaskTransform


_patch_collate()

# Dummy stimuli identify their image by the index written into their first pixels (little-endian uint32), so the
# map model below can return the given map for a stimulus pysaliency hands it as a bare array.
_INDEX_BYTES = 4


def _dummy_stimulus(index, shape):
    height, width = shape
    if height * width < _INDEX_BYTES:
        raise ValueError(f"image {index} is too small ({height}x{width}) to carry its index")
    image = np.zeros((height, width), dtype=np.uint8)
    image.ravel()[:_INDEX_BYTES] = np.frombuffer(np.uint32(index).tobytes(), dtype=np.uint8)
    return image


def _stimulus_index(stimulus):
    data = np.asarray(stimulus)
    first = data[..., 0] if data.ndim == 3 else data
    return int(np.frombuffer(np.ascontiguousarray(first.ravel()[:_INDEX_BYTES], dtype=np.uint8).tobytes(),
                             dtype="<u4")[0])


class MapModel(pysaliency.SaliencyMapModel):
    """A pysaliency saliency map model returning a given map for each dummy stimulus.

    Parameters
    ----------
    maps : sequence of ndarray
        ``maps[i]`` is the (H, W) saliency map of image ``i``.
    dtype : numpy dtype
        The dtype the maps are handed to pysaliency in (pysaliency computes in it).
    """

    def __init__(self, maps, dtype=np.float32):
        super().__init__(caching=False)
        self.maps = maps
        self.dtype = dtype

    def _saliency_map(self, stimulus):
        return np.asarray(self.maps[_stimulus_index(stimulus)], dtype=self.dtype)


def _tolist(tensor):
    value = tensor.detach().cpu().numpy()
    return value.tolist() if value.ndim else float(value)


def fit_and_score(maps, x, y, n, train, test, average="fixation", maxiter=1000, dtype=np.float32, **options):
    """Fit pysaliency's saliency-map conversion on the training images and score the test fixations.

    Runs ``pysaliency.saliency_map_conversion.optimize_for_information_gain`` (torch framework,
    ``method='trust-constr'``, 20 nonlinearity and 12 centre-bias values: pysaliency's defaults) on the maps and
    fixations of the training images, then reads each test fixation's log-likelihood from the fitted model's log
    density.

    Parameters
    ----------
    maps : sequence of ndarray
        One (H, W) float saliency map per image index (images may differ in size).
    x, y, n : array_like
        Fixations of all images: pixel coordinates (origin top-left) and image index.
    train, test : array_like of int
        Image indices to fit on and to score. Training images without fixations are dropped from the fit
        (pysaliency raises KeyError for them), including from the global min/max normalisation.
    average : {"fixation", "image"}
        pysaliency's weighting of the objective: ``"fixation"`` maximises the mean log-likelihood per fixation
        (pysaliency's own default is ``"image"``: each image's mean counts equally).
    maxiter : int
        Maximum number of optimiser iterations (each one full pass over the training images, forward and
        backward: the fit's cost is about ``maxiter`` times the number of training pixels).
    dtype : numpy dtype
        The dtype the maps are handed to pysaliency in: float32 by default, for speed (see the module doc);
        ``np.float64`` for pysaliency's float64 path.
    **options
        Passed on to ``optimize_for_information_gain`` (e.g. ``method``, ``num_nonlinearity``,
        ``num_centerbias``, ``minimize_options``, ``verbose``). ``blur_radius`` defaults to
        :data:`DEFAULT_BLUR_RADIUS` instead of pysaliency's 0 (which cannot be fitted).

    Returns
    -------
    dict
        ``ll``: ndarray, log-likelihood (nats) of every test fixation, in the order of ``np.isin(n, test)``,
        read at pixel ``(int(y), int(x))`` of the fitted log density; ``blur_radius``, ``alpha`` (floats);
        ``nonlinearity_xs``, ``nonlinearity_ys`` (the nonlinearity's values are ``exp(ys)`` at ``xs``, on the
        saliency normalised to [0, 1]), ``centerbias_xs``, ``centerbias_ys`` (the centre bias's values at
        normalised elliptic distances ``xs``), all lists; ``saliency_min``, ``saliency_max`` (the normalisation);
        ``seconds`` of the fit; ``success``, ``message``, ``nit``, ``fun`` (scipy's result; ``fun`` is minus the
        training information gain over a uniform model of each image, bit per fixation with ``average="fixation"``); ``train_images``: the
        training images used.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=int)
    train = np.asarray(train, dtype=int)
    test = np.asarray(test, dtype=int)
    options = dict(options)
    options.setdefault("blur_radius", DEFAULT_BLUR_RADIUS)

    train_used = np.array([i for i in train if np.any(n == i)], dtype=int)
    if not len(train_used):
        raise ValueError("no training image has fixations")

    model = MapModel(maps, dtype=dtype)
    # pysaliency's own global min/max over the fit images, as Python floats: a NumPy float64 scalar would promote
    # float32 maps to float64 under NumPy >= 2 (NEP 50).
    options.setdefault("saliency_min", min(float(np.min(model.maps[i])) for i in train_used))
    options.setdefault("saliency_max", max(float(np.max(model.maps[i])) for i in train_used))
    shapes = [np.shape(maps[i]) for i in train_used]
    stimuli = pysaliency.Stimuli([_dummy_stimulus(i, shape) for i, shape in zip(train_used, shapes)])
    position = {int(i): k for k, i in enumerate(train_used)}
    in_train = np.isin(n, train_used)
    fixations = pysaliency.Fixations.create_without_history(
        x[in_train], y[in_train], np.array([position[i] for i in n[in_train]], dtype=int))

    start = time.perf_counter()
    fitted, result = optimize_for_information_gain(
        model, stimuli, fixations, average=average, maxiter=maxiter, return_optimization_result=True, **options)
    seconds = time.perf_counter() - start
    fitted.caching = False

    in_test = np.isin(n, test)
    xt, yt, nt = x[in_test], y[in_test], n[in_test]
    ll = np.empty(len(nt))
    for i in np.unique(nt):
        log_density = fitted.log_density(_dummy_stimulus(i, np.shape(maps[i])))
        rows = nt == i
        ll[rows] = log_density[yt[rows].astype(int), xt[rows].astype(int)]

    processing = fitted.saliency_map_processing
    normalized = fitted.normalized_saliency_map_model
    return {
        "ll": ll,
        "blur_radius": _tolist(processing.blur.sigma),
        "nonlinearity_xs": _tolist(processing.nonlinearity.xs),
        "nonlinearity_ys": _tolist(processing.nonlinearity.ys),
        "centerbias_xs": _tolist(processing.centerbias.nonlinearity.xs),
        "centerbias_ys": _tolist(processing.centerbias.nonlinearity.ys),
        "alpha": _tolist(processing.centerbias.alpha),
        "saliency_min": float(normalized.saliency_min),
        "saliency_max": float(normalized.saliency_max),
        "seconds": seconds,
        "success": bool(result.success) if hasattr(result, "success") else None,
        "message": str(getattr(result, "message", "")),
        "nit": int(result.nit) if getattr(result, "nit", None) is not None else None,
        "fun": float(result.fun) if getattr(result, "fun", None) is not None else None,
        "train_images": train_used.tolist(),
    }
