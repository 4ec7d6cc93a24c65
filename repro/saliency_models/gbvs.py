"""Graph-based visual saliency (Harel, Koch & Perona 2006), implemented from the paper.

J. Harel, C. Koch and P. Perona, "Graph-Based Visual Saliency", Advances in Neural Information Processing Systems 19
(NIPS 2006), 545-552, MIT Press, 2007. doi:10.7551/mitpress/7503.003.0073

What the paper describes, for each feature map ``M`` (colour, intensity, orientation, at a few scales) on a grid of
cells ``(i, j)``:

- activation: a fully connected directed graph on the cells, the edge from ``(i, j)`` to ``(p, q)`` weighted
  ``w1 = d((i, j) || (p, q)) F(i - p, j - q)`` with the dissimilarity ``d = |log(M(i, j) / M(p, q))|`` and
  ``F(a, b) = exp(-(a^2 + b^2) / (2 sigma^2))``; the outbound weights of each node normalised to 1 make a Markov
  chain, and its equilibrium distribution is the activation map ``A`` (mass gathers where cells differ from much of
  the map);
- normalisation (mass concentration): a second graph, ``w2((i, j), (p, q)) = A(p, q) F(i - p, j - q)`` (every pair,
  a node to itself included), normalised and taken as a Markov chain the same way; its equilibrium distribution is
  the normalised map, which concentrates the mass of ``A`` on its few high peaks;
- the normalised maps are summed into the master map. The model favours the map's centre by construction: a cell
  near the border has fewer neighbours within ``sigma``, so less weight and less mass.

Both chains are reversible, so their equilibria are exact closed forms (no iteration, deterministic): ``w1`` is
symmetric (``d`` and ``F`` are), so the equilibrium is proportional to each node's weighted degree
``sum_q w1(i, q)``; the chain of ``w2`` satisfies detailed balance with ``pi(i) = A(i) sum_q F(i, q) A(q)`` (the
tests check both against the eigenvector of the transition matrix).

Parameters used: maps of ``map_cells=32`` cells on the longer side (32 x 24 for a 4:3 image), feature maps at
pyramid ``levels=(2, 3, 4)``, ``sigma_activation=0.15`` and ``sigma_normalisation=0.06`` (fractions of the map's
size), one normalisation, four Gabor orientations (0, 45, 90, 135 degrees): the authors' published defaults (their
MATLAB code's ``salmapmaxsize``, ``levels``, ``sigma_frac_act``, ``sigma_frac_norm``, ``num_norm_iters``,
``gaborangles``); 0.15 lies in the range the paper gives for ``sigma`` (about a tenth to a fifth of the map's
width, as we read it; the paper's text could not be re-checked here, the authors' defaults could).
``floor=0.01`` (ours, below), and Itti, Koch & Niebur's ``colour_threshold=0.1`` and our Gabor filters
(``gabor_wavelength=4.0``, ``gabor_sigma=2.0`` pixels of each level) as in :mod:`~repro.saliency_models.itti_koch`.

Deviations and choices the paper leaves open:

- features (shared with :mod:`~repro.saliency_models.itti_koch`, no centre-surround differences: the graph does
  that work): intensity ``I = (r + g + b) / 3``; Itti's opponent differences ``R - G`` and ``B - Y`` split into
  their positive and negative parts (four non-negative maps, so that the log ratio is defined and red differs from
  green); orientation the modulus of complex Gabor responses of the intensity at each level; the levels of the
  5-tap binomial pyramid; each feature map reduced (or enlarged) to the map's size by
  :func:`repro.saliency_models.base.downsample`;
- ``d`` needs positive values: ``M`` plus ``floor`` times the map's maximum (zeros, e.g. of a rectified colour map,
  would make ``d`` infinite). A map whose maximum is below ``1e-9``, or whose logarithm varies by less than
  ``1e-9`` (rounding, not contrast), has no activation (zero), since a chain without weights has no equilibrium;
  a uniform image thus gives a zero map;
- ``sigma`` is given by the paper as a fraction of the (square, ``n x n``) map's width; for the rectangular maps
  here, the fraction of the mean of its two sides (cells);
- combination: the master map is the sum of all 27 normalised maps, as we read the paper (not re-checked here) (intensity: 3 maps, colour:
  12, orientation: 12; each normalised map sums to 1, or to 0 without contrast). The authors' code has channel
  weights; the mean of each channel's maps, averaged over the three channels, was tried and gave a weaker
  orientation pop-out (odd cell 1.01 to 1.26 times the others inside the search array, against 1.11 to 1.42);
- the master map is blurred by a Gaussian of standard deviation ``blur`` times the image's width (the authors' code's
  default final blur, ``blurfrac = 0.02``), applied on the master map's cells (``blur`` times its width in cells,
  reflecting at the borders) before it is brought back to the image's size;
- not included (the authors' later code, not the paper): the centre-bias removal (``unCenterBias``), the border
  attenuation, the DKL colour space. The master map (32 x 24) is brought back to the image's size bilinearly
  (:func:`repro.saliency_models.base.upsample`; the authors use bicubic); an image smaller than 32 pixels a side
  gets maps of its own size.
"""
import numpy as np
from scipy.ndimage import gaussian_filter

