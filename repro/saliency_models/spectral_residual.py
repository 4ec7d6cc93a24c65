"""Spectral residual saliency (Hou & Zhang 2007), implemented from the paper.

X. Hou and L. Zhang, "Saliency Detection: A Spectral Residual Approach", IEEE Conference on Computer Vision and
Pattern Recognition (CVPR), 2007. doi:10.1109/CVPR.2007.383267

What the paper describes, for a grey image ``I`` reduced to 64 pixels (its width):

- ``A(f) = |F[I](f)|``, ``P(f) = arg F[I](f)``, the log spectrum ``L(f) = log A(f)``;
- the spectral residual ``R(f) = L(f) - h_n(f) * L(f)``, ``h_n`` the ``n x n`` averaging filter, ``n = 3``;
- the saliency map ``S(x) = g(x) * |F^-1[exp(R(f) + i P(f))]|^2``, ``g`` a Gaussian of standard deviation 8 (pixels of
  the 64-pixel map).

Parameters used: ``width=64``, ``average=3``, ``sigma=8.0`` (in pixels of the reduced image), as in the paper.

Deviations and choices the paper leaves open:

- grey image: :func:`skimage.color.rgb2gray` (luminance ``0.2125 R + 0.7154 G + 0.0721 B``); the paper does not say
  how colour images are made grey;
- the reduction to 64 pixels wide keeps the aspect ratio (the height follows); it is bilinear after a Gaussian
  anti-aliasing filter (:func:`repro.saliency_models.base.downsample`); the paper does not say which filter;
- the 3 x 3 average of the log spectrum wraps around (the spectrum is periodic); the paper does not say;
- frequencies of zero amplitude (below ``1e-10`` of the largest, i.e. rounding) have no phase: they stay zero in the
  reconstruction, where ``exp(R)`` would give them a value of no meaning (a uniform image then gives a uniform map);
- the Gaussian ``g`` reflects at the borders (the paper does not say);
- the map is brought back to the image's size bilinearly (:func:`repro.saliency_models.base.upsample`); the paper
  shows maps at the reduced size.

OpenCV's ``cv2.saliency.StaticSaliencySpectralResidual`` (opencv-contrib) is an independent implementation; the
tests measure the agreement (``tests/test_saliency_models.py``).
"""
import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter
from skimage.color import rgb2gray

from .base import SaliencyModel, downsample, upsample, working_size

__all__ = ["SpectralResidual"]


class SpectralResidual(SaliencyModel):
    """Spectral residual saliency (Hou & Zhang 2007).

    Parameters
    ----------
    width : int
        Width in pixels of the reduced grey image (the paper: 64).
    average : int
        Side of the averaging filter of the log spectrum, ``n`` (the paper: 3).
    sigma : float
        Standard deviation of the Gaussian smoothing the map, in pixels of the reduced image (the paper: 8).
    """
    name = "spectral_residual"
    citation = ("X. Hou and L. Zhang, Saliency Detection: A Spectral Residual Approach, CVPR 2007, "
                "doi:10.1109/CVPR.2007.383267")

    def __init__(self, width=64, average=3, sigma=8.0):
        self._set(width=int(width), average=int(average), sigma=float(sigma))

    def small_map(self, grey):
        """The map at the reduced size, of a grey image already reduced: ``(h, w)`` -> ``(h, w)`` float64."""
        spectrum = np.fft.fft2(grey)
        amplitude = np.abs(spectrum)
        if amplitude.max() == 0:                                       # a black image: nothing stands out
            return np.zeros(grey.shape)
        present = amplitude > 1e-10 * amplitude.max()
        log_amplitude = np.log(np.where(present, amplitude, amplitude.max() * 1e-10))
        residual = log_amplitude - uniform_filter(log_amplitude, size=self.average, mode="wrap")
        phase = np.where(present, spectrum / np.where(present, amplitude, 1), 0)
        return gaussian_filter(np.abs(np.fft.ifft2(np.exp(residual) * phase)) ** 2, self.sigma, mode="reflect")

    def compute(self, image):
        grey = downsample(rgb2gray(image), working_size(image.shape, self.width))
        return upsample(self.small_map(grey), image.shape[:2])
