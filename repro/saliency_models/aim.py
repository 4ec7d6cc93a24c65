"""Attention based on Information Maximization, AIM (Bruce & Tsotsos 2009), implemented from the paper.

N. D. B. Bruce and J. K. Tsotsos, "Saliency, attention, and visual search: An information theoretic approach",
Journal of Vision 9(3):5, 1-24, 2009. doi:10.1167/9.3.5

What the paper describes: the saliency of a location is the self-information ``-log p(C)`` of the content ``C`` of
the local patch there, given the statistics of its surround (for natural images: the whole image). The patch is
coded by a sparse basis learned from natural images by independent component analysis (ICA, after a PCA that keeps
a given fraction of the variance); its coefficients ``a_1 ... a_K`` being (nearly) independent, the likelihood
factorises, ``p(C) = prod_k p_k(a_k)``, and

    ``S(x) = -sum_k log p_k(a_k(x))``,

each ``p_k`` the density of coefficient ``k`` over all the patches of the image, estimated by a histogram.

Parameters used: ``scale=0.5`` (the image is halved, the authors' published default ``resizesize``), ``patch=21``
(21 x 21 RGB patches, the authors' default basis ``21jade950``; the paper also uses 31 x 31), ``variance=0.95``
(the PCA before the ICA keeps 95 % of the variance, the ``950`` of that basis: 20 components here), ``bins=1000``
(the histograms of the authors' code), ``sigma=8.0`` (the Gaussian smoothing the map, in pixels of the reduced image:
the authors' code's "pixels per degree of visual angle") and the training ``samples=50000`` with ``seed=0`` (ours,
below). The authors' defaults are those of
their code's published usage, ``AIM(image, 0.5, 1, '21jade950.mat', 1)``; the full text of the paper could not be
consulted here, so its own numbers (of training images and patches, of histogram bins) are not checked against it.
Speed: 0.25-0.5 s per 800 x 600 image on one core (the 400 x 300 reduction, 20 filters by FFT).

The basis: learned by this module, not taken from the authors. Random ``patch x patch`` RGB patches (values
``0 ... 1``) of four colour photographs bundled with scikit-image (:data:`TRAINING_IMAGES`: ``astronaut``,
``coffee``, ``chelsea``, ``rocket``, at their own size, available offline; the authors used some thousands of other
natural photographs), the same number from each; the mean patch subtracted; PCA whitening to the fewest components
keeping ``variance`` of the variance; FastICA (Hyvarinen's fixed point, ``g = tanh``, symmetric decorrelation,
random start from ``seed``) on the whitened patches. The filters ``(K, patch * patch * 3)``, ICA unmixing times
whitening, give unit-variance, decorrelated coefficients on the training patches. Learning takes some 10 s on one
core; the result is cached as ``basis-<hash of the parameters>.npz`` (``filters``, ``mean``) under
``repro.paths.cache_dir('aim')`` (``DEEPGAZE_CACHE``), written atomically; a file that cannot be read or holds
arrays of the wrong shape is learned again (with a warning naming it).

Deviations and choices the paper leaves open:

- ICA algorithm: FastICA (symmetric, tanh) where the authors used JADE (both estimate the same model); the training
  images, their number (4 against the paper's thousands) and the number of patches (``samples``) are ours;
- patches are taken at every pixel of the reduced image, the image mirrored at its borders by half a patch (edge
  pixels repeated, numpy's ``symmetric``), so that the map has the image's size; the coefficients are computed by
  FFT correlation (:mod:`scipy.fft`);
- the histograms: ``bins`` equal bins between the smallest and largest value of each coefficient over the image; a
  coefficient whose range is below ``1e-6`` (its training standard deviation is 1) is constant up to rounding and
  has one bin (``p = 1``, no information), so that a uniform image gives a uniform map (of zeros);
- the map is smoothed by a Gaussian of standard deviation ``sigma`` pixels of the reduced image, reflecting at the
  borders and truncated at 4 sigma (the authors' code: 8 pixels, in a 30 x 30 window); on 10 OSIE images (a
  helper's check, before this value was set) the NSS was 1.20 without smoothing, 1.24 at 4 pixels, 1.28 at 8;
- borders: the authors' code keeps only the patches that lie wholly inside the image and pads the map with its
  minimum; ours mirrors the image by half a patch, so that every pixel has a patch;
- the reduction is bilinear after a Gaussian anti-aliasing filter (:func:`repro.saliency_models.base.downsample`);
  the map is brought back to the image's size bilinearly (:func:`repro.saliency_models.base.upsample`).
"""
import hashlib
import json
import logging
import zipfile

