"""Resampling between pixels, network units and the readout grid: the linear operators of the package.

Everything here is a matrix acting along one axis (rows or columns) of an image-shaped array, so a
2-d operation is ``A @ X @ B.T``:

- :func:`resize_operator`: bilinear resize between two sample counts (pixel centres aligned);
- :func:`interpolation_matrix`: linear interpolation between arbitrary increasing positions;
- :func:`blur_operator`: the Gaussian blur of ``scipy.ndimage.gaussian_filter1d(mode="reflect")``.

**Geometry** has one meaning in this package: where the units of a network layer sit on the
image. Unit ``i`` of a layer (along rows, and likewise along columns) has its receptive field
centred at ``first + i * step`` pixels, in continuous image coordinates (pixel ``j`` spans
``[j, j + 1)``). :class:`Geometry` holds that pair for each layer a readout reads and for the
*grid* layer: the largest layer of the network (AlexNet: ``conv1``, a unit every 8 pixels), on
whose units the DeepGaze I readout is computed ("rescaled to the size of the largest layer").

**Cells.** Each grid unit owns the pixels nearer to its centre than to any other unit's (cell
borders halfway between unit centres); units whose cell holds no pixel of the image are not part
of that image's grid. :class:`ReadoutGrid` is that grid for one image size: the interpolation of
every layer to the cell centres, the cell of every pixel, and sums over cells.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["resize_operator", "interpolation_matrix", "blur_operator", "grid_axis", "Geometry", "ReadoutGrid",
           "cell_grid"]


def resize_operator(target, source):
    """Linear interpolation from ``source`` to ``target`` samples (pixel centres aligned, edges held).

    Returns
    -------
    ndarray, shape (target, source), float64
        ``R`` such that ``R @ v`` resamples a vector ``v`` of length ``source``; rows sum to one.
    """
    if target < 1 or source < 1:
        raise ValueError(f"cannot resize between {source} and {target} samples")
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    left = np.minimum(np.floor(position).astype(int), source - 2) if source > 1 else np.zeros(target, int)
    fraction = position - left
    operator = np.zeros((target, source))
    operator[np.arange(target), left] += 1 - fraction
    if source > 1:
        operator[np.arange(target), left + 1] += fraction
    return operator


def interpolation_matrix(target, source):
    """Linear interpolation from samples at positions ``source`` to positions ``target``.

    Held constant beyond the first and last source sample (as ``np.interp``).

    Parameters
    ----------
    target : array_like, shape (n_out,)
    source : array_like, shape (n_in,), increasing

    Returns
    -------
    ndarray, shape (n_out, n_in), float64
        Rows summing to one.
    """
    target, source = np.asarray(target, dtype=np.float64), np.asarray(source, dtype=np.float64)
    if source.size > 1 and not np.all(np.diff(source) > 0):
        raise ValueError("source positions must increase")
    if source.size == 1:
        return np.ones((target.size, 1))
    right = np.clip(np.searchsorted(source, target, side="right"), 1, source.size - 1)
    fraction = np.clip((target - source[right - 1]) / (source[right] - source[right - 1]), 0, 1)
    operator = np.zeros((target.size, source.size))
    operator[np.arange(target.size), right - 1] = 1 - fraction
    operator[np.arange(target.size), right] += fraction
    return operator


def blur_operator(length, sigma):
    """The 1-d Gaussian blur of ``gaussian_filter1d(..., mode="reflect")`` as a matrix.

    Returns
    -------
    ndarray, shape (length, length)
        ``M[p, q]``: response at ``p`` to a unit impulse at ``q``.
    """
    return gaussian_filter1d(np.eye(length), sigma, axis=0, mode="reflect")


def grid_axis(length, first, step):
    """The grid units whose cells cover pixels ``0 ... length - 1`` of one image axis.

    Grid unit ``i`` sits at ``first + i * step``; pixel ``j`` (centre ``j + 0.5``) belongs to the
    nearest unit (ties to the lower one).

    Returns
    -------
    centres : ndarray, shape (n_cells,)
        Positions (pixels) of the units that own at least one pixel, increasing.
    cell : ndarray of int, shape (length,)
        The cell (index into ``centres``) of every pixel.
    """
    if length < 1 or not step > 0:
        raise ValueError(f"grid axis needs length >= 1 and step > 0, got {length} and {step}")
    unit = np.ceil((np.arange(length) + 0.5 - first) / step - 0.5).astype(int)
    return first + step * np.arange(unit[0], unit[-1] + 1), unit - unit[0]


def _cell_sum_matrix(cell, n_cells):
    """``(n_cells, length)`` 0/1 matrix summing the pixels of each cell."""
    matrix = np.zeros((n_cells, cell.size))
    matrix[cell, np.arange(cell.size)] = 1
    return matrix


@dataclass(frozen=True)
class Geometry:
    """Where the units of the readout's layers, and of its grid, sit on the image.

    Parameters
    ----------
    units : tuple of (float, float)
        ``(first, step)`` of each layer the readout reads, in pixels (see the module docstring).
    grid : (float, float)
        ``(first, step)`` of the grid layer (the network's largest).
    """

    units: tuple
    grid: tuple

    def __post_init__(self):
        try:
            units = tuple((float(first), float(step)) for first, step in self.units)
            grid = tuple(float(v) for v in self.grid)
        except (TypeError, ValueError):
            units, grid = None, ()
        if units is None or len(grid) != 2 or not np.isfinite([*np.ravel(units), *grid]).all() or \
                any(not step > 0 for _, step in units + (grid,)):
            raise ValueError(f"geometry needs a pair (first, step) of finite numbers, step > 0, for each layer and for "
                             f"the grid; got units {self.units!r}, grid {self.grid!r}")
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "grid", grid)

    def to_json(self):
        """A JSON-able dict (see :meth:`from_json`)."""
        return {"units": [list(u) for u in self.units], "grid": list(self.grid)}

    @classmethod
    def from_json(cls, value):
        """The geometry of :meth:`to_json`'s dict; ValueError for anything else."""
        pairs = isinstance(value, dict) and set(value) == {"units", "grid"} and isinstance(value["units"], list) \
            and all(isinstance(v, list) for v in (value["grid"], *value["units"]))
        if not pairs:
            raise ValueError(f"expected a geometry {{'units': [[first, step], ...], 'grid': [first, step]}}, "
                             f"got {value!r}")
        return cls(tuple(map(tuple, value["units"])), tuple(value["grid"]))

    def readout_grid(self, image_hw, feature_hw):
        """The :class:`ReadoutGrid` of an image of ``(H, W)`` pixels with maps of ``feature_hw``
        (one ``(h_l, w_l)`` per layer); cached, as every image of a dataset shares a few."""
        return _readout_grid(self, tuple(int(n) for n in image_hw), tuple(tuple(map(int, hw)) for hw in feature_hw))


@lru_cache(maxsize=256)
def _readout_grid(geometry, image_hw, feature_hw):
    if len(feature_hw) != len(geometry.units):
        raise ValueError(f"{len(feature_hw)} feature maps for a geometry of {len(geometry.units)} layers")
    axes = [grid_axis(length, *geometry.grid) for length in image_hw]
    to_grid = [[interpolation_matrix(centres, first + step * np.arange(hw[axis]))
                for (first, step), hw in zip(geometry.units, feature_hw)]
               for axis, (centres, _) in enumerate(axes)]
    return ReadoutGrid(image_hw, axes[0][1], axes[1][1], to_grid[0], to_grid[1])


@lru_cache(maxsize=256)
def cell_grid(image_hw, first, step):
    """The cells of a grid with units at ``first + i * step`` (both axes) on an image of ``image_hw`` pixels, with no
    layers to interpolate: a :class:`ReadoutGrid` whose ``rows`` and ``cols`` are empty (what the postprocessing of
    saliency maps, :mod:`repro.postprocessing`, works on)."""
    axes = [grid_axis(int(length), first, step) for length in image_hw]
    return ReadoutGrid(tuple(int(n) for n in image_hw), axes[0][1], axes[1][1], [], [])


class ReadoutGrid:
    """The readout grid on one image: cells, and the maps of every layer interpolated to them.

    Attributes
    ----------
    image_shape : (H, W)
    shape : (h, w)
        Number of cells along rows and columns.
    row_cell, col_cell : ndarray of int, shapes (H,) and (W,)
        The cell row of every pixel row, the cell column of every pixel column.
    rows, cols : list of ndarray, shapes (h, h_l) and (w, w_l), float32
        Linear interpolation of layer ``l``'s unit centres to the cell centres (held constant
        beyond the outermost units).
    pixels : ndarray, shape (h, w)
        Number of pixels in each cell (fewer in the cells along the border).
    log_pixels : ndarray, shape (h, w)
        Its logarithm: the log cell masses of the uniform density (up to a constant).
    """

    def __init__(self, image_shape, row_cell, col_cell, rows, cols):
        self.image_shape = tuple(image_shape)
        self.row_cell, self.col_cell = row_cell, col_cell
        self.shape = (int(row_cell[-1]) + 1, int(col_cell[-1]) + 1)
        self.rows = [r.astype(np.float32) for r in rows]
        self.cols = [c.astype(np.float32) for c in cols]
        self.row_sum = _cell_sum_matrix(row_cell, self.shape[0])      # (h, H)
        self.col_sum = _cell_sum_matrix(col_cell, self.shape[1])      # (w, W)
        self.pixels = np.outer(self.row_sum.sum(axis=1), self.col_sum.sum(axis=1))
        self.log_pixels = np.log(self.pixels)

    def __repr__(self):
        return f"ReadoutGrid({self.shape[0]} x {self.shape[1]} cells on {self.image_shape[0]} x {self.image_shape[1]} px)"

    def cell_sums(self, pixel_values):
        """``(H, W)`` -> ``(h, w)``: the sum over the pixels of every cell."""
        return self.row_sum @ np.asarray(pixel_values, dtype=np.float64) @ self.col_sum.T

    def log_cell_sums(self, log_values):
        """``(H, W)`` log-values -> ``(h, w)``: log of the sum of ``exp`` over every cell (stable)."""
        log_values = np.asarray(log_values, dtype=np.float64)
        top = log_values.max()
        return np.log(self.cell_sums(np.exp(log_values - top))) + top

    def pixel_log_density(self, log_mass):
        """``(..., h, w)`` log cell masses -> the log-density at each cell's pixels, ``log P - log pixels``
        (each cell's mass spread evenly over its pixels)."""
        return log_mass - self.log_pixels

    def to_pixels(self, cell_values):
        """``(h, w)`` -> ``(H, W)``: every pixel takes the value of its cell."""
        return np.asarray(cell_values)[self.row_cell][:, self.col_cell]

    def cell_index(self, x, y):
        """Flat cell index ``row * w + column`` of positions ``(x, y)`` in pixels (scored at ``(int(y), int(x))``)."""
        return self.row_cell[np.asarray(y).astype(int)] * self.shape[1] + self.col_cell[np.asarray(x).astype(int)]

    def counts(self, x, y):
        """``(h, w)`` float32: how many of the positions ``(x, y)`` fall in each cell."""
        flat = np.bincount(self.cell_index(x, y), minlength=self.shape[0] * self.shape[1])
        return flat.reshape(self.shape).astype(np.float32)
