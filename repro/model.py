"""The DeepGaze I readout: from feature maps to a fixation density.

The paper's model, for feature maps r_k of one image:

    s(x, y) = (sum_k w_k r_k(x, y)) * G_sigma        saliency, blurred
    o(x, y) = alpha * c(x, y) + s(x, y)              c: log centre bias
    p(x, y) = exp(o(x, y)) / sum_{x', y'} exp(o(x', y'))

with the cost  -mean_i log p(x_i, y_i) + lambda * ||w||_1 / ||w||_2.

How it is computed here (all of it one Theano graph, so w, sigma and alpha get exact gradients):

1. Feature maps stay at their layer's native resolution ``(C_l, h_l, w_l)``. Each layer's weighted
   sum ``sum_k w_k r_k`` is rescaled to the *grid* (the size of the largest requested layer) by
   bilinear interpolation matrices. Rescaling and summing are both linear, so this equals the
   paper's "rescale every map, then sum", without holding thousands of rescaled maps.
2. The per-feature normalisation to unit standard deviation is a fixed per-feature scale
   (``feature_scales``), folded into the weights: the model uses ``w_k * scale_k``. ``w`` is the
   weight of the *normalised* feature, as in the paper, and it is what the regulariser sees.
3. The Gaussian blur is applied on the grid as two matrices ``B_y s B_x^T`` whose rows are Gaussian
   weights normalised to sum to one (so the blur is renormalised at the border instead of leaking
   mass into zero padding). ``sigma`` is measured in grid cells.
4. The blurred saliency is upsampled bilinearly to the image's pixels ``(H, W)``, the log centre
   bias of the image (at pixel resolution, see :mod:`repro.centerbias`) is added with weight
   ``alpha``, and a log-softmax over all pixels gives the log-density. Every metric scores fixations
   on this pixel-resolution density at ``(int(y), int(x))``.

Steps 1 and 4 stretch every map over the whole image, as the paper's "rescale to the size of the
largest layer" says. Optionally (``geometry``) maps are instead placed where their units' receptive
fields are centred, which differs at the borders in ``full`` padding (see :class:`DeepGazeI`).

Shapes: features ``(C, h, w)`` float32 per layer; log centre bias ``(H, W)``; log-density ``(H, W)``
whose exponential sums to one.
"""
import json
from functools import lru_cache

import h5py
import numpy as np

from .backend import T, floatX, theano
from .features import grid_shape, interpolation_matrix, resize_matrix
from .paths import atomic_path

#: The paper's sparsity parameter.
DEFAULT_LAMBDA = 0.001


def _gaussian_rows(sigma, n):
    """Symbolic ``(n, n)`` matrix of Gaussian weights exp(-(i-j)^2 / 2 sigma^2), rows summing to one."""
    index = T.arange(n).astype(floatX)
    distance = index.dimshuffle(0, "x") - index.dimshuffle("x", 0)
    weights = T.exp(-distance ** 2 / (2 * sigma ** 2))
    return weights / weights.sum(axis=1, keepdims=True)


