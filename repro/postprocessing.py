"""Saliency maps to fixation densities: the postprocessing the paper gives every earlier model.

The paper, Section 3: "All models except for Deep Gaze I have been postprocessed to account for a pointwise
nonlinearity, center bias and blurring (see Kümmerer et al. (2014) for details)." A saliency map only ranks
pixels; to be scored by log-likelihood, information gain and explained information it must become a
probability density, and the fair way is to give every model the monotone nonlinearity, centre bias and blur
that make its maps the best density they can be (Kümmerer, Wallis & Bethge 2015, "Information-theoretic model
comparison unifies saliency metrics", PNAS 112(52); arXiv 1409.7686). For a saliency map ``s`` ``(H, W)``:

1. **normalise**: ``u = clip((s - low) / (high - low), 0, 1)``; ``low`` and ``high`` are the minimum and
   maximum over *all* fitting maps, kept and used for new maps too;
2. **cells**: the mean of ``u`` over each cell of DeepGaze I's grid (:data:`GRID`: a cell every 8 pixels,
   :func:`repro.resampling.cell_grid`), so that converted maps and DeepGaze I are compared at one resolution;
3. **blur**: ``b = G u G^T`` with the readout's Gaussian (:func:`repro.model.gaussian_rows`: ``sigma`` in
   cells, renormalised at the border);
4. **nonlinearity**: ``f(b)``, piecewise linear through the points ``(k / (K - 1), exp(y_k))``, ``k = 0 ... K - 1``
   (``K`` = :data:`N_NONLINEARITY`), ``y`` non-decreasing: a monotone map, which changes the density but not
   the ranking of the pixels;
5. **centre bias**: ``g(d)``, piecewise linear through ``(j / (M - 1), exp(c_j))`` (``M`` = :data:`N_CENTERBIAS`)
   of the elliptic distance of the cell from the image centre, ``d = sqrt(x^2 / a^2 + y^2 / (1 - a^2)) /
   sqrt(1 / a^2 + 1 / (1 - a^2))`` (``x, y`` run over ``[-1, 1]`` across the image: the pixels' coordinates
   averaged over the cell; ``d`` in ``[0, 1]``), with the aspect ``a`` fitted;
6. **density**: every pixel of a cell has ``p = f g / Z``, ``Z`` the sum of ``f g`` over the image's pixels,
   the pixel-density convention of the readout (:mod:`repro.model`), so the metrics score exactly what is fitted.

``sigma``, ``y``, ``c`` and ``a`` are fitted by maximum likelihood: the mean log-likelihood per fixation of the
fitting fixations, with exact gradients from one Theano graph (:func:`fit_postprocessing`). The optimiser is
L-BFGS-B, full batch, not SFO: there are 32 parameters, one evaluation of all of OSIE's 350 training images on
their cells takes a fraction of a second, and the constraints are bounds once the parameters are written as
``y_k = -(d_k + ... + d_{K-2})`` with steps ``d >= 0`` (monotone, ``y_{K-1} = 0``) and ``c_0 = 0`` (``Z``
absorbs any scale of ``f`` and ``g``); SFO has no bounds and is built for sums of many costly subfunctions.

Where this differs from pysaliency 0.2.22's ``optimize_for_information_gain`` (the field's reference
implementation; ``tests/test_postprocessing.py`` compares the two on real OSIE maps):

- it works on cells of 8 x 8 pixels, not on pixels (the map's cell mean meets the nonlinearity; a cell is a
  box blur of 8 pixels' width, below the blurs models are fitted with);
- maps outside the fitting maps' range are clipped after the cell mean (no difference for fitting maps);
- the blur is renormalised at the border rather than padded by replicating the border;
- monotonicity and scale by reparametrisation and bounds (L-BFGS-B), not 19 inequality and two equality
  constraints (trust-constr); the initial blur is 2 cells, not 0, at which the blur's gradient vanishes;
- the objective averages over fixations (as this package's metrics and readout do), not over images.
"""
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from .backend import T, theano
from .datasets import check_points
from .density import DensityModel, as_density, image_size
from .model import gaussian_rows
from .resampling import cell_grid

__all__ = ["GRID", "N_NONLINEARITY", "N_CENTERBIAS", "BOUNDS", "MapCells", "map_cells", "Postprocessing",
           "MapDensity", "fit_postprocessing"]

