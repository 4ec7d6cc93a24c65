"""The one interface of the earlier saliency models, and the resampling they share.

A model is a :class:`SaliencyModel`: ``model(image)`` takes an ``(H, W, 3)`` uint8 RGB image and returns an
``(H, W)`` float64 map, finite, deterministic (the same image gives the same map, bit for bit). Its
:attr:`~SaliencyModel.name`, :attr:`~SaliencyModel.parameters` (JSON-able) and :attr:`~SaliencyModel.citation`
say what it is; :attr:`~SaliencyModel.cache_key` hashes them, so that a map cached on disk
(:mod:`repro.saliency_models.cache`) is never taken for the map of other parameters.

Most of these models work on a small copy of the image (the spectral models at 64 pixels wide): the image is
reduced with :func:`downsample` and the map brought back to the image's size with :func:`upsample`, bilinear
(:func:`repro.resampling.resize_operator`, the same interpolation ``evaluate --resize`` applies to maps).
"""
import hashlib
import json

import numpy as np
from skimage.transform import resize

from ..datasets import check_pixels
from ..resampling import resize_operator

__all__ = ["SaliencyModel", "check_image", "working_size", "downsample", "upsample"]

#: Version of what the models compute; part of every cache key, so a change of the code's meaning can retire caches.
FORMAT = 1


def check_image(image):
    """``image`` as an ``(H, W, 3)`` uint8 array, or ValueError saying what it is instead."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"a saliency model takes an (height, width, 3) uint8 RGB image, got shape {image.shape} "
                         f"dtype {image.dtype}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"an image of (height, width) = {image.shape[:2]} pixels is too small for a saliency model "
                         f"(at least 2 x 2)")
    check_pixels(*image.shape[:2], "an image given to a saliency model")
    return image


def working_size(shape, width):
    """``(h, w)``: an image of ``shape`` ``(H, W)`` scaled to ``width`` pixels wide, its aspect ratio kept
    (``h = round(H * width / W)``, at least 2)."""
    height, full_width = int(shape[0]), int(shape[1])
    return max(2, int(round(height * width / full_width))), int(width)


def downsample(array, size):
    """``array`` ``(H, W)`` or ``(H, W, C)`` (float) resized to ``size`` ``(h, w)``: Gaussian anti-aliasing
    (:func:`skimage.transform.resize`, its default sigma for the scale factor) and bilinear interpolation; float64."""
    return resize(np.asarray(array, dtype=np.float64), tuple(size) + np.shape(array)[2:], order=1,
                  mode="reflect", anti_aliasing=True, preserve_range=True)


def upsample(values, shape):
    """A map ``(h, w)`` resized bilinearly to ``shape`` ``(H, W)`` (pixel centres aligned, edges held); float64."""
    values = np.asarray(values, dtype=np.float64)
    return resize_operator(int(shape[0]), values.shape[0]) @ values @ resize_operator(int(shape[1]), values.shape[1]).T


class SaliencyModel:
    """An earlier saliency model: ``model(image) -> (H, W)`` float64 map.

    A subclass sets the class attributes :attr:`name` and :attr:`citation`, takes its parameters as keyword
    arguments of ``__init__`` (storing them with :meth:`_set`) and implements :meth:`compute`.

    Attributes
    ----------
    name : str
        The model's name in :data:`repro.saliency_models.MODELS` and on the command line.
    citation : str
        The paper the model is implemented from.
    """
    name = None
    citation = None

    def _set(self, **parameters):
        """Record the parameters (numbers, strings; JSON-able) and make them attributes."""
        json.dumps(parameters)
        self._parameters = dict(parameters)
        for key, value in parameters.items():
            setattr(self, key, value)

    @property
    def parameters(self):
        """``{name: value}`` of everything that determines the maps (JSON-able)."""
        return dict(self._parameters)

    @property
    def cache_key(self):
        """SHA-1 of the name, the parameters and :data:`FORMAT`: what determines a map besides the image."""
        return hashlib.sha1(json.dumps([self.name, self.parameters, FORMAT], sort_keys=True).encode()).hexdigest()

    def compute(self, image):
        """The model's map of a checked ``(H, W, 3)`` uint8 image: ``(H, W)`` (any float dtype)."""
        raise NotImplementedError

    def __call__(self, image):
        """The saliency map of ``image``.

        Parameters
        ----------
        image : ndarray, shape (H, W, 3), uint8 RGB

        Returns
        -------
        ndarray, shape (H, W), float64
            Finite; larger is more salient; the scale is the model's own (only the order of values matters to the
            postprocessing).

        Raises
        ------
        ValueError
            Not an ``(H, W, 3)`` uint8 image, smaller than 2 x 2, or beyond the pixel limit.
        """
        image = check_image(image)
        values = np.asarray(self.compute(image), dtype=np.float64)
        if values.shape != image.shape[:2] or not np.isfinite(values).all():
            raise ValueError(f"{self.name}: map of shape {values.shape} (finite: {bool(np.isfinite(values).all())}) "
                             f"for an image of (height, width) {image.shape[:2]}")       # a bug, said plainly
        return values

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.parameters.items())})"
