"""Torralba's bottom-up saliency (2003, 2006): the rarity of the local features in the image, implemented from the
papers.

A. Torralba, "Modeling global scene factors in attention", Journal of the Optical Society of America A 20(7),
1407-1418, 2003. doi:10.1364/JOSAA.20.001407; its bottom-up part again in A. Torralba, A. Oliva, M. S. Castelhano and
J. M. Henderson, "Contextual guidance of eye movements and attention in real-world scenes: the role of global features
in object search", Psychological Review 113(4), 766-786, 2006. doi:10.1037/0033-295X.113.4.766

What the papers describe:

- the local features ``L(x)`` at a location ``x``: the outputs there of a bank of oriented band-pass filters (a
  steerable pyramid, 6 orientations x 4 scales) applied to each colour channel;
- the bottom-up saliency ``S(x) = p(L(x))^-gamma``: the less probable the features of a location are in this image,
  the more salient it is. ``p`` is fitted to the features of all the locations of the image itself: a multivariate
  power-exponential ``p(L) = k exp(-1/2 [(L - eta)^T Delta^-1 (L - eta)]^alpha)`` (``eta`` the mean, ``Delta`` the
  covariance; ``alpha = 1`` is the Gaussian);
- ``gamma = 0.05`` (2006), where ``S`` is multiplied by the contextual prior and the exponent weighs the two. For a
  Gaussian ``S(x) = k^-gamma exp(gamma d^2(x) / 2)``, ``d^2`` the squared Mahalanobis distance of ``L(x)`` from
  ``eta``: for the map alone every ``gamma > 0`` orders the locations alike (by ``d^2``).

Parameters used: ``orientations=6``, ``scales=4`` (the papers' filter bank), ``gamma=0.05`` (2006); ours:
``width=200`` (the reduced image), ``finest=0.25`` (peak frequency of the finest scale, cycles per pixel of the
reduced image; 0.125, 0.0625, 0.03125 the others, an octave apart), ``pad=32`` and ``ridge=1e-6`` (below). The
papers' text could not be consulted here: what they describe is given as the project's notes on them state it.

Deviations and choices the papers leave open:

- filter bank: log-Gabor filters applied by FFT instead of the steerable pyramid: a Gaussian in log frequency (one
  octave wide at half height, as a pyramid's octave bands) times a Gaussian in orientation (``180 / orientations``
  degrees wide at half height), zero at frequency 0. Each is one-sided in frequency, a quadrature pair: its real
  (even) and imaginary (odd) outputs are both features, 2 x 6 x 4 x 3 = 144 rather than the pyramid's 72 (a pyramid
  band has one phase; with one phase the map ripples across every edge at the band's frequency);
- every scale is computed at every pixel of the reduced image (a pyramid subsamples its coarse scales);
- the papers do not say at which resolution: here the image is reduced to 200 pixels wide (OSIE: 200 x 150, a
  quarter), aspect ratio kept (:func:`repro.saliency_models.base.downsample`), and mirrored by 32 pixels (the
  coarsest wavelength; at the bottom and right up to a size the FFT is fast at) before the FFT, so that its
  wrap-around puts no edge at the borders;
- colour channels: R, G and B of the image, in 0 ... 1 (the papers do not say which). Any invertible linear colour
  transform (opponent channels) gives the same map: the filters are linear and the Mahalanobis distance is invariant
  under invertible linear maps of the features; a non-linear one (e.g. CIE Lab) would not;
- density: the Gaussian (``alpha = 1``), its mean and covariance the maximum-likelihood ones (the features' mean and
  covariance over the reduced image). A power-exponential of the same ``eta``, ``Delta`` orders the locations alike
  (``d^(2 alpha)`` increases with ``d^2``). Tried on 10 OSIE images: ``alpha`` fitted by maximum likelihood (``Delta``
  the covariance times a fitted scale) runs to the smallest value allowed (0.05), the features being far
  heavier-tailed than any power-exponential; so the papers' Gaussian case it is;
- the covariance gets ``ridge`` times its mean variance added on the diagonal (an image of a few colours, e.g. a
  search array, has a singular covariance), at least ``1e-18`` (the square of
  :data:`repro.saliency_models.itti_koch.ROUNDING`), and each channel's mean is taken off before the FFT: a uniform
  image has no features but rounding, and gets a uniform map;
- the map returned is ``p^-gamma`` divided by its maximum, ``exp(gamma (d^2 - max d^2) / 2)``, in [0, 1] (``k``, the
  same everywhere, drops out); it is not smoothed (the papers describe no smoothing of this term); it is brought back
  to the image's size bilinearly (:func:`repro.saliency_models.base.upsample`). With the Gaussian, ``gamma = 0.05``
  makes it steep: on 10 OSIE images the range of ``d^2`` is 600 to 1900, that of the map 15 to 47 orders of e.
  Measured on 50 OSIE images (the postprocessing of :mod:`repro.postprocessing` fitted to them, log-likelihood on
  the same fixations): -12.73 nats per fixation at ``gamma = 0.05``, -12.48 at 0.01, -12.38 at 0.002 (the order
  alike; image signature -12.37), because the postprocessing's linear normalisation leaves the steep map's low
  values no room. ``gamma`` is a parameter (part of the cache key);
- a MATLAB function of Torralba's circulating in other projects estimates ``p`` band by band from histograms of a
  grey image; it is neither copied nor followed here: this is the papers' joint density.
"""
import numpy as np
from scipy.fft import fft2, ifft2, next_fast_len
from scipy.linalg import solve_triangular