from .base import SaliencyModel, downsample, upsample
from .itti_koch import ORIENTATIONS, ROUNDING, gabor_energy, gabor_kernel, opponent_channels, pyramid

__all__ = ["GBVS", "map_size", "distance_weights", "activation", "concentration"]


def map_size(shape, cells):
    """``(h, w)``: ``shape`` ``(H, W)`` scaled so that its longer side is ``cells`` (at most the image's own), aspect
    ratio kept, at least 2 each."""
    height, width = int(shape[0]), int(shape[1])
    scale = min(int(cells), max(height, width)) / max(height, width)
    return max(2, int(round(height * scale))), max(2, int(round(width * scale)))


def distance_weights(size, sigma):
    """``F`` between the cells of a map of ``size`` ``(h, w)``: ``(h w, h w)``, cells in C order,
    ``exp(-((i - p)^2 + (j - q)^2) / (2 sigma^2))``, ``sigma`` in cells."""
    y, x = np.indices(size).reshape(2, -1)
    squared = (y[:, None] - y[None, :]) ** 2 + (x[:, None] - x[None, :]) ** 2
    return np.exp(-squared / (2.0 * sigma ** 2))


def activation(values, weights, floor):
    """Equilibrium distribution of the chain of ``w1 = |log(M_i / M_j)| F_ij``: the weighted degrees, normalised.

    Parameters
    ----------
    values : ndarray, shape (h, w)
        A feature map ``M``, non-negative.
    weights : ndarray, shape (h w, h w)
        ``F`` (:func:`distance_weights`).
    floor : float
        Added to ``M`` as a fraction of its maximum before the logarithm.

    Returns
    -------
    ndarray, shape (h, w)
        Sums to 1, or zero everywhere for a map without contrast.
    """
    top = values.max()
    if top <= ROUNDING:
        return np.zeros(values.shape)
    logs = np.log(np.maximum(values.ravel(), 0) + floor * top)
    if np.ptp(logs) <= ROUNDING:
        return np.zeros(values.shape)
    degrees = (np.abs(logs[:, None] - logs[None, :]) * weights).sum(axis=1)
    return (degrees / degrees.sum()).reshape(values.shape)


def concentration(mass, weights):
    """Equilibrium distribution of the chain of ``w2(i -> j) = A_j F_ij``: ``pi_i`` proportional to
    ``A_i sum_j F_ij A_j``.

    Parameters
    ----------
    mass : ndarray, shape (h, w)
        An activation map ``A`` (non-negative).
    weights : ndarray, shape (h w, h w)
        ``F`` (:func:`distance_weights`).

    Returns
    -------
    ndarray, shape (h, w)
        Sums to 1, or zero everywhere where ``A`` is.
    """
    flat = mass.ravel()
    stationary = flat * (weights @ flat)
    total = stationary.sum()
    return (stationary / total if total > 0 else np.zeros_like(stationary)).reshape(mass.shape)