def _readout_graph(n_layers):
    """Build the symbolic readout for one image with ``n_layers`` feature inputs.

    Returns the input variables, the parameters and the log-density ``(H, W)``.
    """
    w = T.vector("w")                   # (K,) weights of the normalised features
    log_sigma = T.scalar("log_sigma")   # blur width in grid cells, on a log scale
    alpha = T.scalar("alpha")           # weight of the log centre bias
    scales = T.vector("scales")         # (K,) 1 / std of each feature
    features = [T.tensor3(f"features{l}") for l in range(n_layers)]      # (C_l, h_l, w_l)
    rows_to_grid = [T.matrix(f"rows{l}") for l in range(n_layers)]       # (h, h_l)
    cols_to_grid = [T.matrix(f"cols{l}") for l in range(n_layers)]       # (w, w_l)
    rows_to_image = T.matrix("rows_to_image")                            # (H, h)
    cols_to_image = T.matrix("cols_to_image")                            # (W, w)
    log_centerbias = T.matrix("log_centerbias")                          # (H, W)

    effective = w * scales
    saliency, start = 0, 0
    for feature, rows, cols in zip(features, rows_to_grid, cols_to_grid):
        channels = feature.shape[0]
        layer_sum = T.tensordot(effective[start:start + channels], feature, axes=1)   # (h_l, w_l)
        saliency = saliency + T.dot(T.dot(rows, layer_sum), cols.T)                   # (h, w)
        start = start + channels
    sigma = T.exp(log_sigma)
    blurred = T.dot(T.dot(_gaussian_rows(sigma, saliency.shape[0]), saliency),
                    _gaussian_rows(sigma, saliency.shape[1]).T)
    output = T.dot(T.dot(rows_to_image, blurred), cols_to_image.T) + alpha * log_centerbias
    log_density = T.nnet.logsoftmax(output.reshape((1, -1))).reshape(output.shape)
    inputs = dict(w=w, log_sigma=log_sigma, alpha=alpha, scales=scales, features=features,
                  rows_to_grid=rows_to_grid, cols_to_grid=cols_to_grid, rows_to_image=rows_to_image,
                  cols_to_image=cols_to_image, log_centerbias=log_centerbias)
    return inputs, log_density


def _ordered(inputs):
    return ([inputs["w"], inputs["log_sigma"], inputs["alpha"], inputs["scales"]]
            + inputs["features"] + inputs["rows_to_grid"] + inputs["cols_to_grid"]
            + [inputs["rows_to_image"], inputs["cols_to_image"], inputs["log_centerbias"]])


@lru_cache(maxsize=None)
def _compiled_log_density(n_layers):
    inputs, log_density = _readout_graph(n_layers)
    return theano.function(_ordered(inputs), log_density, allow_input_downcast=True)


@lru_cache(maxsize=None)
def _compiled_loglik_and_grad(n_layers):
    """Summed log-likelihood of the given fixations and its gradient w.r.t. (w, log_sigma, alpha)."""
    inputs, log_density = _readout_graph(n_layers)
    fixations = T.lvector("fixations")       # flat pixel indices y * W + x
    total = log_density.flatten()[fixations].sum()
    grads = T.grad(total, [inputs["w"], inputs["log_sigma"], inputs["alpha"]])
    return theano.function(_ordered(inputs) + [fixations], [total] + grads, allow_input_downcast=True)


@lru_cache(maxsize=256)
def _resize_matrices(feature_hw, grid_hw, image_hw):
    """Stretching (the paper): every map and the grid are rescaled to cover the whole image."""
    rows_to_grid = [resize_matrix(grid_hw[0], h) for h, _ in feature_hw]
    cols_to_grid = [resize_matrix(grid_hw[1], w) for _, w in feature_hw]
    return (rows_to_grid, cols_to_grid,
            resize_matrix(image_hw[0], grid_hw[0]), resize_matrix(image_hw[1], grid_hw[1]))


@lru_cache(maxsize=256)
def _aligned_matrices(feature_hw, geometry, image_hw):
    """Receptive-field alignment: every unit sits at the image position its receptive field is centred on.

    ``geometry[l] = (first, step)`` of layer ``l`` (:meth:`repro.features.FeatureExtractor.unit_positions`);
    the grid is the largest layer's units, the maps are interpolated between unit centres, and
    held constant beyond the outermost ones.
    """
    grid = feature_hw.index(grid_shape([(0,) + hw for hw in feature_hw]))     # the largest layer

    def positions(l, axis):
        first, step = geometry[l]
        return first + step * np.arange(feature_hw[l][axis])
    rows_to_grid = [interpolation_matrix(positions(grid, 0), positions(l, 0)) for l in range(len(feature_hw))]
    cols_to_grid = [interpolation_matrix(positions(grid, 1), positions(l, 1)) for l in range(len(feature_hw))]
    return (rows_to_grid, cols_to_grid, interpolation_matrix(np.arange(image_hw[0]) + 0.5, positions(grid, 0)),
            interpolation_matrix(np.arange(image_hw[1]) + 0.5, positions(grid, 1)))


