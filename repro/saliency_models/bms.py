"""Boolean map saliency, BMS (Zhang & Sclaroff 2013), implemented from the paper.

J. Zhang and S. Sclaroff, "Saliency Detection: A Boolean Map Approach", IEEE International Conference on Computer
Vision (ICCV), 2013. doi:10.1109/ICCV.2013.26

What the paper describes: an image is characterised by a set of Boolean maps ``B = THRESH(phi(I), theta)``, ``phi``
one of its colour channels (CIE Lab), ``theta`` a threshold taken uniformly over the channel's range ``[0, 255]``
with a fixed step ``delta``. Following the Gestalt principle that figures are surrounded and the ground is not, a
Boolean map is *activated* where it has regions not connected to the image border: the activation map ``M(B)`` is 1
on the regions of ``B`` and of its complement ``not B`` that do not touch the border (flood fill from the border), 0
elsewhere. The attention map ``A(B)`` is ``M(B)`` dilated (kernel width ``omega_d1``) and divided by its L2 norm,
which favours maps with few, small surrounded regions. The mean attention map ``A_bar = mean_B A(B)`` over all
channels and thresholds, dilated (``omega_d2``) and blurred by a Gaussian of standard deviation ``sigma``, is the
saliency map; each Boolean map is first cleaned by a morphological opening (``omega_o``).

Sources: the paper's full text could not be retrieved here (only its abstract and the authors' project page,
cs-people.bu.edu/jmzhang/BMS/BMS.html); the steps above are the paper's method as the brief for this module and
the authors' release state it, and the parameter values are the authors' published defaults for eye fixation
prediction: the command line of their ICCV release (``BMS <in> <out> 8 5 7 9 9 1 0``: step ``delta``, opening
``omega_o``, dilation ``omega_d1``, dilation ``omega_d2``, blur ``sigma``, L2 normalisation on, border handling
off), whose program reduces the image to 600 pixels wide and smooths it by a 3 x 3 Gaussian of sigma 1. Used
here: ``width=600``, ``step=8``, ``opening=5``, ``dilation=7``, ``final_dilation=9``, ``sigma=9.0`` (pixels of the
reduced map), ``presmooth=1.0``.

Colour: ``colour="whitened_lab"`` (default, ``regulariser=50.0``) decorrelates the Lab channels and scales them to
unit variance before thresholding. The journal version (Zhang & Sclaroff, "Exploiting Surroundedness for Saliency
Detection: A Boolean Map Approach", IEEE TPAMI 38(5), 2016) says so in its abstract ("a whitened feature space"),
the authors' later released code whitens with a covariance regularised by 50 (8-bit Lab units), and the brief
asks for it; the ICCV abstract speaks only of thresholding "the image's color channels". Which of the two the ICCV
experiments used is left open: ``colour="lab"`` thresholds the plain Lab channels.

Deviations and choices the paper leaves open:

- the thresholds are the fixed grid ``0, delta, 2 delta, ...`` (the abstract speaks of random thresholds; the
  release takes a step);
- every image is scaled to 600 pixels wide, up if narrower (as the release does; a tall image becomes large and
  slow), keeping the aspect ratio (:func:`repro.saliency_models.base.downsample`, Gaussian anti-aliasing and
  bilinear); the reduced, pre-smoothed image is rounded to 8-bit values, as the authors' images are;
- Lab is :func:`skimage.color.rgb2lab` (D65) in 8-bit codes, ``round(L * 255 / 100)``, ``round(a + 128)``,
  ``round(b + 128)``: with ``colour="lab"`` the thresholds ``0, delta, 2 delta, ... < 256`` apply to these codes
  (the rounding also removes skimage's few thousandths of ``a`` and ``b`` on grey pixels, which would otherwise make
  Boolean maps of nothing);
- whitening is the symmetric (ZCA) one, ``x -> (C + r I)^(-1/2) (x - mean)``, ``C`` the codes' 3 x 3 covariance
  over the image; each whitened channel is then stretched to ``[0, 255]`` (minimum to 0, maximum to 255) for the
  same thresholds. A constant channel stays 0 (and one whose spread is below ``1e-6`` of the widest, rounding): it
  makes no Boolean map with anything surrounded, and a uniform image gives a uniform map, zero;
- ``B = channel > theta``; ``not B`` is the complement of the opened ``B``; one attention map per channel and
  threshold covers the surrounded regions of both (whether the paper normalises them together or apart could not
  be checked);
- "connected to the border": 4-connectivity (:func:`scipy.ndimage.label`), for ``B`` and ``not B`` alike;
- the opening and both dilations use square kernels (odd width ``omega``), replicating the border pixels;
- the blur is :func:`scipy.ndimage.gaussian_filter` (reflecting at the borders, truncated at 4 sigma), the
  pre-smoothing the same truncated to 3 x 3; the map is brought back to the image's size bilinearly
  (:func:`repro.saliency_models.base.upsample`);
- the mean is over every (channel, threshold) pair, those whose Boolean map is empty or full (attention map 0)
  included; consecutive thresholds that give the same Boolean map (nested maps of equal size) share one attention
  map, computed once: the result is the same, faster.
"""
import numpy as np
from scipy.ndimage import gaussian_filter, label, maximum_filter
from skimage.color import rgb2lab

