"""Itti, Koch & Niebur's saliency map (1998), implemented from the paper.

L. Itti, C. Koch and E. Niebur, "A Model of Saliency-Based Visual Attention for Rapid Scene Analysis", IEEE
Transactions on Pattern Analysis and Machine Intelligence 20(11), 1254-1259, 1998. doi:10.1109/34.730558

What the paper describes, and is done here:

- nine spatial scales ``sigma = 0 ... 8``: dyadic Gaussian pyramids (low-pass filter, subsample by 2), scale 8 is
  1/256 of the image;
- intensity ``I = (r + g + b) / 3``; ``r, g, b`` divided by ``I`` where ``I`` exceeds 1/10 of its maximum over the
  image (zero elsewhere); broadly tuned colours ``R = r - (g + b)/2``, ``G = g - (r + b)/2``, ``B = b - (r + g)/2``,
  ``Y = (r + g)/2 - |r - g|/2 - b``, negative values set to zero; a Gaussian pyramid of each;
- orientation ``O(sigma, theta)``, ``theta`` in 0, 45, 90, 135 degrees, from the intensity pyramid by Gabor filters;
- centre-surround differences, centre ``c`` in {2, 3, 4}, surround ``s = c + delta``, ``delta`` in {3, 4}; the
  across-scale difference interpolates the surround to the centre's scale and subtracts point by point:
  ``I(c, s) = |I(c) - I(s)|`` (6 maps), ``RG(c, s)``, ``BY(c, s)`` (12), ``O(c, s, theta)`` (24);
- the normalisation operator ``N(.)``: scale the map to a fixed range ``[0, M]`` (here ``M = 1``), find the global
  maximum ``M`` and the average ``m`` of all the other local maxima, multiply the map by ``(M - m)^2``;
- conspicuity maps at scale 4 by across-scale addition (each map reduced to scale 4, added point by point):
  ``I_bar = sum N(I(c, s))``, ``C_bar = sum [N(RG(c, s)) + N(BY(c, s))]``, ``O_bar = sum_theta N(sum N(O(c, s,
  theta)))``; the saliency map ``S = (N(I_bar) + N(C_bar) + N(O_bar)) / 3`` at scale 4.

Parameters used: ``centres=(2, 3, 4)``, ``deltas=(3, 4)``, ``map_scale=4``, ``colour_threshold=0.1`` (the paper's);
``gabor_wavelength=4.0`` and ``gabor_sigma=2.0`` pixels at each scale (ours, see below).

Deviations and choices the paper leaves open:

- the pyramid's low-pass filter is the 5-tap binomial ``[1, 4, 6, 4, 1] / 16`` (Burt & Adelson's), reflecting at the
  borders; the paper says only "Gaussian";
- orientation: the paper takes ``O`` from oriented (Gabor) pyramids after Greenspan et al. 1994; here each level of
  the intensity pyramid is filtered by a complex Gabor filter (wavelength 4 pixels, Gaussian envelope of standard
  deviation 2 pixels, zero mean) and ``O`` is the modulus of the response (the energy of the quadrature pair);
- colour double opponency: the paper prints ``RG(c, s) = |(R(c) - G(c)) (-) (G(s) - R(s))|``, which taken literally
  adds the centre's and the surround's red-green difference (and so responds to a uniform red field); implemented is
  the centre-surround contrast the text describes, ``|(R - G)(c) (-) (R - G)(s)|``, likewise ``BY``;
- local maxima in ``N(.)``: points that equal the maximum of their 3 x 3 neighbourhood and exceed its minimum (flat
  plateaus are no maxima); the global maximum's own point is left out of the average; a map that is zero everywhere
  stays zero, and so does one whose maximum is below ``1e-9`` (rounding, not contrast);
- interpolation between scales is bilinear (:func:`repro.saliency_models.base.upsample`); reduction to scale 4
  repeats the pyramid's filter and subsampling; the map at scale 4 is brought back to the image's size bilinearly;
- images too small for nine scales (under 256 pixels a side) keep 1 x 1 levels at the coarsest scales.
"""
import numpy as np
from scipy.ndimage import convolve, convolve1d, maximum_filter, minimum_filter

from .base import SaliencyModel, upsample

__all__ = ["IttiKoch", "normalise", "reduce", "pyramid", "gabor_kernel", "gabor_energy", "opponent_channels"]

#: Burt & Adelson's 5-tap binomial low-pass filter.
BINOMIAL = np.array([1, 4, 6, 4, 1]) / 16.0
#: The four orientations, in degrees.
ORIENTATIONS = (0, 45, 90, 135)


def reduce(values):
    """One pyramid step: ``(h, w)`` low-passed (:data:`BINOMIAL`, reflecting) and subsampled by 2, to
    ``(ceil(h / 2), ceil(w / 2))``."""
    smooth = convolve1d(convolve1d(values, BINOMIAL, axis=0, mode="reflect"), BINOMIAL, axis=1, mode="reflect")
    return smooth[::2, ::2]


def pyramid(values, levels):
    """``[values, reduce(values), ...]``: ``levels`` scales, scale 0 the input."""
    scales = [np.asarray(values, dtype=np.float64)]
    for _ in range(levels - 1):
        scales.append(reduce(scales[-1]))
    return scales


#: A map whose maximum is below this is zero (the rounding of a contrast that is none: the channels are in 0 ... 1).
ROUNDING = 1e-9