from .base import SaliencyModel, downsample, upsample, working_size
from .itti_koch import ROUNDING

__all__ = ["Torralba", "log_gabor_bank", "local_features", "mahalanobis_squared"]

#: Standard deviation of a Gaussian one unit wide at half height.
HALF_HEIGHT = 1 / (2 * np.sqrt(2 * np.log(2)))


def log_gabor_bank(shape, orientations, scales, finest):
    """Transfer functions of the filter bank on the FFT grid of an ``(h, w)`` image.

    Parameters
    ----------
    shape : tuple of int
        ``(h, w)``.
    orientations, scales : int
        Orientations ``pi * o / orientations`` (of the frequency vector, radians; 0: stripes varying along x), and
        peak frequencies ``finest / 2 ** s``.
    finest : float
        Peak frequency of the finest scale, cycles per pixel.

    Returns
    -------
    ndarray, shape (scales * orientations, h, w), float64
        Scale-major; zero at frequency 0 and on the side of the spectrum opposite each filter's orientation.
    """
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    radius, angle = np.hypot(fy, fx), np.arctan2(fy, fx)
    log_radius = np.log(np.where(radius > 0, radius, 1.0))
    bank = []
    for s in range(scales):
        radial = np.where(radius > 0, np.exp(-(log_radius - np.log(finest / 2 ** s)) ** 2
                                             / (2 * (np.log(2) * HALF_HEIGHT) ** 2)), 0.0)
        for o in range(orientations):
            turn = (angle - np.pi * o / orientations + np.pi) % (2 * np.pi) - np.pi     # wrapped to [-pi, pi)
            bank.append(radial * np.exp(-turn ** 2 / (2 * (np.pi / orientations * HALF_HEIGHT) ** 2)))
    return np.array(bank)


