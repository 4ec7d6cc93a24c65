"""The image-independent prior of fixations ("centre bias"), nonparametric and leave-one-image-out.

For an image ``n`` of size ``(H, W)`` (Kümmerer et al. 2014; DeepGaze I, section 1.1):

1. the fixations of all *other* images, in coordinates relative to their image's width and
   height, are binned into an ``H x W`` histogram (pixel ``(int(y / H_i * H), int(x / W_i * W))``),
2. blurred with a Gaussian of ``sigma = bandwidth * H`` along rows and ``bandwidth * W`` along
   columns (``scipy.ndimage.gaussian_filter``, mode ``reflect``) and normalised to sum to 1,
3. mixed with the uniform density: ``(1 - eps) * kde + eps / (H * W)``.

``bandwidth`` and ``eps`` maximise the leave-one-image-out log-likelihood of all fixations
(:func:`fit_center_bias`). For new images (or new sizes) all fixations are used.

The paper's variant for images of mixed sizes (``frame=(100, 100)``) fits the same estimate in a
100 x 100 frame and rescales (bilinearly) and renormalises it to each image.

Fitting is fast because the blur is linear and separable: with the 1-d blur operators ``A``
(rows) and ``B`` (columns), the blurred histogram of image ``i``'s own fixations at its own
fixation ``f`` is ``sum_g A[y_f, y_g] * B[x_f, x_g]``, so leaving an image out costs only the
pairs of fixations within it.
"""
import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.optimize import minimize_scalar
from tqdm import tqdm

from .datasets import check_fixations, group_by_image
from .density import DensityModel, image_size
from .paths import atomic_path
from .resampling import blur_operator, resize_operator

__all__ = ["CenterBias", "CenterBiasTemplate", "fit_center_bias", "relative_coordinates", "fit_uniform_weight",
           "loo_kde_values", "KEPT_SHAPES", "blur_operators", "kept"]


def relative_coordinates(fixations, sizes):
    """Fixation coordinates divided by their image's width and height.

    Returns
    -------
    x, y : ndarray, shape (n_fixations,)
    """
    sizes = np.asarray(sizes, dtype=float)
    return fixations.x / sizes[fixations.n, 1], fixations.y / sizes[fixations.n, 0]


def _pixels_at(fixations, sizes, shape):
    """Pixel ``(row, column)`` of every fixation in an image of ``shape``; exactly ``int(y), int(x)``
    for fixations on images of that shape."""
    sizes = np.asarray(sizes)
    height, width = shape
    same = (sizes[fixations.n, 0] == height) & (sizes[fixations.n, 1] == width)
    rel_x, rel_y = relative_coordinates(fixations, sizes)
    rows = np.where(same, fixations.y, rel_y * height).astype(int)
    cols = np.where(same, fixations.x, rel_x * width).astype(int)
    # x / W_i * W < W holds exactly; the minimum only guards against rounding up to W
    return np.minimum(rows, height - 1), np.minimum(cols, width - 1)


def _histogram(rows, cols, shape):
    return np.bincount(rows * shape[1] + cols, minlength=shape[0] * shape[1]).reshape(shape).astype(float)


def _blur(histogram, bandwidth):
    height, width = histogram.shape
    return gaussian_filter(histogram, (bandwidth * height, bandwidth * width), mode="reflect")


#: How many image shapes the centre bias and the gold standard keep their pixel-level blur operators for (some 12 MB
#: each at 800 x 600; see :func:`kept`).
KEPT_SHAPES = 4


def blur_operators(shape, bandwidth):
    """The 1-d blur operators ``(along_y, along_x)`` of :func:`_blur` for a ``shape`` histogram
    (:func:`repro.resampling.blur_operator`): ``_blur(h, bandwidth) == along_y @ h @ along_x.T`` to rounding."""
    return blur_operator(shape[0], bandwidth * shape[0]), blur_operator(shape[1], bandwidth * shape[1])