class GBVS(SaliencyModel):
    """Graph-based visual saliency (Harel, Koch & Perona 2006).

    Parameters
    ----------
    map_cells : int
        Longer side of the feature and saliency maps, in cells (the authors: 32).
    levels : tuple of int
        Pyramid levels of the feature maps (the authors: 2, 3, 4).
    sigma_activation, sigma_normalisation : float
        ``sigma`` of ``F`` in the activation and the normalisation graphs, as fractions of the map's mean side
        (the authors: 0.15 and 0.06).
    floor : float
        Added to a feature map, as a fraction of its maximum, before the log ratio (ours).
    colour_threshold : float
        Fraction of the maximal intensity under which colours are zero (Itti et al.: 0.1).
    gabor_wavelength, gabor_sigma : float
        The Gabor filters' wavelength and envelope, in pixels of each level (ours, as for Itti & Koch).
    blur : float
        Standard deviation of the final blur of the master map, as a fraction of its width (the authors: 0.02).
    """
    name = "gbvs"
    citation = ("J. Harel, C. Koch and P. Perona, Graph-Based Visual Saliency, Advances in Neural Information "
                "Processing Systems 19 (NIPS 2006), 545-552, doi:10.7551/mitpress/7503.003.0073")

    def __init__(self, map_cells=32, levels=(2, 3, 4), sigma_activation=0.15, sigma_normalisation=0.06, floor=0.01,
                 colour_threshold=0.1, gabor_wavelength=4.0, gabor_sigma=2.0, blur=0.02):
        if map_cells < 2 or not levels or min(levels) < 0 or min(sigma_activation, sigma_normalisation, floor) <= 0:
            raise ValueError(f"gbvs: map_cells {map_cells}, levels {tuple(levels)}, sigmas {sigma_activation}, "
                             f"{sigma_normalisation}, floor {floor}: expected map_cells >= 2, levels >= 0 and "
                             f"positive sigmas and floor")
        self._set(map_cells=int(map_cells), levels=[int(n) for n in levels], sigma_activation=float(sigma_activation),
                  sigma_normalisation=float(sigma_normalisation), floor=float(floor),
                  colour_threshold=float(colour_threshold), gabor_wavelength=float(gabor_wavelength),
                  gabor_sigma=float(gabor_sigma), blur=float(blur))

    def feature_maps(self, image):
        """``{channel: [feature map, ...]}`` (``"intensity"``, ``"colour"``, ``"orientation"``), each ``(H_n, W_n)``
        at its pyramid level, non-negative."""
        count = max(self.levels) + 1
        intensity, red_green, blue_yellow = (pyramid(channel, count)
                                             for channel in opponent_channels(image, self.colour_threshold))
        kernels = [gabor_kernel(theta, self.gabor_wavelength, self.gabor_sigma) for theta in ORIENTATIONS]
        return {"intensity": [intensity[n] for n in self.levels],
                "colour": [np.maximum(sign * opponent[n], 0) for n in self.levels
                           for opponent in (red_green, blue_yellow) for sign in (1, -1)],
                "orientation": [gabor_energy(intensity[n], kernel) for n in self.levels for kernel in kernels]}

    def compute(self, image):
        size = map_size(image.shape, self.map_cells)
        scale = (size[0] + size[1]) / 2
        weights_activation = distance_weights(size, self.sigma_activation * scale)
        weights_normalisation = distance_weights(size, self.sigma_normalisation * scale)
        master = sum(concentration(activation(downsample(values, size), weights_activation, self.floor),
                                   weights_normalisation)
                     for maps in self.feature_maps(image).values() for values in maps)
        return upsample(gaussian_filter(master, self.blur * size[1], mode="reflect"), image.shape[:2])
