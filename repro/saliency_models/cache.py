"""Saliency maps of the earlier models, cached on disk per image (as :mod:`repro.features` caches feature maps).

Layout: one HDF5 file per model, parameters and image, ``<cache>/saliency/<model name>/<model cache key>/<image
hash>.h5``, holding the dataset ``map`` ``(H, W)`` float64 and the attributes ``image`` (the image's hash,
:func:`repro.features.image_hash`), ``model`` and ``parameters`` (JSON). The model's cache key
(:attr:`repro.saliency_models.base.SaliencyModel.cache_key`) hashes its name and parameters, the image hash the
pixels. A file is written under a temporary name and renamed (:func:`repro.paths.atomic_path`); a file that cannot
be read, holds another image's map, or a map of another shape than its image, or non-finite values, is computed
again (with a warning naming it).

:meth:`MapStore.cells` keeps only what the postprocessing reads of a map (its means over the cells of a grid, and its
range: :class:`repro.postprocessing.MapCells`), in ``<folder>/cells <first> <step>/<image hash>.h5`` (datasets
``means``, attributes ``image``, ``low``, ``high``): some 60 kB for an 800 x 600 image where the map takes 3.8 MB, so
that the 700 OSIE images of seven models take 0.3 GB rather than 19 GB.
"""
import json
import logging
from pathlib import Path

import h5py
import numpy as np

from ..features import image_hash
from ..paths import atomic_path, cache_dir
from ..postprocessing import GRID, MapCells, map_cells
from ..resampling import cell_grid
from .base import check_image

__all__ = ["MapStore"]

log = logging.getLogger(__name__)


class MapStore:
    """The on-disk maps of one saliency model with its parameters.

    Parameters
    ----------
    model : repro.saliency_models.base.SaliencyModel
    folder : str or Path, optional
        Where the files go (default: ``cache_dir('saliency', model.name, model.cache_key)``).
    """

    def __init__(self, model, folder=None):
        self.model = model
        self.folder = Path(folder) if folder is not None else cache_dir("saliency", model.name, model.cache_key)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, image):
        """The cache file of ``image`` (whether it exists or not)."""
        return self.folder / f"{image_hash(image)}.h5"

    @staticmethod
    def _read(path, key, name, check):
        """Dataset ``name`` of ``path`` and the file's attributes, ``(values, attrs)``, if the file is whole, holds
        what was computed of image ``key``, and ``check(values, attrs)`` finds no problem (returns None); else None,
        with a warning naming the file when it exists."""
        if not path.exists():
            return None
        try:
            with h5py.File(path, "r") as f:
                values, attrs = f[name][()], dict(f.attrs)
        except (OSError, KeyError) as error:
            log.warning("%s: damaged saliency map cache file (%s); computing the map again", path, error)
            return None
        recorded = attrs.get("image")
        if recorded is not None and str(recorded) != key:
            problem = f"holds the map of another image ({recorded})"
        else:
            problem = check(values, attrs)
        if problem is None:
            return values, attrs
        log.warning("%s: %s; computing the map again", path, problem)
        return None

    def _write(self, path, key, datasets, **attrs):
        """Store ``datasets`` ``{name: array}`` and the attributes (with the image hash ``key`` and the model's
        name) in ``path``, atomically."""
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for name, values in datasets.items():
                f[name] = values
            f.attrs.update(image=key, model=self.model.name, **attrs)

    def map(self, image):
        """``self.model(image)``, the ``(H, W)`` float64 map of an ``(H, W, 3)`` uint8 image: from the cache, or
        computed and then stored."""
        image = check_image(image)
        key = image_hash(image)
        path = self.folder / f"{key}.h5"
        shape = image.shape[:2]

        def check(values, attrs):
            if values.shape != shape or values.dtype != np.float64:
                return f"map of shape {values.shape} dtype {values.dtype}, its image is {shape} (float64 expected)"
            return None if np.isfinite(values).all() else "non-finite values"

        found = self._read(path, key, "map", check)
        if found is not None:
            return found[0]
        values = self.model(image)
        self._write(path, key, {"map": values}, parameters=json.dumps(self.model.parameters, sort_keys=True))
        return values

    def cells(self, image, grid=GRID):
        """The map of an ``(H, W, 3)`` uint8 image on the cells of ``grid`` (:func:`repro.postprocessing.map_cells`),
        from the cache or computed (the full map is not kept) and then stored."""
        image = check_image(image)
        key = image_hash(image)
        path = self.folder / f"cells {grid[0]:g} {grid[1]:g}" / f"{key}.h5"
        cells = cell_grid(image.shape[:2], *grid)

        def check(means, attrs):
            if means.shape != cells.shape:
                return f"cells of shape {means.shape}, the grid's are {cells.shape} (another grid?)"
            return None if {"low", "high"} <= set(attrs) else "no low/high attributes"

        stored = self._read(path, key, "means", check)
        if stored is not None:
            means, attrs = stored
            return MapCells(cells, means, float(attrs["low"]), float(attrs["high"]))
        found = map_cells(self.model(image), grid, f"{self.model.name} map")
        self._write(path, key, {"means": found.means}, low=found.low, high=found.high)
        return found