def kept(cache, key, make):
    """``cache[key]``, made by ``make()`` the first time; the cache (a dict of per-shape arrays, some MB each) keeps
    the :data:`KEPT_SHAPES` most recently made, dropping the oldest."""
    if key not in cache:
        if len(cache) >= KEPT_SHAPES:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


def loo_kde_values(fixations, sizes, bandwidth, frame=None):
    """Leave-one-image-out blurred-histogram density at every fixation's pixel.

    Parameters
    ----------
    fixations : Fixations
    sizes : array_like, shape (n_images, 2)
    bandwidth : float
        Relative to the image size.
    frame : tuple, optional
        Evaluate in this common ``(height, width)`` frame instead of each image's own size.

    Returns
    -------
    ndarray, shape (n_fixations,)
        Density per pixel (of the image, or of the frame), the KDE normalised over that grid.
    """
    sizes = np.asarray(sizes)
    values = np.empty(len(fixations))
    images, groups = group_by_image(fixations.n)
    shapes = [tuple(frame)] * len(images) if frame is not None else [tuple(sizes[i]) for i in images]
    for shape in sorted(set(shapes)):
        rows_y, cols_x = blur_operators(shape, bandwidth)
        mass_y, mass_x = rows_y.sum(axis=0), cols_x.sum(axis=0)
        rows, cols = _pixels_at(fixations, sizes, shape)
        blurred = _blur(_histogram(rows, cols, shape), bandwidth)
        total = np.sum(mass_y[rows] * mass_x[cols])
        for image_shape, group in zip(shapes, groups):
            if image_shape != shape:
                continue
            r, c = rows[group], cols[group]
            own = np.sum(rows_y[r][:, r] * cols_x[c][:, c], axis=1)
            own_mass = np.sum(mass_y[r] * mass_x[c])
            values[group] = np.maximum(blurred[r, c] - own, 0) / (total - own_mass)
    return values


def _mixture_ll(values, eps, area):
    return np.log((1 - eps) * values + eps / area)


def fit_uniform_weight(values, area):
    """The ``eps`` in ``[1e-20, 1]`` maximising ``sum log((1 - eps) * values + eps / area)``.

    Returns
    -------
    eps : float
    total_ll : float
    """
    result = minimize_scalar(lambda log_eps: -_mixture_ll(values, 10.0 ** log_eps, area).sum(),
                             bounds=(-20, 0), method="bounded", options={"xatol": 1e-3})
    return 10.0 ** result.x, -result.fun