from .base import SaliencyModel, downsample, upsample, working_size

__all__ = ["BMS", "border_connected", "activation", "square_morphology", "attention_map", "stretch",
           "feature_channels"]

#: Channels the Boolean maps are taken of.
COLOURS = ("whitened_lab", "lab")


def border_connected(mask):
    """The pixels of ``mask`` ``(h, w)`` bool whose 4-connected region in ``mask`` touches the image border:
    ``(h, w)`` bool (False off ``mask``)."""
    regions, count = label(mask, output=np.intp)              # intp: indexes without a cast
    touching = np.zeros(count + 1, bool)
    for edge in (regions[0], regions[-1], regions[:, 0], regions[:, -1]):
        touching[edge] = True
    touching[0] = False
    return touching[regions]


def activation(boolean):
    """``M(B)``: the regions of ``B`` ``(h, w)`` bool and of its complement that do not touch the image border (are
    surrounded): ``(h, w)`` bool."""
    return ~(border_connected(boolean) | border_connected(~boolean))


def square_morphology(mask, width, dilate):
    """Dilation (``dilate``) or erosion of ``mask`` ``(h, w)`` bool by a ``width x width`` square (odd width; an even
    one acts as ``width - 1``), replicating the border pixels: the maximum (minimum) over the square, by shifts."""
    combine = np.logical_or if dilate else np.logical_and
    for axis in (0, 1):
        source, mask = mask, mask.copy()
        ahead, behind = [slice(None)] * 2, [slice(None)] * 2
        for shift in range(1, (width - 1) // 2 + 1):
            ahead[axis], behind[axis] = slice(None, -shift), slice(shift, None)
            combine(mask[tuple(ahead)], source[tuple(behind)], out=mask[tuple(ahead)])
            combine(mask[tuple(behind)], source[tuple(ahead)], out=mask[tuple(behind)])
    return mask


def attention_map(boolean, opening, dilation):
    """``A(B)``, the activation of ``B`` (opened) dilated and divided by its L2 norm, as its support and value.

    Parameters
    ----------
    boolean : ndarray, shape (h, w), bool
    opening, dilation : int
        Widths of the square kernels of the opening of ``B`` and of the dilation of the activation map (1: none).

    Returns
    -------
    active : ndarray, shape (h, w), bool
        The dilated activation map, ``n`` pixels.
    value : float
        ``A(B)``'s value on them, ``1 / sqrt(n)`` (its L2 norm is 1); ``A(B)`` is 0 elsewhere (everywhere if
        ``n = 0``).
    """
    cleaned = square_morphology(square_morphology(boolean, opening, False), opening, True)
    active = square_morphology(activation(cleaned), dilation, True)
    return active, 1.0 / np.sqrt(max(np.count_nonzero(active), 1))


def stretch(channels, constant):
    """Each of ``channels`` ``(C, ...)`` scaled to ``[0, 255]``, flattened: ``(C, N)``; one whose spread is at most
    ``constant`` is 0."""
    flat = channels.reshape(len(channels), -1)
    low, spread = flat.min(axis=1), np.ptp(flat, axis=1)
    varies = spread > constant
    scale = np.where(varies, 255.0 / np.where(varies, spread, 1.0), 0.0)
    return (flat - low[:, None]) * scale[:, None]


def feature_channels(rgb, colour="whitened_lab", regulariser=50.0):
    """The channels the Boolean maps threshold, on ``[0, 255]``: Lab in 8-bit codes, or those whitened and stretched.

    Parameters
    ----------
    rgb : ndarray, shape (h, w, 3), 8-bit values (integers in 0 ... 255, any dtype)
    colour : {"whitened_lab", "lab"}
    regulariser : float
        Added to the covariance's diagonal before whitening (8-bit Lab units squared).

    Returns
    -------
    ndarray, shape (3, h, w), float64
    """
    lab = np.moveaxis(rgb2lab(np.asarray(rgb) / 255.0), 2, 0).reshape(3, -1)
    codes = np.round(lab * [[2.55], [1], [1]] + [[0], [128], [128]])
    if colour == "lab":
        return codes.reshape((3,) + rgb.shape[:2])
    centred = codes - codes.mean(axis=1, keepdims=True)
    centred[np.ptp(codes, axis=1) == 0] = 0.0                      # a constant channel: exactly 0, not its rounding
    values, vectors = np.linalg.eigh(centred @ centred.T / centred.shape[1] + regulariser * np.eye(3))
    whitened = (vectors / np.sqrt(values)) @ vectors.T @ centred
    return stretch(whitened, 1e-6 * max(np.ptp(whitened, axis=1).max(), 1e-300)).reshape((3,) + rgb.shape[:2])


class BMS(SaliencyModel):
    """Boolean map saliency (Zhang & Sclaroff 2013).

    Parameters
    ----------
    width : int
        Width in pixels of the reduced image (the authors': 600).
    step : float
        Step ``delta`` between thresholds on the channels' ``[0, 255]`` (8).
    opening : int
        Width ``omega_o`` of the opening of each Boolean map (5; 1 for none).
    dilation : int
        Width ``omega_d1`` of the dilation of each activation map (7).
    final_dilation : int
        Width ``omega_d2`` of the dilation of the mean attention map (9; 1 for none).
    sigma : float
        Standard deviation of the final Gaussian blur, in pixels of the reduced image (9).
    presmooth : float
        Standard deviation of the 3 x 3 Gaussian smoothing the reduced image (1; 0 for none).
    colour : {"whitened_lab", "lab"}
        Whitened or plain Lab channels.
    regulariser : float
        Regularisation of the colour covariance for whitening (50).
    """
    name = "bms"
    citation = ("J. Zhang and S. Sclaroff, Saliency Detection: A Boolean Map Approach, ICCV 2013, "
                "doi:10.1109/ICCV.2013.26")

    def __init__(self, width=600, step=8.0, opening=5, dilation=7, final_dilation=9, sigma=9.0, presmooth=1.0,
                 colour="whitened_lab", regulariser=50.0):
        if colour not in COLOURS:
            raise ValueError(f"bms: colour {colour!r}, expected one of {', '.join(COLOURS)}")
        if step <= 0 or min(opening, dilation, final_dilation) < 1:
            raise ValueError(f"bms: step {step}, opening {opening}, dilation {dilation}, final_dilation "
                             f"{final_dilation}: expected step > 0 and kernel widths >= 1")
        self._set(width=int(width), step=float(step), opening=int(opening), dilation=int(dilation),
                  final_dilation=int(final_dilation), sigma=float(sigma), presmooth=float(presmooth),
                  colour=str(colour), regulariser=float(regulariser))

    def mean_attention(self, channels):
        """``A_bar``: the mean attention map over the channels ``(C, h, w)`` (on ``[0, 255]``) and thresholds
        ``0, step, ... < 256``: ``(h, w)`` float64."""
        thresholds = np.arange(0.0, 256.0, self.step)
        total = np.zeros(channels.shape[1:])
        for channel in channels:
            previous, attention = None, None
            for theta in thresholds:
                boolean = channel > theta
                count = np.count_nonzero(boolean)
                if count in (0, boolean.size):
                    continue                                   # nothing, or everything: nothing is surrounded
                if count != previous:                          # nested maps: the same size is the same map
                    previous, attention = count, attention_map(boolean, self.opening, self.dilation)
                np.add(total, attention[1], out=total, where=attention[0])
        return total / (len(thresholds) * len(channels))

    def compute(self, image):
        small = downsample(image, working_size(image.shape, self.width))
        if self.presmooth > 0:
            small = gaussian_filter(small, (self.presmooth, self.presmooth, 0), mode="reflect",
                                    truncate=1.0 / self.presmooth)              # radius 1 pixel: 3 x 3
        values = self.mean_attention(feature_channels(np.round(small), self.colour, self.regulariser))
        if self.final_dilation > 1:
            values = maximum_filter(values, self.final_dilation, mode="nearest")
        return upsample(gaussian_filter(values, self.sigma, mode="reflect"), image.shape[:2])