#: DeepGaze I's grid on the image: AlexNet's conv1 units in ``full`` padding on the image downsampled by 2,
#: ``(first, step)`` in pixels (:meth:`repro.features.FeatureExtractor.unit_positions`; a test checks it).
GRID = (-9.0, 8.0)
#: Support points of the nonlinearity and of the centre bias (the reference implementation's defaults).
N_NONLINEARITY = 20
N_CENTERBIAS = 12
#: Bounds of the fitted quantities: blur ``sigma`` (cells), steps ``d`` of the log nonlinearity, log centre-bias
#: values ``c``, aspect ``a``. A step of 10 is a factor e^10 between neighbouring support points.
BOUNDS = {"sigma": (0.1, 100.0), "step": (0.0, 10.0), "centerbias": (-20.0, 20.0), "aspect": (0.01, 0.99)}
#: Starting point of a fit: blur in cells, the log nonlinearity (linear from -8 to 0, as the reference
#: implementation starts), a flat centre bias, a round one.
START = {"sigma": 2.0, "lowest": -8.0, "aspect": np.sqrt(0.5)}


# ------------------------------------------------------------------------------------------ maps on cells

@dataclass(frozen=True)
class MapCells:
    """A saliency map as the postprocessing reads it: its means over the cells of its grid, and its range.

    Attributes
    ----------
    grid : repro.resampling.ReadoutGrid
        The cells of the map's image (:func:`repro.resampling.cell_grid`).
    means : ndarray, shape grid.shape, float64
        The map's mean over the pixels of every cell.
    low, high : float
        The map's minimum and maximum over its pixels.
    """
    grid: object
    means: np.ndarray
    low: float
    high: float


def map_cells(saliency_map, grid=GRID, name="saliency map"):
    """A ``(H, W)`` saliency map on the cells of ``grid`` (``(first, step)`` in pixels).

    Raises ValueError, naming ``name``, for anything but a 2-d array of finite numbers.
    """
    values = np.asarray(saliency_map)
    if values.ndim != 2 or min(values.shape) < 1:
        raise ValueError(f"{name}: expected a 2-d map (height, width), got an array of shape {values.shape}")
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise ValueError(f"{name}: expected numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{name}: non-finite value {values[tuple(bad)]} at (row, column) {tuple(int(i) for i in bad)}")
    cells = cell_grid(values.shape, *grid)
    return MapCells(cells, cells.cell_sums(values) / cells.pixels, float(values.min()), float(values.max()))


def _cell_coordinates(cell):
    """The mean of ``linspace(-1, 1, L)`` over the pixels of every cell of one axis (``cell``: the cell of
    every pixel), the centre bias's coordinate of each cell."""
    position = np.linspace(-1, 1, cell.size) if cell.size > 1 else np.zeros(1)
    return np.bincount(cell, position) / np.bincount(cell)


@lru_cache(maxsize=256)
def _squared_coordinates(grid):
    """``(x^2, y^2)`` of every cell of ``grid``, each ``(h, w)``."""
    x, y = _cell_coordinates(grid.col_cell), _cell_coordinates(grid.row_cell)
    return np.broadcast_to(x[None] ** 2, grid.shape).copy(), np.broadcast_to(y[:, None] ** 2, grid.shape).copy()


# ------------------------------------------------------------------------------------------ the graph

def _piecewise_linear(log_values, position):
    """Symbolic piecewise-linear function through ``(k / (K - 1), exp(log_values[k]))``, ``k = 0 ... K - 1``, at
    ``position`` (any shape) in [0, 1] (clipped): on segment ``k`` it is ``v_k + (v_{k+1} - v_k) (s - k)`` with
    ``s = position (K - 1)``."""
    n = log_values.shape[0]
    values = T.exp(log_values)
    slopes = values[1:] - values[:-1]
    scaled = (T.clip(position, 0, 1) * (n - 1)).flatten()
    segment = T.clip(T.floor(scaled), 0, n - 2).astype("int64")
    return (values[segment] + slopes[segment] * (scaled - segment)).reshape(position.shape)


def _unpack(theta, n_nonlinearity, n_centerbias):
    """Symbolic ``(sigma, y, c, a)`` from the vector of free parameters (see :meth:`Postprocessing.theta`)."""
    steps = theta[1:n_nonlinearity]
    y = -T.concatenate([T.cumsum(steps[::-1])[::-1], T.zeros(1, dtype="float64")])
    c = T.concatenate([T.zeros(1, dtype="float64"), theta[n_nonlinearity:n_nonlinearity + n_centerbias - 1]])
    return T.exp(theta[0]), y, c, theta[-1]


