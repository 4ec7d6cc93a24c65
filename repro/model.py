"""The DeepGaze I readout: from feature maps to a fixation density.

The paper's model, for the feature maps r_k of one image rescaled to the largest layer:

    s = (sum_k w_k r_k) * G_sigma                    saliency, blurred
    o = alpha * c + s                                c: log centre bias
    p = exp(o) / sum exp(o)                          fixation density

How it is computed here (one Theano graph, so w, sigma and alpha get exact gradients):

1. **The grid** is the network's largest layer (AlexNet: ``conv1``, one unit every 8 image pixels,
   about 76 x 101 cells on an 800 x 600 image; :mod:`repro.resampling`). Each grid unit's *cell* is
   the set of pixels nearer to it than to any other unit.
2. Feature maps stay at their layer's native resolution ``(C_l, h_l, w_l)``. Each layer's weighted
   sum ``sum_k w_k r_k`` is interpolated linearly from the layer's unit centres to the grid's (its
   units placed where their receptive fields are centred). Interpolating and summing are both
   linear, so this equals "rescale every map, then sum". The per-feature normalisation to unit
   standard deviation is a fixed scale (:func:`repro.features.feature_scales`) folded into the
   weights: the model uses ``w_k * scale_k``; ``w`` weights the *normalised* features, as in the paper.
3. The Gaussian blur acts on the grid as matrices whose rows are Gaussian weights normalised to sum
   to one (the blur is renormalised at the border); ``sigma`` is in grid cells. Weights below exp(-40)
   of the centre's are 0 (:data:`SMALLEST`).
4. ``c`` is the log of the centre bias's probability mass in each cell, and a softmax over the cells
   gives ``P``, the model's mass in each cell.
5. **The pixel density** spreads each cell's mass evenly over its pixels: ``p(y, x) = P(cell) /
   pixels(cell)``. It sums to one over the pixels, and the log-likelihood of a fixation at pixel
   ``(int(y), int(x))`` is ``log P(cell) - log pixels(cell)``; training maximises exactly this
   log-likelihood (:func:`repro.training.objective`), which is also what the metrics score.

Shapes: features ``(C_l, h_l, w_l)`` per layer and image, stacked ``(C_l, B, h_l, w_l)`` for a batch of
images of one size (:class:`Stacker`); cell arrays ``(B, h, w)``; pixel log-densities ``(H, W)``. Stacks are
float32, or bfloat16 bits (``uint16``, :mod:`repro.bfloat16`) for training sets held compactly: the weighted
sum and its gradient then read those 2 bytes per value directly.

Training evaluates the whole graph, with gradients, in Theano (:meth:`DeepGazeI.loglik_and_grad`); for
evaluation Theano computes the saliency and NumPy adds the prior and normalises (in float64), so that
one saliency serves several priors. :class:`DeepGazeI` is the readout and its parameters; bound to where its
features come from and to a prior, it is a density model like every other (:class:`ReadoutDensity`,
:class:`repro.density.DensityModel`).
"""
import hashlib
import json
from functools import lru_cache

import h5py
import numpy as np

from . import bfloat16
from .backend import T, floatX, stored_function, theano
from .bfloat16 import weighted_sum
from .density import DensityModel, log_prior_in_cells
from .paths import atomic_path
from .resampling import Geometry

__all__ = ["DeepGazeI", "ReadoutDensity", "Stacker", "compile_readout", "is_compact", "log_softmax_cells",
           "gaussian_rows", "FILE_FORMAT"]

#: What :meth:`DeepGazeI.save` writes; files of the pixel-resolution readout (format 1) are refused.
FILE_FORMAT = "deepgaze1-repro readout 2"


#: Below exp(-SMALLEST) of their maximum, the graphs' exponentials are cut to 0 (Gaussian weights) or held
#: there (the softmax): float32 values under 1.2e-38 are *subnormal*, and every product with one costs the
#: CPU some hundred cycles. Left in, they made the readout 2.4 times slower (15 AlexNet layers, 35 images per
#: call). The cut changes each weight, and the softmax's normaliser, by less than exp(-SMALLEST) = 4e-18 of the
#: largest term times the number of terms: far below float32's rounding.
SMALLEST = 40.0