class CenterBias(DensityModel):
    """Nonparametric centre bias with given ``bandwidth`` and uniform weight ``eps``: a density model
    (:class:`repro.density.DensityModel`) of its dataset's images, leaving each image's fixations out, and of
    new images, from all fixations.

    Parameters
    ----------
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index (e.g. ``stimuli.sizes``).
    fixations : Fixations
        The fixations it is estimated from.
    bandwidth : float
        Gaussian standard deviation relative to the image (or frame) height and width.
    eps : float
        Weight of the uniform component, relative to the normalised KDE. (pysaliency's
        ``CrossvalidatedBaselineModel`` adds ``eps / (H * W)`` to the unnormalised blurred counts
        instead; for the tiny fitted values, below 1e-10, the two agree.)
    frame : tuple, optional
        ``(height, width)`` of a common frame, e.g. ``(100, 100)`` (the paper's variant for
        mixed sizes): the estimate is made there and rescaled to each image.
    """

    def __init__(self, sizes, fixations, bandwidth, eps, frame=None):
        check_fixations(fixations, sizes, "CenterBias", empty_ok=False)
        self.sizes = np.asarray(sizes)
        self.fixations = fixations
        self.bandwidth = float(bandwidth)
        self.eps = float(eps)
        self.frame = tuple(frame) if frame is not None else None
        self._cells = {}      # per grid: the blur operators summed over its cells (see log_cell_mass)
        self._pixels = {}     # per shape: the blur operators and all fixations blurred (see _density)

    def __getstate__(self):
        return {**self.__dict__, "_cells": {}, "_pixels": {}}  # pickles (and their digests) without what is recomputed

    def _density(self, shape, exclude=None):
        """The normalised blurred histogram ``shape`` of all fixations but image ``exclude``'s: all fixations blurred
        once per shape (kept for the last :data:`KEPT_SHAPES` shapes), minus the blur of the image's own, which the
        blur operators give as a product of their columns at its fixations (a few milliseconds where blurring the
        histogram took some 70 at 800 x 600)."""
        def blurred_all():
            along_y, along_x = blur_operators(shape, self.bandwidth)
            rows, cols = _pixels_at(self.fixations, self.sizes, shape)
            return rows, cols, along_y, along_x, along_y @ _histogram(rows, cols, shape) @ along_x.T

        rows, cols, along_y, along_x, blurred = kept(self._pixels, shape, blurred_all)
        if exclude is not None:
            own = self.fixations.n == exclude
            blurred = np.maximum(blurred - along_y[:, rows[own]] @ along_x[:, cols[own]].T, 0)
        return blurred / blurred.sum()

    def _log_density(self, target, exclude=None):
        """Log-density ``target = (height, width)`` from all fixations but those of image ``exclude``."""
        kde = self._density(self.frame or target, exclude=exclude)
        if self.frame is not None:
            kde = resize_operator(target[0], self.frame[0]) @ kde @ resize_operator(target[1], self.frame[1]).T
            kde = kde / kde.sum()
        return np.log((1 - self.eps) * kde + self.eps / (target[0] * target[1]))

    def log_density(self, n, shape=None):
        """Log-density of dataset image ``n`` from the fixations on all *other* images.

        Parameters
        ----------
        n : int
            Index of a dataset image: its fixations are left out.
        shape : tuple, optional
            ``(height, width)`` of the result (default: the image's size), e.g. of the image downsampled.

        Returns
        -------
        ndarray, shape (height, width)
            Sums to one in probability over the pixels.
        """
        return self._log_density(tuple(shape) if shape is not None else tuple(self.sizes[n]), exclude=n)

    def log_density_of(self, image):
        """Log-density ``(H, W)`` of a new image ``(H, W, ...)`` (only its size is used), from all fixations."""
        return self._log_density(image_size(image))

    def log_cell_mass(self, n, grid):
        """Log of the leave-one-image-out density's probability mass in every cell of a readout grid.

        Equals ``grid.log_cell_sums(self.log_density(n))``, the interface's default (the tests check it), but sums the blur
        operators over the cells first instead of blurring at pixel resolution: per image it costs
        only the pairs of cells and the image's own fixations.

        Parameters
        ----------
        n : int
            A dataset image (its fixations are left out); ``grid.image_shape`` must be its size.
        grid : repro.resampling.ReadoutGrid

        Returns
        -------
        ndarray, shape grid.shape
        """
        height, width = grid.image_shape
        if tuple(self.sizes[n]) != (height, width):
            raise ValueError(f"the grid is for a {width} x {height} image, image {n} is {self.sizes[n][1]} x "
                             f"{self.sizes[n][0]}")
        if self.frame is None:
            kde = self._loo_cell_sums(n, grid)
        else:
            along_y = resize_operator(height, self.frame[0])
            along_x = resize_operator(width, self.frame[1])
            framed = self._density(self.frame, exclude=n)
            kde = (grid.row_sum @ along_y) @ framed @ (grid.col_sum @ along_x).T
            kde = kde / (along_y.sum(axis=0) @ framed @ along_x.sum(axis=0))
        return np.log((1 - self.eps) * kde + self.eps * grid.pixels / (height * width))

    def _loo_cell_sums(self, n, grid):
        """Cell sums of the normalised blurred histogram of all fixations but image ``n``'s."""
        shape = grid.image_shape
        key = (shape, grid.row_cell.tobytes(), grid.col_cell.tobytes())
        if key not in self._cells:
            along_y, along_x = blur_operators(shape, self.bandwidth)
            rows, cols = _pixels_at(self.fixations, self.sizes, shape)
            on_y, on_x = grid.row_sum @ along_y, grid.col_sum @ along_x             # (h, H), (w, W)
            total = on_y @ _histogram(rows, cols, shape) @ on_x.T
            self._cells[key] = (rows, cols, on_y, on_x, total, along_y.sum(axis=0), along_x.sum(axis=0))
        rows, cols, on_y, on_x, total, mass_y, mass_x = self._cells[key]
        own = self.fixations.n == n
        blurred = total - on_y[:, rows[own]] @ on_x[:, cols[own]].T
        return np.maximum(blurred, 0) / (mass_y[rows[~own]] @ mass_x[cols[~own]])

    def _framed_log_likelihoods(self):
        """Leave-one-image-out log-likelihoods of the frame variant, resampling only at the fixations."""
        fixations, frame = self.fixations, self.frame
        rows, cols = _pixels_at(fixations, self.sizes, frame)
        blurred_all = _blur(_histogram(rows, cols, frame), self.bandwidth)
        values = np.empty(len(fixations))
        images, groups = group_by_image(fixations.n)
        for n, group in zip(images, tqdm(groups, desc="centre bias", disable=len(groups) < 50)):
            height, width = self.sizes[n]
            kde = blurred_all - _blur(_histogram(rows[group], cols[group], frame), self.bandwidth)
            along_y, along_x = resize_operator(height, frame[0]), resize_operator(width, frame[1])
            total = along_y.sum(axis=0) @ kde @ along_x.sum(axis=0)
            at_fixations = np.sum((along_y[fixations.y_int[group]] @ kde) * along_x[fixations.x_int[group]], axis=1)
            values[group] = np.maximum(at_fixations, 0) / total
        return _mixture_ll(values, self.eps, self.sizes[fixations.n].prod(axis=1).astype(float))

    def log_likelihoods(self):
        """Leave-one-image-out log-likelihood (nats) of every fixation it was estimated from.

        Returns
        -------
        ndarray, shape (n_fixations,)
        """
        if self.frame is not None:
            return self._framed_log_likelihoods()
        area = self.sizes[self.fixations.n].prod(axis=1).astype(float)
        return _mixture_ll(loo_kde_values(self.fixations, self.sizes, self.bandwidth), self.eps, area)

    def __repr__(self):
        frame = f", frame={self.frame}" if self.frame else ""
        return f"CenterBias(bandwidth={self.bandwidth:.5g}, eps={self.eps:.3g}{frame})"