def normalise(values):
    """The operator ``N(.)``: ``values`` (non-negative) scaled to ``[0, 1]``, times ``(1 - m)^2`` with ``m`` the mean
    of the local maxima other than the global one (0 if there are none). A map below :data:`ROUNDING` everywhere is
    zero (scaling it up would make a map of rounding errors)."""
    top = values.max()
    if top <= ROUNDING:
        return np.zeros_like(values)
    values = values / top
    peaks = (values == maximum_filter(values, 3, mode="nearest")) & (values > minimum_filter(values, 3, mode="nearest"))
    peaks.flat[np.argmax(values)] = False
    others = values[peaks]
    mean = others.mean() if others.size else 0.0
    return values * (1.0 - mean) ** 2


def gabor_kernel(theta, wavelength, sigma):
    """A complex Gabor filter of orientation ``theta`` (degrees; 0: stripes varying along x, so vertical edges),
    zero mean, ``(k, k)`` with ``k = 2 * ceil(3 sigma) + 1``."""
    half = int(np.ceil(3 * sigma))
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    along = x * np.cos(np.radians(theta)) + y * np.sin(np.radians(theta))
    envelope = np.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))
    kernel = envelope * np.exp(2j * np.pi * along / wavelength)
    return kernel - envelope * kernel.sum() / envelope.sum()


def gabor_energy(values, kernel):
    """The modulus of the response of ``values`` ``(h, w)`` to the complex ``kernel`` (reflecting): ``(h, w)``."""
    return np.abs(convolve(values, kernel.real, mode="reflect") + 1j * convolve(values, kernel.imag, mode="reflect"))


def opponent_channels(image, colour_threshold):
    """``I, RG, BY`` of an ``(H, W, 3)`` uint8 image: intensity (in 0 ... 1) and the red-green and blue-yellow
    differences of the colours ``r, g, b`` divided by ``I``, zero where ``I`` is below ``colour_threshold`` times its
    maximum; ``(H, W)`` each."""
    rgb = image / 255.0
    intensity = rgb.mean(axis=2)
    bright = intensity > colour_threshold * intensity.max()
    r, g, b = np.moveaxis(np.where(bright[..., None], rgb / np.where(bright, intensity, 1)[..., None], 0), 2, 0)
    red, green, blue = (np.maximum(v, 0) for v in (r - (g + b) / 2, g - (r + b) / 2, b - (r + g) / 2))
    yellow = np.maximum((r + g) / 2 - abs(r - g) / 2 - b, 0)
    return intensity, red - green, blue - yellow


class IttiKoch(SaliencyModel):
    """Itti, Koch & Niebur's saliency map (1998).

    Parameters
    ----------
    centres : tuple of int
        Centre scales ``c`` (the paper: 2, 3, 4).
    deltas : tuple of int
        Surround offsets ``delta``, ``s = c + delta`` (the paper: 3, 4).
    map_scale : int
        Scale of the conspicuity and saliency maps (the paper: 4).
    colour_threshold : float
        Fraction of the maximal intensity under which ``r, g, b`` are zero (the paper: 0.1).
    gabor_wavelength, gabor_sigma : float
        The Gabor filters' wavelength and envelope, in pixels of each scale (ours).
    """
    name = "itti_koch"
    citation = ("L. Itti, C. Koch and E. Niebur, A Model of Saliency-Based Visual Attention for Rapid Scene "
                "Analysis, IEEE TPAMI 20(11):1254-1259, 1998, doi:10.1109/34.730558")

    def __init__(self, centres=(2, 3, 4), deltas=(3, 4), map_scale=4, colour_threshold=0.1, gabor_wavelength=4.0,
                 gabor_sigma=2.0):
        if not centres or not deltas or min(centres) < 0 or min(deltas) < 1 or map_scale < max(centres):
            raise ValueError(f"itti_koch: centres {tuple(centres)}, deltas {tuple(deltas)}, map_scale {map_scale}: "
                             f"expected centres >= 0, deltas >= 1 and map_scale >= every centre")
        self._set(centres=[int(c) for c in centres], deltas=[int(d) for d in deltas], map_scale=int(map_scale),
                  colour_threshold=float(colour_threshold), gabor_wavelength=float(gabor_wavelength),
                  gabor_sigma=float(gabor_sigma))

    @property
    def levels(self):
        """Number of scales: up to the coarsest surround."""
        return max(self.centres) + max(self.deltas) + 1

    def channels(self, image):
        """``I, RG, BY``: intensity and the red-green and blue-yellow differences, ``(H, W)`` each (image in 0 ... 1)."""
        return opponent_channels(image, self.colour_threshold)

    def feature_maps(self, scales):
        """``N``-normalised centre-surround maps of one pyramid, each reduced to :attr:`map_scale` and added."""
        total = 0
        for c in self.centres:
            for delta in self.deltas:
                contrast = np.abs(scales[c] - upsample(scales[c + delta], scales[c].shape))
                for _ in range(self.map_scale - c):
                    contrast = reduce(contrast)
                total = total + normalise(contrast)
        return total

    def compute(self, image):
        intensity, red_green, blue_yellow = (pyramid(channel, self.levels) for channel in self.channels(image))
        conspicuity_i = self.feature_maps(intensity)
        conspicuity_c = self.feature_maps(red_green) + self.feature_maps(blue_yellow)
        conspicuity_o = 0
        for theta in ORIENTATIONS:
            kernel = gabor_kernel(theta, self.gabor_wavelength, self.gabor_sigma)
            oriented = [gabor_energy(level, kernel) if n >= min(self.centres) else None
                        for n, level in enumerate(intensity)]
            conspicuity_o = conspicuity_o + normalise(self.feature_maps(oriented))
        saliency = (normalise(conspicuity_i) + normalise(conspicuity_c) + normalise(conspicuity_o)) / 3
        return upsample(saliency, image.shape[:2])