def gaussian_rows(sigma, n, dtype=floatX):
    """Symbolic ``(n, n)`` matrix of Gaussian weights exp(-(i-j)^2 / 2 sigma^2), rows summing to one (the blur
    renormalised at the border); weights below exp(-:data:`SMALLEST`) are 0. The blur of the readout and of
    the postprocessing of saliency maps (:mod:`repro.postprocessing`)."""
    index = T.arange(n).astype(dtype)
    distance = index.dimshuffle(0, "x") - index.dimshuffle("x", 0)
    exponent = distance ** 2 / (2 * sigma ** 2)
    weights = T.switch(exponent < SMALLEST, T.exp(-exponent), 0)
    return weights / weights.sum(axis=1, keepdims=True)


def _saliency_graph(n_layers, compact=False):
    """The symbolic blurred saliency of a batch of same-sized images with ``n_layers`` feature inputs,
    float32 or (``compact``) bfloat16 bits.

    Cell arrays inside the graphs are laid out ``(h, B, w)``: every product then writes contiguous
    memory, and the elementwise work on the cells runs at full speed. Returns the inputs (dict) and
    the saliency ``(h, B, w)``.
    """
    w = T.vector("w")                   # (K,) weights of the normalised features
    log_sigma = T.scalar("log_sigma")   # blur width in grid cells, on a log scale
    scales = T.vector("scales")         # (K,) 1 / std of each feature
    features = [T.tensor4(f"features{l}", dtype="uint16" if compact else floatX)                 # (C_l, B, h_l, w_l)
                for l in range(n_layers)]
    rows = [T.matrix(f"rows{l}") for l in range(n_layers)]               # (h, h_l)
    cols = [T.matrix(f"cols{l}") for l in range(n_layers)]               # (w, w_l)

    sigma = T.exp(log_sigma)
    blur_rows, blur_cols = gaussian_rows(sigma, rows[0].shape[0]), gaussian_rows(sigma, cols[0].shape[0])
    effective = w * scales
    saliency, start = 0, 0
    for feature, to_rows, to_cols in zip(features, rows, cols):
        channels = feature.shape[0]
        layer_sum = weighted_sum(effective[start:start + channels], feature)                 # (B, h_l, w_l)
        # blur after interpolation, composed into one matrix per axis: G (R F C^T) G^T = (G R) F (G C)^T
        along_cols = T.tensordot(layer_sum, T.dot(blur_cols, to_cols), axes=[[2], [1]])      # (B, h_l, w)
        saliency = saliency + T.tensordot(T.dot(blur_rows, to_rows), along_cols, axes=[[1], [1]])   # (h, B, w)
        start = start + channels
    return dict(w=w, log_sigma=log_sigma, scales=scales, features=features, rows=rows, cols=cols), saliency


def _ordered(inputs):
    return [inputs["w"], inputs["log_sigma"], inputs["scales"]] + inputs["features"] + inputs["rows"] + inputs["cols"]


@lru_cache(maxsize=None)
def _compiled_saliency(n_layers, compact=False):
    def build():
        inputs, saliency = _saliency_graph(n_layers, compact)
        return theano.function(_ordered(inputs), saliency, allow_input_downcast=True)

    return stored_function("saliency", (n_layers, compact), [__file__, bfloat16.__file__], build)


@lru_cache(maxsize=None)
def _compiled_loglik_and_grad(n_layers, compact=False):
    """Summed pixel log-likelihood of fixations counted per cell, and its gradient w.r.t. (w, log_sigma, alpha)."""
    inputs, saliency = _saliency_graph(n_layers, compact)
    alpha = T.scalar("alpha")                 # weight of the log centre bias
    log_prior = T.tensor3("log_prior")        # (h, B, w) log centre-bias mass in each cell
    counts = T.tensor3("counts")              # (h, B, w) fixations in each cell
    log_pixels = T.matrix("log_pixels")       # (h, w) log of the number of pixels in each cell
    output = saliency + alpha * log_prior
    # log P = output - log sum exp(output) per image; the gradient of the summed log-likelihood with respect
    # to the output is counts - n * P, given explicitly so that one exp serves the value and the gradient
    top = theano.gradient.disconnected_grad(output.max(axis=[0, 2], keepdims=True))
    exp = T.exp(T.maximum(output - top, -SMALLEST))          # no subnormal masses (the value uses output)
    total_exp = exp.sum(axis=[0, 2], keepdims=True)
    n_fixations = counts.sum(axis=[0, 2], keepdims=True)
    total = ((counts * (output - log_pixels.dimshuffle(0, "x", 1))).sum()
             - (n_fixations * (T.log(total_exp) + top)).sum())
    grads = theano.gradient.grad(None, [inputs["w"], inputs["log_sigma"], alpha],
                                 known_grads={output: counts - n_fixations * exp / total_exp})
    return theano.function(_ordered(inputs) + [alpha, log_prior, counts, log_pixels], [total] + grads,
                           allow_input_downcast=True)