class CenterBiasTemplate(DensityModel):
    """A centre bias for new images of any size: a density on a common frame (the paper's 100 x 100 KDE for
    mixed sizes), rescaled to each image and mixed with a uniform density of weight ``eps``.

    ``CenterBiasTemplate.from_center_bias(cb).log_density_of(image)`` equals ``cb.log_density_of(image)``
    for a centre bias ``cb`` fitted in a frame; the template keeps only the frame's density, so it is a small
    file (:meth:`save`) that needs no fixations to use. Having no dataset, it answers only
    :meth:`log_density_of` (:class:`repro.density.DensityModel`).

    Parameters
    ----------
    frame_density : ndarray, shape (fh, fw)
        Sums to one.
    eps : float
    bandwidth : float, optional
        What it was fitted with (relative to the frame), for the record.
    source : str
        What it was fitted on.
    """

    def __init__(self, frame_density, eps, bandwidth=None, source=""):
        self.frame_density = np.asarray(frame_density, dtype=np.float64)
        if self.frame_density.ndim != 2 or not np.isfinite(self.frame_density).all() or \
                abs(self.frame_density.sum() - 1) > 1e-6 or self.frame_density.min() < 0:
            raise ValueError("frame_density must be a 2-D array of non-negative values summing to one")
        self.eps = float(eps)
        if not 0 <= self.eps <= 1:
            raise ValueError(f"eps (the uniform density's weight) must be in [0, 1], got {self.eps}")
        self.bandwidth = None if bandwidth is None else float(bandwidth)
        if self.bandwidth is not None and not (np.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise ValueError(f"bandwidth must be a finite number > 0 (or None), got {self.bandwidth}")
        self.source = str(source)

    @classmethod
    def from_center_bias(cls, center_bias, source=""):
        """The template of a centre bias fitted in a frame (all its fixations)."""
        if center_bias.frame is None:
            raise ValueError("only a centre bias fitted in a frame (frame=(100, 100)) makes a template")
        return cls(center_bias._density(center_bias.frame), center_bias.eps, center_bias.bandwidth, source)

    def log_density_of(self, image):
        """Log-density ``(H, W)`` of a new image ``(H, W, ...)`` (only its size is used), summing to one over its
        pixels."""
        height, width = image_size(image)
        frame = self.frame_density.shape
        kde = resize_operator(height, frame[0]) @ self.frame_density @ resize_operator(width, frame[1]).T
        return np.log((1 - self.eps) * kde / kde.sum() + self.eps / (height * width))

    def save(self, path):
        """Write the template to ``path`` (``.npz``), atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, frame_density=self.frame_density, eps=self.eps,
                     bandwidth=np.nan if self.bandwidth is None else self.bandwidth, source=self.source,
                     format="deepgaze1-repro centre-bias template 1")

    @classmethod
    def load(cls, path):
        """Read a template written by :meth:`save`; ValueError naming the file if it is not one."""
        try:
            with np.load(path) as f:
                if str(f["format"]) != "deepgaze1-repro centre-bias template 1":
                    raise KeyError("format")
                bandwidth = float(f["bandwidth"])
                return cls(f["frame_density"], float(f["eps"]), None if np.isnan(bandwidth) else bandwidth,
                           str(f["source"]))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, EOFError, TypeError) as err:
            raise ValueError(f"{path}: not a centre-bias template of this package ({type(err).__name__}: {err}); "
                             f"fit one with fit_center_bias(..., frame=(100, 100))") from err

    def __repr__(self):
        return (f"CenterBiasTemplate(frame={self.frame_density.shape}, eps={self.eps:.3g}, "
                f"bandwidth={self.bandwidth}, source={self.source!r})")


def fit_center_bias(sizes, fixations, frame=None, bandwidth_bounds=(1e-3, 0.3), verbose=False, progress=False):
    """Fit bandwidth and ``eps`` by maximising the leave-one-image-out log-likelihood.

    The bandwidth is searched on a log scale (bounded Brent); for each bandwidth the best
    ``eps`` is found by :func:`fit_uniform_weight`.

    Parameters
    ----------
    sizes : array_like, shape (n_images, 2)
    fixations : Fixations
    frame : tuple, optional
        Fit in a common frame (e.g. ``(100, 100)``), see :class:`CenterBias`.
    bandwidth_bounds : tuple of float
    verbose : bool
        Print every evaluated bandwidth.
    progress : bool
        A progress bar over the evaluated bandwidths (about 15).

    Returns
    -------
    CenterBias
    """
    check_fixations(fixations, sizes, "fit_center_bias", empty_ok=False)
    sizes = np.asarray(sizes)
    area = (np.prod(frame) if frame is not None else sizes[fixations.n].prod(axis=1)).astype(float)
    found = {}

    bar = tqdm(desc="centre bias: bandwidths tried", unit="", disable=not progress)

    def negative_ll(log_bandwidth):
        bandwidth = np.exp(log_bandwidth)
        eps, ll = fit_uniform_weight(loo_kde_values(fixations, sizes, bandwidth, frame), area)
        found[log_bandwidth] = eps
        bar.update()
        if verbose:
            print(f"centre bias: bandwidth {bandwidth:.5f} eps {eps:.3g} LL {ll / len(fixations):.6f} nat/fix")
        return -ll

    result = minimize_scalar(negative_ll, bounds=np.log(bandwidth_bounds), method="bounded",
                             options={"xatol": 1e-3})
    bar.close()
    return CenterBias(sizes, fixations, np.exp(result.x), found[result.x], frame=frame)