def _density_graph(theta, cells, xx, yy, pixels, n_nonlinearity, n_centerbias):
    """Symbolic ``(f g, Z)``: the unnormalised density ``(h, B, w)`` at the pixels of every cell (laid out as the
    readout's graphs lay out cells: every product then runs over contiguous memory) and its sum over each image's
    pixels ``(B,)``."""
    sigma, y, c, aspect = _unpack(theta, n_nonlinearity, n_centerbias)
    along_cols = T.tensordot(cells, gaussian_rows(sigma, cells.shape[2], "float64"), axes=[[2], [1]])
    blurred = T.tensordot(gaussian_rows(sigma, cells.shape[1], "float64"), along_cols, axes=[[1], [1]])
    a2 = aspect ** 2
    distance = T.sqrt((xx / a2 + yy / (1 - a2)) / (1 / a2 + 1 / (1 - a2)) + 1e-12)
    unnormalised = _piecewise_linear(y, blurred) * _piecewise_linear(c, distance).dimshuffle(0, "x", 1)
    return unnormalised, (unnormalised * pixels.dimshuffle(0, "x", 1)).sum(axis=[0, 2])


@lru_cache(maxsize=None)
def _compiled(n_nonlinearity, n_centerbias):
    """Compiled ``log_density(theta, cells, xx, yy, pixels)`` ``(h, B, w)``, and ``loglik_and_grad(theta, cells, xx,
    yy, pixels, fixated, per_image)``: the summed log-likelihood of the fixations in the cells ``fixated`` (flat
    indices into ``(h, B, w)``), ``per_image`` ``(B,)`` of them on each image, and its gradient.

    The values stay in linear space (``f`` and ``g`` are positive and bounded, :data:`BOUNDS`), and logarithms are
    taken only at the fixated cells: cheaper than a softmax over every cell.
    """
    theta = T.dvector("theta")
    cells = T.dtensor3("cells")                  # (B, h, w) normalised cell means, in [0, 1]
    xx, yy = T.dmatrix("xx"), T.dmatrix("yy")    # (h, w) squared centre-bias coordinates
    pixels = T.dmatrix("pixels")                 # (h, w) pixels per cell
    fixated = T.lvector("fixated")               # (N,) flat cell index of every fixation
    per_image = T.dvector("per_image")           # (B,) fixations per image
    unnormalised, total = _density_graph(theta, cells, xx, yy, pixels, n_nonlinearity, n_centerbias)
    loglik = T.log(unnormalised.flatten()[fixated]).sum() - (per_image * T.log(total)).sum()
    inputs = [theta, cells, xx, yy, pixels]
    return (theano.function(inputs, T.log(unnormalised) - T.log(total).dimshuffle("x", 0, "x")),
            theano.function(inputs + [fixated, per_image], [loglik, T.grad(loglik, theta)]))


# ------------------------------------------------------------------------------------------ the model

