"""Image signature saliency (Hou, Harel & Koch 2012), implemented from the paper.

X. Hou, J. Harel and C. Koch, "Image Signature: Highlighting Sparse Salient Regions", IEEE Transactions on Pattern
Analysis and Machine Intelligence 34(1), 194-201, 2012. doi:10.1109/TPAMI.2011.146

What the paper describes: the image signature of a channel ``x`` is ``sign(DCT(x))``; its reconstruction
``x_bar = IDCT(sign(DCT(x)))`` concentrates the energy on a spatially sparse foreground. The saliency map of a colour
image is ``S = g * sum_c (x_bar_c o x_bar_c)`` (``o`` the element-wise product), summed over the three channels of the
CIE Lab image, ``g`` a Gaussian; computed on the image reduced to 64 pixels wide.

Parameters used: ``width=64`` (the paper's reduced size), ``colour="lab"`` (the paper's channels; ``"rgb"`` is the
alternative the paper compares), ``sigma=0.05`` (the Gaussian's standard deviation as a fraction of the reduced
image's width, 3.2 pixels at 64).

Deviations and choices the paper leaves open:

- ``sigma``: our reading of the paper's blur width (a few per cent of the image width); the exact value of the
  authors' experiments could not be checked against the paper's text here. It is a parameter, part of the cache key;
- the reduction keeps the aspect ratio; it is bilinear after a Gaussian anti-aliasing filter
  (:func:`repro.saliency_models.base.downsample`), applied to the RGB image before the Lab conversion
  (:func:`skimage.color.rgb2lab`, D65);
- DCT: the orthonormal type-II DCT over the whole (reduced) channel (:func:`scipy.fft.dctn`), its inverse
  (:func:`scipy.fft.idctn`); coefficients below ``1e-9`` of the largest of the image (rounding of a constant
  channel, e.g. ``a`` and ``b`` of a grey image) count as zero, whose sign is 0, so that a uniform image gives a
  uniform map rather than the reconstruction of rounding noise;
- the Gaussian reflects at the borders (the paper does not say); the map is brought back to the image's size
  bilinearly (:func:`repro.saliency_models.base.upsample`).
"""
import numpy as np
from scipy.fft import dctn, idctn
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2lab

from .base import SaliencyModel, downsample, upsample, working_size

__all__ = ["ImageSignature", "signature_reconstruction"]

#: Colour spaces the model works in.
COLOURS = ("lab", "rgb")


def signature_reconstruction(channels, zero_below=1e-9):
    """``IDCT(sign(DCT(x)))`` of each channel.

    Parameters
    ----------
    channels : ndarray, shape (h, w, C)
    zero_below : float
        Coefficients whose magnitude is below this fraction of the largest (over all channels) count as zero.

    Returns
    -------
    ndarray, shape (h, w, C), float64
    """
    coefficients = dctn(np.asarray(channels, dtype=np.float64), type=2, norm="ortho", axes=(0, 1))
    scale = np.abs(coefficients).max()
    signs = np.where(np.abs(coefficients) > zero_below * scale, np.sign(coefficients), 0.0)
    return idctn(signs, type=2, norm="ortho", axes=(0, 1))


class ImageSignature(SaliencyModel):
    """Image signature saliency (Hou, Harel & Koch 2012).

    Parameters
    ----------
    width : int
        Width in pixels of the reduced image (the paper: 64).
    sigma : float
        Standard deviation of the Gaussian smoothing, as a fraction of the reduced width.
    colour : {"lab", "rgb"}
        Channels the signature is taken of (the paper: Lab).
    """
    name = "image_signature"
    citation = ("X. Hou, J. Harel and C. Koch, Image Signature: Highlighting Sparse Salient Regions, IEEE TPAMI "
                "34(1):194-201, 2012, doi:10.1109/TPAMI.2011.146")

    def __init__(self, width=64, sigma=0.05, colour="lab"):
        if colour not in COLOURS:
            raise ValueError(f"image_signature: colour {colour!r}, expected one of {', '.join(COLOURS)}")
        self._set(width=int(width), sigma=float(sigma), colour=str(colour))

    def compute(self, image):
        small = downsample(image / 255.0, working_size(image.shape, self.width))
        channels = rgb2lab(np.clip(small, 0, 1)) if self.colour == "lab" else small
        energy = (signature_reconstruction(channels) ** 2).sum(axis=2)
        return upsample(gaussian_filter(energy, self.sigma * self.width, mode="reflect"), image.shape[:2])