import numpy as np
import skimage.data
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft
from scipy.ndimage import gaussian_filter

from ..paths import atomic_path, cache_dir
from .base import SaliencyModel, downsample, upsample, working_size

__all__ = ["AIM", "TRAINING_IMAGES", "training_patches", "pca_whitening", "symmetric_decorrelation", "fast_ica",
           "learn_basis", "basis_path", "load_basis",
           "coefficients", "self_information"]

log = logging.getLogger(__name__)

#: The colour photographs of :mod:`skimage.data` the basis is learned from.
TRAINING_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
#: Version of the basis files; part of their name.
BASIS_FORMAT = 1
#: A coefficient whose range over an image is below this is constant (rounding); its training deviation is 1.
CONSTANT = 1e-6


def training_patches(patch, samples, seed):
    """``samples`` random ``patch x patch`` RGB patches of :data:`TRAINING_IMAGES` (as many from each), values in
    0 ... 1: ``(samples, patch * patch * 3)`` float64, each row in ``(y, x, channel)`` order."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, name in enumerate(TRAINING_IMAGES):
        windows = sliding_window_view(getattr(skimage.data, name)(), (patch, patch), axis=(0, 1))
        count = samples // len(TRAINING_IMAGES) + (n < samples % len(TRAINING_IMAGES))
        y, x = rng.integers(0, windows.shape[0], count), rng.integers(0, windows.shape[1], count)
        rows.append(windows[y, x].transpose(0, 2, 3, 1).reshape(count, -1) / 255.0)
    return np.concatenate(rows)


def pca_whitening(data, variance):
    """``(mean (D,), whitening (K, D))``: ``(data - mean) @ whitening.T`` are the ``K`` principal components of
    ``data`` ``(N, D)``, the fewest that keep ``variance`` of its variance, each scaled to unit variance."""
    mean = data.mean(axis=0)
    centred = data - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / len(data))
    values, vectors = values[::-1], vectors[:, ::-1]
    count = int(np.searchsorted(np.cumsum(values) / values.sum(), variance) + 1)
    return mean, (vectors[:, :count] / np.sqrt(values[:count])).T


def symmetric_decorrelation(w):
    """``(W W^T)^(-1/2) W`` of a square ``W``: the nearest matrix with orthonormal rows."""
    values, vectors = np.linalg.eigh(w @ w.T)
    return (vectors / np.sqrt(values)) @ vectors.T @ w


def fast_ica(white, seed, tolerance=1e-6, iterations=1000):
    """FastICA (symmetric, ``g = tanh``) of whitened data ``(N, K)``: the unmixing matrix ``W`` ``(K, K)``,
    orthonormal rows, sources ``white @ W.T``. Stops when no row turns by more than ``tolerance``
    (``max |1 - |w_new . w_old|| ``); ``seed`` draws the start."""
    w = symmetric_decorrelation(np.random.default_rng(seed).normal(size=(white.shape[1],) * 2))
    for _ in range(iterations):
        g = np.tanh(white @ w.T)
        new = symmetric_decorrelation(g.T @ white / len(white) - (1 - g ** 2).mean(axis=0)[:, None] * w)
        turned = np.abs(1 - np.abs(np.einsum("ij,ij->i", new, w))).max()
        w = new
        if turned < tolerance:
            break
    return w


def learn_basis(patch, variance, samples, seed):
    """The ICA basis: ``(filters (K, patch * patch * 3), mean (patch * patch * 3,))``; the coefficients of a patch
    ``p`` (rows as :func:`training_patches`) are ``filters @ (p - mean)``."""
    data = training_patches(patch, samples, seed)
    mean, whitening = pca_whitening(data, variance)
    unmixing = fast_ica((data - mean) @ whitening.T, seed)
    return unmixing @ whitening, mean


def basis_path(patch, variance, samples, seed):
    """The cache file of the basis of these parameters (whether it exists or not)."""
    key = json.dumps([patch, variance, samples, seed, TRAINING_IMAGES, BASIS_FORMAT])
    return cache_dir("aim") / f"basis-{hashlib.sha1(key.encode()).hexdigest()}.npz"


def load_basis(patch, variance, samples, seed):
    """:func:`learn_basis` of these parameters, from the cache when a whole file is there, else learned and cached."""
    path = basis_path(patch, variance, samples, seed)
    if path.exists():
        try:
            with np.load(path) as stored:
                filters, mean = stored["filters"], stored["mean"]
            if filters.ndim == 2 and mean.shape == (3 * patch ** 2,) == filters.shape[1:] and \
                    np.isfinite(filters).all() and np.isfinite(mean).all():
                return filters, mean
            log.warning("%s: AIM basis of shape %s, mean %s; learning it again", path, filters.shape, mean.shape)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            log.warning("%s: damaged AIM basis file (%s); learning it again", path, error)
    filters, mean = learn_basis(patch, variance, samples, seed)
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, filters=filters, mean=mean)
    return filters, mean


def coefficients(image, filters, mean):
    """The basis coefficients of the patch around every pixel of ``image`` ``(h, w, 3)`` (mirrored at the borders
    by half a patch): ``(K, h, w)``, by FFT correlation with the ``K`` filters ``(K, patch * patch * 3)``."""
    count, patch = len(filters), int(round(np.sqrt(filters.shape[1] / 3)))
    half = patch // 2
    padded = np.pad(image, ((half, patch - 1 - half),) * 2 + ((0, 0),), mode="symmetric").transpose(2, 0, 1)
    kernels = filters.reshape(count, patch, patch, 3).transpose(0, 3, 1, 2)[:, :, ::-1, ::-1]
    shape = padded.shape[1:]
    spectrum = np.einsum("kcyx,cyx->kyx", fft.rfft2(kernels, s=shape, workers=1),
                         fft.rfft2(padded, s=shape, workers=1))
    full = fft.irfft2(spectrum, s=shape, workers=1)
    return full[:, patch - 1:, patch - 1:] - (filters @ mean)[:, None, None]


def self_information(values, bins):
    """``-sum_k log p_k(a_k(x))``: ``values`` ``(K, h, w)``, ``p_k`` the histogram (``bins`` bins over its range) of
    coefficient ``k`` over the image, read at each pixel's value; a coefficient of range below :data:`CONSTANT` has
    one bin. Returns ``(h, w)``, in nats."""
    flat = values.reshape(len(values), -1)
    low, span = flat.min(axis=1, keepdims=True), np.ptp(flat, axis=1, keepdims=True)
    span = np.where(span >= CONSTANT, span, np.inf)
    which = np.minimum(((flat - low) / span * bins).astype(np.int64), bins - 1) + bins * np.arange(len(flat))[:, None]
    counts = np.bincount(which.ravel(), minlength=bins * len(flat))
    return -np.log(counts[which] / flat.shape[1]).sum(axis=0).reshape(values.shape[1:])


class AIM(SaliencyModel):
    """Attention based on Information Maximization (Bruce & Tsotsos 2009).

    Parameters
    ----------
    scale : float
        The image is reduced to this fraction of its width (the authors' default: 0.5).
    patch : int
        Side of the RGB patches, in pixels of the reduced image (the authors' default basis: 21).
    variance : float
        Fraction of the variance the PCA before the ICA keeps (the authors' default basis: 0.95).
    bins : int
        Bins of each coefficient's histogram (the authors' code: 1000).
    sigma : float
        Standard deviation of the Gaussian smoothing the map, in pixels of the reduced image (the authors' code: 8).
    samples, seed : int
        Number of training patches, and the seed drawing them and FastICA's start (ours).
    """
    name = "aim"
    citation = ("N. D. B. Bruce and J. K. Tsotsos, Saliency, attention, and visual search: An information theoretic "
                "approach, Journal of Vision 9(3):5, 2009, doi:10.1167/9.3.5")

    def __init__(self, scale=0.5, patch=21, variance=0.95, bins=1000, sigma=8.0, samples=50000, seed=0):
        if not 0 < scale <= 1 or patch < 1 or not 0 < variance <= 1 or bins < 1 or samples < 2:
            raise ValueError(f"aim: scale {scale}, patch {patch}, variance {variance}, bins {bins}, samples "
                             f"{samples}: expected 0 < scale <= 1, patch >= 1, 0 < variance <= 1, bins >= 1, "
                             f"samples >= 2")
        self._set(scale=float(scale), patch=int(patch), variance=float(variance), bins=int(bins),
                  sigma=float(sigma), samples=int(samples), seed=int(seed))
        self._basis = None

    @property
    def basis(self):
        """``(filters (K, patch * patch * 3), mean)``: :func:`load_basis`, loaded on first use."""
        if self._basis is None:
            self._basis = load_basis(self.patch, self.variance, self.samples, self.seed)
        return self._basis

    def compute(self, image):
        size = working_size(image.shape, max(1, int(round(image.shape[1] * self.scale))))
        small = downsample(image / 255.0, size)
        information = self_information(coefficients(small, *self.basis), self.bins)
        smooth = gaussian_filter(information, self.sigma, mode="reflect")
        return upsample(smooth, image.shape[:2])