@dataclass
class Postprocessing:
    """The fitted postprocessing of one saliency model (see the module docstring).

    Attributes
    ----------
    low, high : float
        Normalisation: the minimum and maximum over the fitting maps.
    sigma : float
        Blur in grid cells (``sigma * grid[1]`` pixels).
    nonlinearity : ndarray, shape (K,)
        Log values ``y`` of the nonlinearity at ``linspace(0, 1, K)``; non-decreasing, the last 0.
    centerbias : ndarray, shape (M,)
        Log values ``c`` of the centre bias at the distances ``linspace(0, 1, M)``; the first 0.
    aspect : float
        ``a`` of the elliptic distance (``sqrt(0.5)``: round in the image's normalised coordinates).
    grid : (float, float)
        ``(first, step)`` of the cells, pixels.
    info : dict
        How it was fitted (images, fixations, iterations, seconds, log-likelihood, optimiser's message).
    """
    low: float
    high: float
    sigma: float = START["sigma"]
    nonlinearity: np.ndarray = None
    centerbias: np.ndarray = None
    aspect: float = START["aspect"]
    grid: tuple = GRID
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            raise ValueError(f"the normalisation range must be finite, got low {self.low}, high {self.high}")
        if self.nonlinearity is None:
            self.nonlinearity = np.linspace(START["lowest"], 0, N_NONLINEARITY)
        if self.centerbias is None:
            self.centerbias = np.zeros(N_CENTERBIAS)
        y, c = np.asarray(self.nonlinearity, float), np.asarray(self.centerbias, float)
        if y.ndim != 1 or y.size < 2 or c.ndim != 1 or c.size < 2:
            raise ValueError(f"the nonlinearity and the centre bias need at least 2 support points each, got "
                             f"{y.shape} and {c.shape}")
        if np.any(np.diff(y) < 0):
            raise ValueError(f"the nonlinearity's log values must not decrease, got {y.round(3).tolist()}")
        self.nonlinearity, self.centerbias = y - y[-1], c - c[0]
        if not 0 < self.aspect < 1 or not self.sigma > 0:
            raise ValueError(f"need 0 < aspect < 1 and sigma > 0, got aspect {self.aspect}, sigma {self.sigma}")
        self.grid = tuple(float(v) for v in self.grid)

    # -- the free parameters, as the graph and the optimiser see them --------------------------------------
    @property
    def theta(self):
        """``[log sigma, steps d (K - 1), c_1 ... c_{M-1}, a]``, float64."""
        return np.concatenate([[np.log(self.sigma)], np.diff(self.nonlinearity), self.centerbias[1:], [self.aspect]])

    def with_theta(self, theta):
        """A copy with the free parameters ``theta`` (see :attr:`theta`)."""
        k = self.nonlinearity.size
        theta = np.asarray(theta, float)
        y = np.concatenate([[0.0], np.cumsum(theta[1:k])])
        return replace(self, sigma=float(np.exp(theta[0])), nonlinearity=y - y[-1],
                       centerbias=np.concatenate([[0.0], theta[k:-1]]), aspect=float(theta[-1]), info={})

    def bounds(self):
        """L-BFGS-B bounds of :attr:`theta`."""
        return ([tuple(np.log(BOUNDS["sigma"]))] + [BOUNDS["step"]] * (self.nonlinearity.size - 1)
                + [BOUNDS["centerbias"]] * (self.centerbias.size - 1) + [BOUNDS["aspect"]])

    def without_centerbias(self):
        """The same nonlinearity and blur with a flat centre bias: what shuffled AUC scores (it discounts the
        centre bias itself)."""
        return replace(self, centerbias=np.zeros_like(self.centerbias), info=dict(self.info))

    # -- what it does to maps -------------------------------------------------------------------------------
    def normalised(self, cells):
        """``(h, w)`` cell means of a :class:`MapCells` normalised by :attr:`low`, :attr:`high` and clipped to
        [0, 1] (all 0 for fitting maps that are all equal)."""
        span = self.high - self.low
        return np.clip((cells.means - self.low) / span, 0, 1) if span > 0 else np.zeros_like(cells.means)

    def log_cell_density(self, cells):
        """Log-density ``(h, w)`` at the pixels of each cell of a :class:`MapCells` (``exp`` times the cells' pixel
        counts sums to one)."""
        _check_grid(cells, self.grid, "saliency map")
        xx, yy = _squared_coordinates(cells.grid)
        log_density, _ = _compiled(self.nonlinearity.size, self.centerbias.size)
        return log_density(self.theta, self.normalised(cells)[None], xx, yy, cells.grid.pixels)[:, 0]

    def log_density_of_map(self, saliency_map, name="saliency map"):
        """Log-density ``(H, W)`` of fixations on an image whose saliency map is ``saliency_map`` ``(H, W)``."""
        cells = map_cells(saliency_map, self.grid, name)
        return cells.grid.to_pixels(self.log_cell_density(cells))

    def nonlinearity_at(self, values):
        """The nonlinearity ``f`` (not its log) at normalised values in [0, 1] (for plots)."""
        return np.interp(values, np.linspace(0, 1, self.nonlinearity.size), np.exp(self.nonlinearity))

    def centerbias_at(self, distance):
        """The centre bias ``g`` (not its log) at elliptic distances in [0, 1] (for plots)."""
        return np.interp(distance, np.linspace(0, 1, self.centerbias.size), np.exp(self.centerbias))

    def density(self, maps=None, saliency_model=None, name="maps"):
        """These maps converted, as a density model (:class:`MapDensity`)."""
        return MapDensity(self, maps, saliency_model, name)

    # -- records --------------------------------------------------------------------------------------------
    def to_json(self):
        """A JSON-able dict (see :meth:`from_json`); ``sigma_pixels`` is given for the reader."""
        return {"low": self.low, "high": self.high, "sigma": self.sigma, "sigma_pixels": self.sigma * self.grid[1],
                "nonlinearity": self.nonlinearity.tolist(), "centerbias": self.centerbias.tolist(),
                "aspect": self.aspect, "grid": list(self.grid), "info": self.info}

    @classmethod
    def from_json(cls, value):
        return cls(value["low"], value["high"], value["sigma"], np.asarray(value["nonlinearity"]),
                   np.asarray(value["centerbias"]), value["aspect"], tuple(value["grid"]), dict(value.get("info", {})))