def _image_arguments(features, log_centerbias, geometry=None):
    """The per-image arguments of the compiled readout, in order."""
    feature_hw = tuple(tuple(f.shape[1:]) for f in features)
    if geometry is None:
        grid = grid_shape([f.shape for f in features])
        matrices = _resize_matrices(feature_hw, grid, tuple(log_centerbias.shape))
    else:
        matrices = _aligned_matrices(feature_hw, geometry, tuple(log_centerbias.shape))
    rows, cols, rows_image, cols_image = matrices
    return list(features) + rows + cols + [rows_image, cols_image, log_centerbias]


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
    w : array_like, shape (K,), optional
        Weights of the normalised features (default: small deterministic values).
    sigma : float
        Blur width in grid cells.
    alpha : float
        Weight of the log centre bias.
    regularization : float
        lambda of the ``||w||_1 / ||w||_2`` penalty.
    metadata : dict, optional
        What the model was trained on (network weights, dataset, split, ...); saved with it.
    geometry : list of (float, float), optional
        How feature maps are placed on the image. None (default, the paper): each map is stretched
        over the whole image ("rescaled to the size of the largest layer"). Otherwise ``(first,
        step)`` per layer, the image position (pixels) of the receptive-field centre of unit 0 and
        the spacing of units (:meth:`repro.features.FeatureExtractor.unit_positions`): maps are
        placed where their units look. In ``full`` padding the outer units look partly outside the
        image, so stretching pulls edge responses inward (conv5 of an 800-pixel-wide image: unit
        centres from -113 to 911 pixels, squeezed onto 0 ... 800).
    """

    def __init__(self, layers, channels, feature_scales, w=None, sigma=2.0, alpha=1.0,
                 regularization=DEFAULT_LAMBDA, metadata=None, geometry=None):
        self.layers = list(layers)
        self.channels = [int(c) for c in channels]
        if len(self.layers) != len(self.channels):
            raise ValueError(f"{len(self.layers)} layers but {len(self.channels)} channel counts")
        n_features = sum(self.channels)
        self.feature_scales = np.asarray(feature_scales, dtype=floatX).reshape(-1)
        if self.feature_scales.shape != (n_features,):
            raise ValueError(f"feature_scales has {self.feature_scales.size} entries, "
                             f"the layers have {n_features} features")
        if w is None:
            w = np.full(n_features, 1e-3)
        self.w = np.asarray(w, dtype=np.float64).reshape(-1)
        if self.w.shape != (n_features,):
            raise ValueError(f"w has {self.w.size} entries, the layers have {n_features} features")
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)
        self.alpha = float(alpha)
        self.regularization = float(regularization)
        self.metadata = dict(metadata or {})
        if geometry is not None:
            geometry = tuple((float(first), float(step)) for first, step in geometry)
            if len(geometry) != len(self.layers) or any(step <= 0 for _, step in geometry):
                raise ValueError(f"geometry needs (first, step > 0) for each of the {len(self.layers)} layers, "
                                 f"got {geometry}")
        self.geometry = geometry

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

    def _check(self, features):
        shapes = [f.shape[0] for f in features]
        if shapes != self.channels:
            raise ValueError(f"features have channels {shapes}, the model expects {self.channels} "
                             f"(layers {self.layers})")

    def _parameter_arguments(self, theta=None):
        theta = self.parameters if theta is None else theta
        return [np.asarray(theta["w"], floatX), np.asarray(theta["log_sigma"], floatX),
                np.asarray(theta["alpha"], floatX), self.feature_scales]

    # -- the model ------------------------------------------------------------------------------
    def log_density_from_features(self, features, log_centerbias):
        """Log-density of fixations on one image.

        Parameters
        ----------
        features : list of ndarray, each (C_l, h_l, w_l)
            The image's feature maps, one array per layer of :attr:`layers`.
        log_centerbias : ndarray, shape (H, W)
            Log prior density at the image's pixels; zeros for a uniform prior.

        Returns
        -------
        ndarray, shape (H, W)
            log p(y, x); ``exp`` of it sums to one.
        """
        self._check(features)
        run = _compiled_log_density(len(features))
        prior = np.asarray(log_centerbias, floatX)
        return run(*self._parameter_arguments(), *_image_arguments(features, prior, self.geometry))

    def log_density(self, image, features, log_centerbias=None):
        """Log-density of fixations on an image of any size.

        Parameters
        ----------
        image : ndarray, shape (H, W, 3), uint8 RGB
        features : repro.features.FeatureStore or repro.features.FeatureExtractor
            Where the image's feature maps come from (the network the model was trained with).
        log_centerbias : ndarray, shape (H, W), optional
            Log prior density at the image's pixels, e.g. ``CenterBias.log_density(shape=(H, W))``.
            Default: uniform, the prior that shuffled AUC expects.

        Returns
        -------
        ndarray, shape (H, W)
            log p(y, x); ``exp`` of it sums to one.
        """
        height, width = image.shape[:2]
        prior = np.zeros((height, width), floatX) if log_centerbias is None else np.asarray(log_centerbias, floatX)
        if prior.shape != (height, width):
            raise ValueError(f"log_centerbias has shape {prior.shape}, the image is {(height, width)}")
        maps = features.features(image, self.layers) if hasattr(features, "features") else features(image, self.layers)
        return self.log_density_from_features(maps, prior)

    def loglik_and_grad(self, features, log_centerbias, fixation_index, theta=None):
        """Summed log-likelihood of fixations on one image, and its gradient.

        Parameters
        ----------
        features, log_centerbias
            As in :meth:`log_density_from_features`.
        fixation_index : ndarray of int, shape (n,)
            Flat pixel indices ``int(y) * W + int(x)`` of the image's fixations.
        theta : dict, optional
            Parameters to evaluate at (default: the model's own).

        Returns
        -------
        value : float
        grad : dict like :attr:`parameters`
        """
        self._check(features)
        run = _compiled_loglik_and_grad(len(features))
        value, g_w, g_sigma, g_alpha = run(*self._parameter_arguments(theta),
                                           *_image_arguments(features, np.asarray(log_centerbias, floatX),
                                                             self.geometry),
                                           np.asarray(fixation_index, dtype=np.int64))
        return float(value), {"w": g_w.astype(np.float64), "log_sigma": np.array(float(g_sigma)),
                              "alpha": np.array(float(g_alpha))}

    def penalty_and_grad(self, theta=None):
        """``lambda * ||w||_1 / ||w||_2`` and its gradient (with respect to ``w`` only)."""
        w = np.asarray((self.parameters if theta is None else theta)["w"], dtype=np.float64)
        l1, l2 = np.abs(w).sum(), np.sqrt((w ** 2).sum())
        if l2 == 0:
            raise FloatingPointError("the weights are all zero: ||w||_1 / ||w||_2 is undefined")
        grad = self.regularization * (np.sign(w) / l2 - l1 * w / l2 ** 3)
        return self.regularization * l1 / l2, grad

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path):
        """Write the model (parameters, layers, feature scales, metadata) to an HDF5 file, atomically."""
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = "deepgaze1-repro readout 1"
            f.attrs["layers"] = json.dumps(self.layers)
            f.attrs["channels"] = json.dumps(self.channels)
            f.attrs["sigma"] = self.sigma
            f.attrs["alpha"] = self.alpha
            f.attrs["regularization"] = self.regularization
            f.attrs["metadata"] = json.dumps(self.metadata, sort_keys=True)
            f.attrs["geometry"] = json.dumps(self.geometry)
            f["w"] = self.w
            f["feature_scales"] = self.feature_scales

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`."""
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "deepgaze1-repro readout 1":
                raise ValueError(f"{path} is not a DeepGaze I model file written by this package")
            return cls(json.loads(f.attrs["layers"]), json.loads(f.attrs["channels"]), f["feature_scales"][()],
                       w=f["w"][()], sigma=float(f.attrs["sigma"]), alpha=float(f.attrs["alpha"]),
                       regularization=float(f.attrs["regularization"]),
                       metadata=json.loads(f.attrs["metadata"]),
                       geometry=json.loads(f.attrs.get("geometry", "null")))