def local_features(channels, orientations, scales, finest, pad):
    """The real and imaginary outputs of every filter of the bank (:func:`log_gabor_bank`) on every channel, at
    every pixel.

    Parameters
    ----------
    channels : ndarray, shape (h, w, C)
    orientations, scales : int
    finest : float
        The bank, as :func:`log_gabor_bank` takes it.
    pad : int
        Width of the mirrored border added before the FFT (and cropped after); the bottom and right borders are
        widened to a size the FFT is fast at.

    Returns
    -------
    ndarray, shape (h * w, 2 * F * C), float64
        One row a pixel (row-major), real parts first; ``F = orientations * scales``.
    """
    height, width = channels.shape[:2]
    size = [next_fast_len(n + 2 * pad) for n in (height, width)]
    padded = np.pad(channels - channels.mean(axis=(0, 1)),
                    ((pad, size[0] - height - pad), (pad, size[1] - width - pad), (0, 0)), mode="symmetric")
    bank = log_gabor_bank(size, orientations, scales, finest)
    spectra = fft2(np.moveaxis(padded, 2, 0))                                        # (C, h', w')
    responses = ifft2(bank[:, None] * spectra[None])[..., pad:pad + height, pad:pad + width]
    return np.concatenate([responses.real, responses.imag]).reshape(-1, height * width).T


def mahalanobis_squared(features, ridge):
    """Squared Mahalanobis distance of each row from the rows' mean, under their covariance.

    Parameters
    ----------
    features : ndarray, shape (N, D)
    ridge : float
        Added to the covariance's diagonal, as a fraction of its mean variance (the addition at least
        ``ROUNDING ** 2``).

    Returns
    -------
    ndarray, shape (N,), float64
        ``(L - eta)^T (Delta + r I)^-1 (L - eta)`` with ``eta``, ``Delta`` the maximum-likelihood mean and covariance.
    """
    centred = features - features.mean(axis=0)
    covariance = centred.T @ centred / len(centred)
    added = max(ridge * np.trace(covariance) / len(covariance), ROUNDING ** 2)
    lower = np.linalg.cholesky(covariance + added * np.eye(len(covariance)))
    return (solve_triangular(lower, centred.T, lower=True) ** 2).sum(axis=0)


class Torralba(SaliencyModel):
    """Torralba's bottom-up saliency ``p(L)^-gamma`` (2003; Torralba, Oliva, Castelhano & Henderson 2006).

    Parameters
    ----------
    width : int
        Width in pixels of the reduced image (ours).
    orientations, scales : int
        The filter bank (the papers: 6 and 4).
    gamma : float
        The exponent (2006: 0.05).
    finest : float
        Peak frequency of the finest scale, cycles per pixel of the reduced image (ours: 0.25).
    pad : int
        Mirrored border before the FFT, pixels of the reduced image (ours: 32, the coarsest wavelength).
    ridge : float
        Regularisation of the covariance, a fraction of its mean variance (ours).
    """
    name = "torralba"
    citation = ("A. Torralba, Modeling global scene factors in attention, JOSA A 20(7):1407-1418, 2003, "
                "doi:10.1364/JOSAA.20.001407; A. Torralba, A. Oliva, M. S. Castelhano and J. M. Henderson, "
                "Contextual guidance of eye movements and attention in real-world scenes, Psychological Review "
                "113(4):766-786, 2006, doi:10.1037/0033-295X.113.4.766")

    def __init__(self, width=200, orientations=6, scales=4, gamma=0.05, finest=0.25, pad=32, ridge=1e-6):
        self._set(width=int(width), orientations=int(orientations), scales=int(scales), gamma=float(gamma),
                  finest=float(finest), pad=int(pad), ridge=float(ridge))

    def small_map(self, channels):
        """The map at the reduced size, of reduced channels: ``(h, w, C)`` -> ``(h, w)`` in [0, 1], maximum 1."""
        features = local_features(channels, self.orientations, self.scales, self.finest, self.pad)
        distance = mahalanobis_squared(features, self.ridge).reshape(channels.shape[:2])
        return np.exp(self.gamma / 2 * (distance - distance.max()))

    def compute(self, image):
        small = downsample(image / 255.0, working_size(image.shape, self.width))
        return upsample(self.small_map(small), image.shape[:2])