class MapDensity(DensityModel):
    """A saliency model's maps, postprocessed: a density model like every other (:mod:`repro.density`).

    Parameters
    ----------
    postprocessing : Postprocessing
    maps : callable, sequence or mapping, optional
        The maps of the dataset's images: ``n -> (H, W)`` saliency map or :class:`MapCells` (read as
        :func:`repro.density.as_density` reads per-image maps); for :meth:`log_density`.
    saliency_model : callable, optional
        ``image (H, W, 3) -> (H, W)`` saliency map, for :meth:`log_density_of`.
    name : str
    """

    def __init__(self, postprocessing, maps=None, saliency_model=None, name="maps"):
        self.postprocessing, self.saliency_model, self.name = postprocessing, saliency_model, name
        self.maps = None if maps is None else as_density(maps)

    def cells(self, n):
        """:class:`MapCells` of dataset image ``n``."""
        if self.maps is None:
            raise TypeError(f"{self!r} was made without the dataset's maps: use log_density_of(image)")
        found = self.maps.log_density(int(n))
        return found if isinstance(found, MapCells) else map_cells(found, self.postprocessing.grid, f"map of image {n}")

    def log_cells(self, n):
        """``(cells, log_density)``: :meth:`cells` of image ``n`` and the log-density ``(h, w)`` at their pixels."""
        cells = self.cells(n)
        return cells, self.postprocessing.log_cell_density(cells)

    def log_density(self, n):
        cells, log_density = self.log_cells(n)
        return cells.grid.to_pixels(log_density)

    def log_density_of(self, image):
        if self.saliency_model is None:
            raise TypeError(f"{self!r} was made without a saliency model: use log_density(n) for dataset images")
        saliency_map = self.saliency_model(image)
        if np.shape(saliency_map) != image_size(image):
            raise ValueError(f"{self.name}: the saliency model gave a map of shape {np.shape(saliency_map)} for an "
                             f"image of {image_size(image)}")
        return self.postprocessing.log_density_of_map(saliency_map, f"{self.name} map")

    def __repr__(self):
        return f"MapDensity({self.name}, sigma {self.postprocessing.sigma:.2f} cells)"


# ------------------------------------------------------------------------------------------ fitting

def _stacks(cells, points, postprocessing):
    """Per grid, the graph's inputs: ``[(normalised (B, h, w), xx, yy, pixels, fixated (N,), per_image (B,)), ...]``
    (``fixated``: the flat index of every fixation's cell in the graph's ``(h, B, w)`` layout)."""
    groups = {}
    for map_, (x, y) in zip(cells, points):
        groups.setdefault(id(map_.grid), []).append((map_, x, y))
    stacks = []
    for members in groups.values():
        grid = members[0][0].grid
        normalised = np.stack([postprocessing.normalised(m) for m, _, _ in members])
        width = grid.shape[1]
        fixated = np.concatenate([(grid.row_cell[y.astype(int)] * len(members) + b) * width + grid.col_cell[x.astype(int)]
                                  for b, (_, x, y) in enumerate(members)])     # flat indices into (h, B, w)
        per_image = np.array([len(x) for _, x, _ in members], dtype=np.float64)
        stacks.append((normalised, *_squared_coordinates(grid), grid.pixels, fixated.astype(np.int64), per_image))
    return stacks


