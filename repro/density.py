"""Fixation density models: the one interface of every model of where people look.

A *density model* gives, for an image, the natural log of the probability of a fixation at every
pixel: an ``(H, W)`` array whose ``exp`` sums to one. The centre bias
(:class:`repro.centerbias.CenterBias`, :class:`~repro.centerbias.CenterBiasTemplate`), the gold standard
(:class:`repro.goldstandard.GoldStandard`) and DeepGaze I (:class:`repro.model.ReadoutDensity`) all answer
the same two questions:

* :meth:`DensityModel.log_density` ``(n)``: dataset image ``n``. A model estimated from a dataset's
  fixations predicts image ``n`` without them (the centre bias leaves the image out, the gold standard a
  subject); one that was not is evaluated on the image.
* :meth:`DensityModel.log_density_of` ``(image)``: a new image ``(H, W, 3)`` uint8 RGB, using everything
  the model knows.

Adding a model means implementing these two methods, nothing else: :mod:`repro.metrics` scores any
density model (or any function ``n -> (H, W)`` map, :func:`as_density`), and training takes one as the
prior. A model on a readout's grid of cells may also answer :meth:`DensityModel.log_cell_mass` faster
than by summing its pixel density (the centre bias does).
"""
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DensityModel", "DensityFunction", "as_density", "log_prior_in_cells", "image_size"]


class DensityModel:
    """A model of the fixation density of images (see the module docstring).

    Subclasses implement :meth:`log_density`, :meth:`log_density_of`, or both; the other one then says
    clearly that this model cannot answer it.
    """

    def log_density(self, n):
        """Log-density of dataset image ``n``.

        Parameters
        ----------
        n : int
            Index of the image in the dataset the model was made for.

        Returns
        -------
        ndarray, shape (H, W)
            ``exp`` sums to one over the image's pixels.
        """
        raise TypeError(f"{self!r} knows no dataset images: use log_density_of(image) for a new image")

    def log_density_of(self, image):
        """Log-density of a new image.

        Parameters
        ----------
        image : ndarray, shape (H, W, 3), uint8 RGB
            Models that ignore the content (a centre bias) use only its height and width.

        Returns
        -------
        ndarray, shape (H, W)
            ``exp`` sums to one over the image's pixels.
        """
        raise TypeError(f"{self!r} predicts only the images of its dataset: use log_density(n)")

    def log_cell_mass(self, n, grid):
        """Log of the probability mass of dataset image ``n`` in every cell of a readout grid.

        Parameters
        ----------
        n : int
        grid : repro.resampling.ReadoutGrid
            The grid of image ``n`` (``grid.image_shape`` is its size).

        Returns
        -------
        ndarray, shape grid.shape
        """
        return grid.log_cell_sums(self.log_density(n))


class DensityFunction(DensityModel):
    """A density model from a function ``n -> (H, W)`` log-density of dataset image ``n``: maps computed
    elsewhere (a saliency model's, converted to densities) or held in a list or dict.

    Parameters
    ----------
    function : callable
        ``n -> (H, W)`` array (or a :class:`repro.metrics.CellMap`).
    name : str
        What it is, for messages.
    """

    def __init__(self, function, name="maps"):
        self.function = function
        self.name = name

    def log_density(self, n):
        return self.function(n)

    def __repr__(self):
        return f"DensityFunction({self.name})"


def as_density(maps):
    """The one way :mod:`repro.metrics` and :mod:`repro.training` read per-image maps.

    Parameters
    ----------
    maps : DensityModel, callable, sequence or mapping
        A density model, a function ``n -> (H, W)`` map, or maps indexed by the image index (a list,
        an array ``(n_images, H, W)``, a dict ``{n: map}``).

    Returns
    -------
    DensityModel
        Whose :meth:`~DensityModel.log_density` ``(n)`` is the map of image ``n``.
    """
    if isinstance(maps, DensityModel):
        return maps
    if callable(maps):
        return DensityFunction(maps, getattr(maps, "__name__", "function"))
    if isinstance(maps, (Sequence, Mapping, np.ndarray)):
        return DensityFunction(_lookup(maps), f"{type(maps).__name__} of {len(maps)} maps")
    raise TypeError(f"expected a density model, a function n -> map, or maps indexed by n; got {type(maps).__name__}")


def _lookup(maps):
    """``n -> maps[n]`` for maps held in a list, an array or a dict, with a ValueError naming ``n`` and the maps
    there are where ``maps`` has no map of image ``n`` (a fixation on an image beyond the maps given)."""
    def lookup(n):
        if isinstance(maps, Mapping):
            if n not in maps:
                raise ValueError(f"no map of image {n}: the maps given are of images {sorted(maps)[:10]}"
                                 f"{' ...' if len(maps) > 10 else ''}; is a fixation on an image without a map?")
        elif not 0 <= n < len(maps):
            raise ValueError(f"no map of image {n}: {len(maps)} maps were given (images 0..{len(maps) - 1}); is a "
                             f"fixation on an image beyond them?")
        return maps[n]
    return lookup


def log_prior_in_cells(prior, n, grid):
    """Log of a prior's mass ``(h, w)`` in the cells of ``grid`` for dataset image ``n``: what the readout adds as
    ``alpha * c`` (:mod:`repro.model`).

    Parameters
    ----------
    prior : None or anything :func:`as_density` takes
        None: uniform (the log of each cell's pixel count). Otherwise its :meth:`DensityModel.log_cell_mass`
        (a :class:`repro.centerbias.CenterBias` leaves image ``n`` out, summed over the cells directly; a
        function ``n -> (H, W)`` pixel log-density is summed over them).
    n : int
    grid : repro.resampling.ReadoutGrid
    """
    return grid.log_pixels if prior is None else as_density(prior).log_cell_mass(n, grid)


def image_size(image):
    """``(height, width)`` of an image ``(H, W)`` or ``(H, W, channels)``; ValueError for anything else (a shape
    tuple given instead of the image, say)."""
    shape = np.shape(image)
    if len(shape) not in (2, 3) or min(shape[:2]) < 1:
        raise ValueError(f"expected an image (H, W, 3) (or (H, W)), got an array of shape {shape}")
    return int(shape[0]), int(shape[1])