def _cells_inside(array):
    """``(B, h, w)`` -> the graphs' ``(h, B, w)`` layout, contiguous float32."""
    return np.ascontiguousarray(np.asarray(array, floatX).transpose(1, 0, 2))


#: Graphs are compiled for these numbers of layer inputs; a model of fewer layers fills the remaining
#: inputs with empty layers (no features), so that one compilation serves every layer subset of an
#: experiment (Figure 5 has 11 different layer counts; compiling each costs 10-20 s per process).
GRAPH_SLOTS = (1, 16)


def _slots(n_layers):
    return next((slots for slots in GRAPH_SLOTS if slots >= n_layers), n_layers)


def compile_readout(n_layers, compact=False):
    """Compile (or fetch) the graphs a readout of ``n_layers`` layers uses, so that later calls do not pay for
    it: those of float32 stacks and, with ``compact``, those of bfloat16 stacks too."""
    kinds = (False, True) if compact else (False,)
    return [(_compiled_saliency(_slots(n_layers), kind), _compiled_loglik_and_grad(_slots(n_layers), kind))
            for kind in kinds]


def is_compact(stacks):
    """Whether per-layer stacks hold bfloat16 bits (``uint16``) rather than float32; all alike, or ValueError."""
    kinds = {np.asarray(s).dtype == np.uint16 for s in stacks}
    if len(kinds) != 1:
        raise ValueError("the layers' stacks mix bfloat16 (uint16) and float32 maps")
    return kinds.pop()


def _padded(stacks, grid):
    """The graph's layer inputs: ``stacks`` and the grid's matrices, then empty layers up to :func:`_slots`."""
    empty = _slots(len(stacks)) - len(stacks)
    batch = stacks[0].shape[1]
    features = list(stacks) + [np.zeros((0, batch, 1, 1), stacks[0].dtype)] * empty
    rows = list(grid.rows) + [np.zeros((grid.shape[0], 1), floatX)] * empty
    cols = list(grid.cols) + [np.zeros((grid.shape[1], 1), floatX)] * empty
    return features + rows + cols


def log_softmax_cells(output):
    """``(B, h, w)`` -> log of the softmax over each image's cells, float64."""
    output = np.asarray(output, dtype=np.float64)
    top = output.max(axis=(1, 2), keepdims=True)
    return output - (np.log(np.exp(output - top).sum(axis=(1, 2), keepdims=True)) + top)


class Stacker:
    """Stacks per-image feature lists ``[[(C_l, h_l, w_l), ...], ...]`` into per-layer stacks ``[(C_l, B, h_l, w_l),
    ...]``: float32 maps into float32 stacks, :func:`repro.bfloat16.compact` maps into uint16 stacks (the readout
    reads those directly).

    Channels come first so that the weighted sum over them, and its gradient, read the stack as one
    contiguous ``(C_l, B * h_l * w_l)`` matrix (no transposed copy). With ``reuse`` the arrays live in
    buffers that the next call overwrites: stacking many batches then costs no fresh memory (and no page
    faults), only the copy; without it every call returns new arrays.
    """

    def __init__(self, reuse=True):
        self.reuse = reuse
        self._buffers = {}          # (layer, dtype) -> flat buffer

    def _buffer(self, layer, size, dtype):
        buffer = self._buffers.get((layer, dtype)) if self.reuse else None
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype)
        if self.reuse:
            self._buffers[layer, dtype] = buffer
        return buffer

    def __call__(self, feature_lists):
        stacks = []
        for layer, maps in enumerate(zip(*feature_lists)):
            shape = (maps[0].shape[0], len(maps)) + maps[0].shape[1:]
            dtypes = {m.dtype for m in maps}
            if len(dtypes) > 1:
                raise ValueError("cannot stack compact and float32 feature maps together")
            dtype = np.dtype(np.uint16) if dtypes.pop() == np.uint16 else np.dtype(floatX)
            stacked = self._buffer(layer, int(np.prod(shape)), dtype)[:int(np.prod(shape))].reshape(shape)
            for b, m in enumerate(maps):
                stacked[:, b] = m
            stacks.append(stacked)
        return stacks