def fit_postprocessing(maps, fixations, images, grid=GRID, maxiter=1000, tol=1e-7, progress=False, start=None):
    """Fit the postprocessing of a saliency model's maps to the fixations on ``images`` (maximum likelihood).

    Parameters
    ----------
    maps : callable, sequence or mapping
        Saliency map ``(H, W)`` (or its :class:`MapCells`) of image ``n`` (see :class:`MapDensity`).
    fixations : repro.datasets.Fixations
        Fixations in pixels; those on ``images`` are fitted (each weighs the same).
    images : sequence of int
        The fitting images; their maps' minimum and maximum set the normalisation.
    grid : (float, float)
        ``(first, step)`` of the cells (default: DeepGaze I's, :data:`GRID`).
    maxiter : int
        L-BFGS-B iterations at most.
    tol : float
        Stop when the mean log-likelihood changes by less than ``tol`` times its size (L-BFGS-B's ``ftol``). The
        default stops OSIE's fits within 2e-4 nats per fixation of the optimum (a contrast map: 1e-9 takes 1.7 times
        as many evaluations for 1.3e-4 nats more on the fitting fixations, 0.0002 bit/fix on the test images).
    progress : bool
        A progress bar of the iterations, with the mean log-likelihood (nats per fixation).
    start : Postprocessing, optional
        Starting point (its normalisation is replaced by the fitting maps'); default: :data:`START`.

    Returns
    -------
    Postprocessing
        ``info`` records the fit: ``images``, ``fixations``, ``iterations``, ``evaluations``, ``seconds``,
        ``log_likelihood`` (mean, nats per fixation, on the fitting fixations), ``converged``, ``message``.
    """
    began = time.perf_counter()
    images = np.asarray(images, dtype=int)
    source = as_density(maps)
    cells = [_as_cells(source.log_density(int(n)), grid, n) for n in images]
    points = [(fixations.x[fixations.n == n], fixations.y[fixations.n == n]) for n in images]
    for n, map_, (x, y) in zip(images, cells, points):
        check_points(x, y, map_.grid.image_shape, f"fixations on image {n} (its map)")
    n_fixations = sum(len(x) for x, _ in points)
    if not n_fixations:
        raise ValueError(f"no fixations on the {len(images)} fitting images: nothing to fit the postprocessing to")
    low, high = min(c.low for c in cells), max(c.high for c in cells)
    initial = replace(start or Postprocessing(low, high, grid=grid), low=low, high=high, grid=tuple(grid), info={})
    stacks = _stacks(cells, points, initial)
    _, loglik_and_grad = _compiled(initial.nonlinearity.size, initial.centerbias.size)

    last = {}

    def cost(theta):
        total, gradient = 0.0, np.zeros_like(theta)
        for stack in stacks:
            value, grad = loglik_and_grad(theta, *stack)
            total, gradient = total + value, gradient + grad
        last["log_likelihood"] = total / n_fixations
        return -total / n_fixations, -gradient / n_fixations

    bar = tqdm(desc="postprocessing (L-BFGS-B)", unit="it", disable=not progress)

    def step(theta):
        bar.update(1)
        bar.set_postfix(nats_per_fixation=f"{last['log_likelihood']:.5f}", refresh=False)

    result = minimize(cost, initial.theta, jac=True, method="L-BFGS-B", bounds=initial.bounds(), callback=step,
                      options={"maxiter": maxiter, "ftol": tol, "gtol": 1e-7})
    bar.close()
    fitted = initial.with_theta(result.x)
    fitted.info = {"images": int(len(images)), "fixations": int(n_fixations), "iterations": int(result.nit),
                   "evaluations": int(result.nfev), "seconds": time.perf_counter() - began,
                   "log_likelihood": float(-result.fun), "converged": bool(result.success),
                   "message": str(result.message)}
    return fitted


def _as_cells(found, grid, n):
    """A map of image ``n`` as :class:`MapCells` on ``grid`` (as given, if it already is; it must be on ``grid``)."""
    if not isinstance(found, MapCells):
        return map_cells(found, grid, f"map of image {n}")
    _check_grid(found, grid, f"map of image {n}")
    return found


def _check_grid(cells, grid, name):
    """ValueError unless the :class:`MapCells` ``cells`` lie on the cells of ``grid`` (``(first, step)``)."""
    expected = cell_grid(cells.grid.image_shape, *grid)
    if cells.means.shape != expected.shape or not np.array_equal(cells.grid.row_cell, expected.row_cell) \
            or not np.array_equal(cells.grid.col_cell, expected.col_cell):
        raise ValueError(f"{name}: its cells {cells.means.shape} are not those of the grid {grid} on an image of "
                         f"{cells.grid.image_shape}, {expected.shape}; read the map with that grid")