class DeepGazeI:
    """The DeepGaze I readout with its parameters.

    Parameters
    ----------
    layers : list of str
        Names of the network layers whose features the model reads, in the order of the weights.
    channels : list of int
        Number of features of each layer (``sum(channels) == K``).
    feature_scales : array_like, shape (K,)
        ``1 / std`` of every feature over the training data (see :mod:`repro.features`).
    geometry : repro.resampling.Geometry
        Where the units of every layer and of the grid sit on the image
        (:meth:`repro.features.FeatureExtractor.geometry`).
    w : array_like, shape (K,), optional
        Weights of the normalised features (default: small deterministic values).
    sigma : float
        Blur width in grid cells.
    alpha : float
        Weight of the log centre bias.
    metadata : dict, optional
        What the model was trained on (network weights, dataset, split, lambda, ...); saved with it.
    """

    def __init__(self, layers, channels, feature_scales, geometry, w=None, sigma=2.0, alpha=1.0, metadata=None):
        self.layers = list(layers)
        self.channels = [int(c) for c in channels]
        if len(self.layers) != len(self.channels):
            raise ValueError(f"{len(self.layers)} layers but {len(self.channels)} channel counts")
        n_features = sum(self.channels)
        self.feature_scales = np.asarray(feature_scales, dtype=floatX).reshape(-1)
        if self.feature_scales.shape != (n_features,):
            raise ValueError(f"feature_scales has {self.feature_scales.size} entries, "
                             f"the layers have {n_features} features")
        if not isinstance(geometry, Geometry) or len(geometry.units) != len(self.layers):
            raise ValueError(f"geometry must be a repro.resampling.Geometry with one (first, step) for each of "
                             f"the {len(self.layers)} layers, got {geometry!r}")
        self.geometry = geometry
        if w is None:
            w = np.full(n_features, 1e-3)
        self.w = np.asarray(w, dtype=np.float64).reshape(-1)
        if self.w.shape != (n_features,):
            raise ValueError(f"w has {self.w.size} entries, the layers have {n_features} features")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)
        self.alpha = float(alpha)
        self.metadata = dict(metadata or {})

    # -- parameters as the optimiser sees them -------------------------------------------------
    @property
    def parameters(self):
        """``{'w': (K,), 'log_sigma': (), 'alpha': ()}``, float64 arrays (what :mod:`repro.sfo` optimises)."""
        return {"w": self.w.copy(), "log_sigma": np.array(np.log(self.sigma)), "alpha": np.array(self.alpha)}

    @parameters.setter
    def parameters(self, theta):
        self.w = np.asarray(theta["w"], dtype=np.float64).reshape(-1).copy()
        self.sigma = float(np.exp(theta["log_sigma"]))
        self.alpha = float(theta["alpha"])

    def _parameter_arguments(self, theta=None):
        theta = self.parameters if theta is None else theta
        return [np.asarray(theta["w"], floatX), np.asarray(theta["log_sigma"], floatX), self.feature_scales]

    def _check(self, stacks):
        shapes = [f.shape[0] for f in stacks]
        if shapes != self.channels:
            raise ValueError(f"features have channels {shapes}, the model expects {self.channels} "
                             f"(layers {self.layers})")

    def grid(self, image_shape, features):
        """The :class:`repro.resampling.ReadoutGrid` of an ``(H, W)`` image whose maps are ``features``
        (list of ``(C_l, h_l, w_l)``, or of stacks ``(C_l, B, h_l, w_l)``)."""
        return self.geometry.readout_grid(image_shape[:2], [f.shape[-2:] for f in features])

    # -- the model on the grid ------------------------------------------------------------------
    def saliency(self, stacks, grid, theta=None):
        """The blurred saliency ``s`` on the grid's cells, for a batch of images of one size.

        Parameters
        ----------
        stacks : list of ndarray, each (C_l, B, h_l, w_l)
            Per layer, the feature maps of the B images (see :class:`Stacker`): float32, or all bfloat16
            bits (uint16, :func:`repro.bfloat16.compact`).
        grid : repro.resampling.ReadoutGrid
        theta : dict, optional
            Parameters to evaluate at (default: the model's own).

        Returns
        -------
        ndarray, shape (B, h, w), float32
        """
        self._check(stacks)
        run = _compiled_saliency(_slots(len(stacks)), is_compact(stacks))
        inside = run(*self._parameter_arguments(theta), *_padded(stacks, grid))
        return inside.transpose(1, 0, 2)

    def log_mass_from_saliency(self, saliency, log_prior, theta=None):
        """``log softmax(s + alpha c)`` over the cells: ``(B, h, w)`` saliency and log prior -> log cell masses."""
        alpha = float((self.parameters if theta is None else theta)["alpha"])
        return log_softmax_cells(np.asarray(saliency, np.float64) + alpha * np.asarray(log_prior, np.float64))

    def log_mass(self, stacks, grid, log_prior, theta=None):
        """Log of the model's probability mass in every cell, for a batch of images of one size.

        Parameters
        ----------
        stacks, grid, theta
            As in :meth:`saliency`.
        log_prior : ndarray, shape (B, h, w)
            Log of the centre bias's mass in every cell (any constant offset per image cancels).

        Returns
        -------
        ndarray, shape (B, h, w), float64
            ``log P``; ``exp`` of it sums to one over each image's cells.
        """
        return self.log_mass_from_saliency(self.saliency(stacks, grid, theta), log_prior, theta)

    def loglik_and_grad(self, stacks, grid, log_prior, counts, theta=None):
        """Summed pixel log-likelihood of the fixations of a batch of images, and its gradient.

        Parameters
        ----------
        stacks, grid, log_prior, theta
            As in :meth:`log_mass`.
        counts : ndarray, shape (B, h, w)
            Number of fixations in every cell (:meth:`repro.resampling.ReadoutGrid.counts`).

        Returns
        -------
        value : float
            ``sum_fixations log P(cell) - log pixels(cell)``, the log-likelihood the metrics score.
        grad : dict like :attr:`parameters`
        """
        self._check(stacks)
        theta = self.parameters if theta is None else theta
        run = _compiled_loglik_and_grad(_slots(len(stacks)), is_compact(stacks))
        value, g_w, g_sigma, g_alpha = run(*self._parameter_arguments(theta), *_padded(stacks, grid),
                                           np.asarray(theta["alpha"], floatX), _cells_inside(log_prior),
                                           _cells_inside(counts), grid.log_pixels.astype(floatX))
        return float(value), {"w": g_w.astype(np.float64), "log_sigma": np.array(float(g_sigma)),
                              "alpha": np.array(float(g_alpha))}

    # -- the model on pixels --------------------------------------------------------------------
    def pixel_log_density(self, features, grid, log_prior):
        """Log-density of fixations on one image, at its pixels.

        Parameters
        ----------
        features : list of ndarray, each (C_l, h_l, w_l)
            The image's feature maps, one array per layer of :attr:`layers`.
        grid : repro.resampling.ReadoutGrid
            The image's grid (:meth:`grid`).
        log_prior : ndarray, shape grid.shape
            Log of the prior's mass in every cell (``grid.log_pixels``: uniform).

        Returns
        -------
        ndarray, shape (H, W)
            ``log p(y, x) = log P(cell) - log pixels(cell)``; ``exp`` of it sums to one.
        """
        log_mass = self.log_mass(Stacker(reuse=False)([features]), grid, np.asarray(log_prior)[None])[0]
        return grid.to_pixels(grid.pixel_log_density(log_mass))

    def log_density_from_features(self, features, log_centerbias):
        """:meth:`pixel_log_density` with the prior given at the pixels: ``log_centerbias`` ``(H, W)``, zeros
        for a uniform prior."""
        grid = self.grid(np.shape(log_centerbias), features)
        return self.pixel_log_density(features, grid, grid.log_cell_sums(log_centerbias))

    def density(self, features, centerbias=None, stimuli=None):
        """This readout as a density model (:class:`ReadoutDensity`): with the network it was trained with
        (``features``), a prior (``centerbias``, default uniform) and, for ``log_density(n)``, the dataset's
        ``stimuli``."""
        return ReadoutDensity(self, features, centerbias, stimuli)

    # -- persistence ----------------------------------------------------------------------------
    def _records(self):
        """What :meth:`save` writes: ``(attributes as text, arrays)``, read back by :meth:`load` as they are."""
        attributes = {"format": FILE_FORMAT, "layers": json.dumps(self.layers), "channels": json.dumps(self.channels),
                      "sigma": repr(self.sigma), "alpha": repr(self.alpha),
                      "metadata": json.dumps(self.metadata, sort_keys=True),
                      "geometry": json.dumps(self.geometry.to_json())}
        return attributes, {"w": np.asarray(self.w, np.float64), "feature_scales": np.asarray(self.feature_scales,
                                                                                               np.float32)}

    def save(self, path):
        """Write the model (parameters, layers, feature scales, geometry, metadata) to an HDF5 file, atomically,
        with the SHA-256 of all these records (:meth:`load` refuses a file whose records were edited since)."""
        attributes, arrays = self._records()
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(attributes)
            f.attrs["records_sha256"] = _records_digest(attributes, arrays)
            for name, array in arrays.items():
                f[name] = array

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`.

        Every record is checked where it is read: its type and range (layer names, positive channel counts,
        a geometry of finite (first, step > 0) pairs, finite parameters, sigma > 0, a metadata dict), and all
        of them against the digest :meth:`save` wrote (files saved before it was written have none, and load
        without that check).

        Raises
        ------
        ValueError
            Naming the file and the record: a file that is not such a model (another format, truncated,
            corrupt), a record of the wrong type or out of range, or records edited since they were saved.
        """
        try:
            with h5py.File(path, "r") as f:
                found = f.attrs.get("format")
                if found != FILE_FORMAT:
                    old = found == "deepgaze1-repro readout 1"
                    raise ValueError(f"{path} is not a DeepGaze I model file of this version ({FILE_FORMAT!r}); "
                                     + ("it is a pixel-resolution readout of an earlier version: retrain it"
                                        if old else f"found format {found!r}"))
                attributes = {name: f.attrs[name] for name in _ATTRIBUTES}
                arrays = {name: f[name][()] for name in ("w", "feature_scales")}
                stored_digest = f.attrs.get("records_sha256")
        except FileNotFoundError:
            raise
        except (OSError, KeyError) as err:
            raise ValueError(f"{path}: not a readable DeepGaze I model file (truncated or damaged?): "
                             f"{type(err).__name__}: {err}; save or train it again") from err
        records = {name: _read_record(path, name, value) for name, value in attributes.items()}
        for name, array in arrays.items():
            _check_parameter(path, name, array, records)
        try:
            model = cls(records["layers"], records["channels"], arrays["feature_scales"], records["geometry"],
                        w=arrays["w"], sigma=records["sigma"], alpha=records["alpha"], metadata=records["metadata"])
        except ValueError as err:
            raise ValueError(f"{path}: records that do not fit together ({err}); train it again") from None
        if stored_digest is not None and _records_digest({"format": FILE_FORMAT, **attributes}, arrays) != stored_digest:
            raise ValueError(f"{path}: its records do not match the digest they were saved with (edited or damaged "
                             f"since); train it again or restore the saved file")
        return model


#: The attributes of a model file besides its format, read by :func:`_read_record`.
_ATTRIBUTES = ("layers", "channels", "sigma", "alpha", "metadata", "geometry")


def _records_digest(attributes, arrays):
    """SHA-256 of a model file's text records (by name) and arrays (their dtype, shape and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(attributes):
        digest.update(f"{name}\0{attributes[name]}\0".encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode() + array.tobytes())
    return digest.hexdigest()


def _names(value):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value) \
            or len(set(value)) != len(value):
        raise ValueError("expected a non-empty list of distinct layer names")
    return value


def _counts(value):
    if not isinstance(value, list) or not all(type(v) is int and v > 0 for v in value):
        raise ValueError("expected a list of positive whole numbers (features per layer)")
    return value


def _number(positive):
    def read(value):
        number = float(value)
        if not np.isfinite(number) or (positive and number <= 0):
            raise ValueError("expected a finite number" + (" > 0" if positive else ""))
        return number
    return read


def _dict(value):
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


#: How each attribute is read: (JSON text?, check returning the value or raising ValueError/TypeError).
_RECORDS = {"layers": (True, _names), "channels": (True, _counts), "sigma": (False, _number(True)),
            "alpha": (False, _number(False)), "metadata": (True, _dict), "geometry": (True, Geometry.from_json)}


def _read_record(path, name, raw):
    """Attribute ``name`` of a model file, decoded and checked; ValueError naming the file, record and value."""
    as_json, check = _RECORDS[name]
    try:
        return check(json.loads(raw) if as_json else raw)
    except (TypeError, ValueError) as err:            # json.JSONDecodeError is a ValueError
        shown = raw if len(str(raw)) < 200 else f"{str(raw)[:200]}..."
        raise ValueError(f"{path}: attribute {name!r} = {shown!r}: {err}; the file is damaged or edited: train "
                         f"the model again") from None


def _check_parameter(path, name, array, records):
    """The array ``name`` (``w`` or ``feature_scales``) of a model file: 1-D, one value per feature, finite."""
    features = sum(records["channels"])
    if array.ndim != 1 or array.shape[0] != features or array.dtype.kind != "f":
        raise ValueError(f"{path}: parameter {name} has shape {array.shape} and type {array.dtype}; expected "
                         f"{features} floating-point values (one per feature of {records['channels']})")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: parameter {name} has non-finite values (nan or inf); the model is unusable: "
                         f"train it again")


class ReadoutDensity(DensityModel):
    """DeepGaze I as a density model (:class:`repro.density.DensityModel`): a readout, where its feature maps come
    from, and its prior.

    Parameters
    ----------
    readout : DeepGazeI
    features : repro.features.FeatureStore or repro.features.FeatureExtractor
        The network the readout was trained with; both give ``features(image, layers)``.
    centerbias : repro.density.DensityModel, optional
        The prior, added as ``alpha * log``: for dataset images its ``log_cell_mass(n, grid)`` (a
        :class:`repro.centerbias.CenterBias` leaves image ``n`` out), for new images its ``log_density_of(image)``
        (e.g. a :class:`repro.centerbias.CenterBiasTemplate`). Default: uniform, the prior shuffled AUC expects.
    stimuli : repro.datasets.Stimuli, optional
        The dataset images that :meth:`log_density` ``(n)`` reads.
    """

    def __init__(self, readout, features, centerbias=None, stimuli=None):
        self.readout, self.features, self.centerbias, self.stimuli = readout, features, centerbias, stimuli

    def log_density(self, n):
        """Log-density ``(H, W)`` of dataset image ``stimuli[n]``, with the prior's density of that image."""
        if self.stimuli is None:
            raise TypeError("this DeepGaze I density was made without stimuli: pass stimuli= to know dataset images "
                            "(or use log_density_of(image))")
        image = self.stimuli[int(n)]
        maps = self.features.features(image, self.readout.layers)
        grid = self.readout.grid(image.shape, maps)
        return self.readout.pixel_log_density(maps, grid, log_prior_in_cells(self.centerbias, int(n), grid))

    def log_density_of(self, image):
        """Log-density ``(H, W)`` of a new ``(H, W, 3)`` uint8 RGB image, with the prior's density of a new image."""
        height, width = np.shape(image)[:2]
        if self.centerbias is None:         # uniform: each cell's log mass is log(pixels), as log_cell_sums(0) gives
            maps = self.features.features(image, self.readout.layers)
            grid = self.readout.grid((height, width), maps)
            return self.readout.pixel_log_density(maps, grid, grid.log_pixels)
        prior = np.asarray(self.centerbias.log_density_of(image), floatX)
        if prior.shape != (height, width):
            raise ValueError(f"the prior {self.centerbias!r} gave a log-density of shape {prior.shape}, the image is "
                             f"{(height, width)}")
        return self.readout.log_density_from_features(self.features.features(image, self.readout.layers), prior)

    def __repr__(self):
        return f"ReadoutDensity({' + '.join(self.readout.layers)}, prior {self.centerbias!r})"
