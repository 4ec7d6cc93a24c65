"""Training DeepGaze I: maximum likelihood with SFO over minibatches of images.

The paper: "To minimize the cost function on the training set of fixations, the mini-batch based
BFGS method as described in Sohl-Dickstein et al. (2014) was used. [...] To avoid overfitting to the
subjects, leave-one-out cross-validation over the 15 subjects contained in the database was used."

The cost on N training fixations is

    c(w, sigma, alpha) = -1/N sum_i log p(x_i, y_i) + lambda ||w||_1 / ||w||_2,

with ``p`` the model's pixel density (:mod:`repro.model`: ``log p = log P(cell) - log pixels(cell)``),
so ``-c`` without the penalty is exactly the mean log-likelihood :func:`repro.metrics.log_likelihoods`
gives. It is split into SFO subfunctions, each a group of images with their fixations (the penalty
is shared equally among the subfunctions, so the subfunctions sum to the cost). Each subfunction
evaluates its images in stacks of equal size, one Theano call per stack.
"""
from dataclasses import dataclass
from itertools import groupby

import numpy as np
from tqdm.auto import tqdm

from .bfloat16 import compact, expand
from .datasets import check_points
from .density import log_prior_in_cells
from .features import feature_scales
from .model import DeepGazeI, Stacker
from .sfo import SFO

__all__ = ["DEFAULT_LAMBDA", "MEMORY_BUDGET", "COMPACT_ABOVE", "ImageData",
           "prepare_images", "saliencies", "log_masses", "log_likelihoods", "fixation_log_likelihoods",
           "log_densities", "minibatches", "sparsity_penalty", "objective", "fit", "train_model"]

#: The paper's sparsity parameter lambda.
DEFAULT_LAMBDA = 0.001
#: Feature maps that take more than this as bfloat16 (:func:`~repro.bfloat16.compact`) are read from the
#: feature cache whenever they are used.
MEMORY_BUDGET = 6 * 2 ** 30
#: Subfunctions whose feature maps take less than this in all (float32) are stacked once per fit.
STACK_ONCE_BELOW = 2 ** 30
#: Training sets of more float32 bytes than this are held as bfloat16: too large to be stacked once, they are
#: stacked anew at every evaluation, and the readout reads bfloat16 stacks faster than float32 ones (half the
#: bytes to copy and to read; ``benchmarks/results/readout.md``). Below it they stay float32.
COMPACT_ABOVE = STACK_ONCE_BELOW
#: Images evaluated per Theano call when scoring.
SCORE_STACK = 32


@dataclass
class ImageData:
    """What the readout needs of one image: its features, grid, centre bias in cells and fixations.

    Attributes
    ----------
    source : list of ndarray, each (C_l, h_l, w_l), or callable
        The image's feature maps (float32 or bfloat16, :func:`~repro.bfloat16.compact`), or a function
        returning them (read from disk on demand, see :meth:`repro.features.FeatureStore.reader`);
        :attr:`features` gives them as float32, :attr:`maps` as they are held.
    grid : repro.resampling.ReadoutGrid
        The readout grid of the image.
    log_prior : ndarray, shape grid.shape
        Log of the centre bias's mass in every cell (log of the pixel count: uniform prior).
    x, y : ndarray, shape (n,)
        Fixations in pixels (origin top-left), scored at ``(int(y), int(x))``.
    """

    source: object
    grid: object
    log_prior: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        height, width = self.grid.image_shape
        x, y = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
        check_points(x, y, (height, width), "ImageData")                   # before truncation; NaN too
        self.x, self.y = x, y
        self.log_prior = np.asarray(self.log_prior, np.float32)
        if self.log_prior.shape != self.grid.shape:
            raise ValueError(f"log_prior has shape {self.log_prior.shape}, the grid {self.grid.shape}")
        self.cells = self.grid.cell_index(x, y)
        self.counts = self.grid.counts(x, y)

    @property
    def maps(self):
        """The feature maps as held (float32 or :func:`~repro.bfloat16.compact`), list of ``(C_l, h_l, w_l)``."""
        return self.source() if callable(self.source) else self.source

    @property
    def features(self):
        """The feature maps, list of ``(C_l, h_l, w_l)`` float32."""
        return [expand(m) for m in self.maps]

    def with_fixations(self, mask):
        """The same image with only the fixations ``mask`` (boolean or indices into :attr:`x`)."""
        return ImageData(self.source, self.grid, self.log_prior, self.x[mask], self.y[mask])

    def with_prior(self, log_prior):
        """The same image and fixations with another log prior ``(h, w)`` in the cells."""
        return ImageData(self.source, self.grid, log_prior, self.x, self.y)

    @property
    def compact(self):
        """Whether the feature maps are held in memory as bfloat16 (:func:`~repro.bfloat16.compact`)."""
        return not callable(self.source) and self.source[0].dtype == np.uint16

    @property
    def shape_key(self):
        """Images with equal keys are evaluated in one stack: same grid (so same feature shapes), and
        feature maps held alike (compact or float32)."""
        return id(self.grid), self.compact


def prepare_images(store, stimuli, fixations, layers, log_centerbias=None, images=None, in_memory="auto",
                   progress=True):
    """Collect what training or evaluation needs of each image.

    Parameters
    ----------
    store : repro.features.FeatureStore
    stimuli : repro.datasets.Stimuli
    fixations : repro.datasets.Fixations
        Fixations of any images of ``stimuli`` (``n`` indexes ``stimuli``).
    layers : list of str
    log_centerbias : repro.density.DensityModel or callable, optional
        The prior, see :func:`repro.density.log_prior_in_cells`; default: uniform.
    images : sequence of int, optional
        Image indices to prepare (default: every image that has fixations).
    in_memory : bool, "compact" or "auto"
        Hold the feature maps in memory (as float32, or bfloat16, :func:`~repro.bfloat16.compact`: half the
        bytes), or read them from the store's files whenever they are used. ``"auto"``: float32 if they take
        at most :data:`COMPACT_ABOVE` bytes, else compact if they then take at most :data:`MEMORY_BUDGET`, else
        on disk (estimated from the first image).
    progress : bool

    Returns
    -------
    list of ImageData, in the order of ``images``
    """
    images = fixations.images if images is None else np.asarray(images, dtype=int)
    geometry = store.extractor.geometry(layers)
    prepared = []
    for n in tqdm(images, desc="images", disable=not progress, unit="img"):
        image = stimuli[int(n)]
        maps = store.features(image, layers)
        if not prepared and in_memory == "auto":
            size = sum(f.nbytes for f in maps) * len(images)
            in_memory = True if size <= COMPACT_ABOVE else "compact" if size // 2 <= MEMORY_BUDGET else False
        if in_memory == "compact":
            source = [compact(m) for m in maps]
        else:
            source = maps if in_memory else store.reader(image, layers)
        grid = geometry.readout_grid(image.shape[:2], [m.shape[1:] for m in maps])
        on_image = fixations.for_images([n])
        prepared.append(ImageData(source, grid, log_prior_in_cells(log_centerbias, int(n), grid),
                                  on_image.x, on_image.y))
    return prepared


def _stacks(images):
    """Group ``images`` (list of ImageData) into stacks of one grid: ``[(indices, grid), ...]``."""
    order = sorted(range(len(images)), key=lambda i: images[i].shape_key)
    return [(list(group), images[group[0]].grid)
            for group in (list(g) for _, g in groupby(order, key=lambda i: images[i].shape_key))]


def saliencies(model, images, progress=False):
    """The model's blurred saliency ``(h, w)`` on each image's cells, in the order of ``images``.

    Images are evaluated in stacks of up to :data:`SCORE_STACK` images of one grid.
    """
    out = [None] * len(images)
    stacker = Stacker()
    for indices, grid in _stacks(images):
        chunks = [indices[i:i + SCORE_STACK] for i in range(0, len(indices), SCORE_STACK)]
        for chunk in tqdm(chunks, desc="scoring", disable=not progress):
            for i, saliency in zip(chunk, model.saliency(stacker([images[i].maps for i in chunk]), grid)):
                out[i] = saliency
    return out


def log_masses(model, images, saliency=None):
    """The model's log cell masses ``(h, w)`` on each image (with its prior), in the order of ``images``.

    ``saliency``: the images' :func:`saliencies`, if already computed (e.g. for another prior).
    """
    saliency = saliencies(model, images) if saliency is None else saliency
    return [model.log_mass_from_saliency(s[None], image.log_prior[None])[0] for s, image in zip(saliency, images)]


def log_likelihoods(model, images):
    """Per-fixation log-likelihoods (nats) of ``model`` on ``images``, concatenated in image order:
    ``log P(cell) - log pixels(cell)``, equal to :func:`repro.metrics.log_likelihoods` on
    :func:`log_densities`."""
    return fixation_log_likelihoods(images, log_masses(model, images))


def fixation_log_likelihoods(images, masses):
    """Per-fixation log-likelihoods of the fixations of ``images`` under their log cell ``masses``
    (:func:`log_masses`), concatenated in image order."""
    return np.concatenate([image.grid.pixel_log_density(mass).ravel()[image.cells]
                           for mass, image in zip(masses, images)])


def log_densities(model, images):
    """The model's pixel log-density ``(H, W)`` of each image, as a list in the order of ``images``."""
    return [image.grid.to_pixels(image.grid.pixel_log_density(mass))
            for mass, image in zip(log_masses(model, images), images)]


def minibatches(n_images, n_batches, seed=0):
    """Split image indices into ``n_batches`` groups of nearly equal size, shuffled by ``seed``.

    Returns
    -------
    list of ndarray of int
    """
    n_batches = max(1, min(n_batches, n_images))
    order = np.random.RandomState(seed).permutation(n_images)
    return [np.sort(part) for part in np.array_split(order, n_batches)]


def sparsity_penalty(w, regularization):
    """``lambda * ||w||_1 / ||w||_2`` and its gradient with respect to ``w``."""
    w = np.asarray(w, dtype=np.float64)
    l1, l2 = np.abs(w).sum(), np.sqrt((w ** 2).sum())
    if l2 == 0:
        raise FloatingPointError("the weights are all zero: ||w||_1 / ||w||_2 is undefined")
    return regularization * l1 / l2, regularization * (np.sign(w) / l2 - l1 * w / l2 ** 3)


def objective(model, images, batches, regularization=DEFAULT_LAMBDA):
    """The SFO subfunctions of the DeepGaze I cost.

    Parameters
    ----------
    model : repro.model.DeepGazeI
    images : list of ImageData
    batches : list of ndarray of int
        Image indices of each subfunction.
    regularization : float
        lambda of the sparsity penalty.

    Returns
    -------
    f_df : callable ``(theta, batch_index) -> (value, grad)``
        ``theta`` and ``grad`` as :attr:`repro.model.DeepGazeI.parameters`. The subfunctions sum to
        ``-mean log-likelihood + penalty``.
    """
    n_fixations = sum(len(image.cells) for image in images)
    if n_fixations == 0:
        raise ValueError("no training fixations")
    stacks = [[(grid, [batch[i] for i in indices]) for indices, grid in _stacks(batch)]
              for batch in ([images[i] for i in b if len(images[i].cells)] for b in batches)]
    in_memory = all(not callable(image.source) for image in images)
    size = sum(sum(m.size for m in image.maps) for image in images) * 4 if in_memory else np.inf
    keep = size < STACK_ONCE_BELOW                  # small data: stacked once; large: into reused buffers
    stacker, held = Stacker(reuse=not keep), {}

    def arrays(b, s):
        """Stacked features, priors and counts of stack ``s`` of batch ``b``."""
        if (b, s) in held:
            return held[b, s]
        group = stacks[b][s][1]
        found = (stacker([image.maps for image in group]), np.stack([image.log_prior for image in group]),
                 np.stack([image.counts for image in group]))
        if keep:
            held[b, s] = found
        return found

    def f_df(theta, batch_index):
        penalty, penalty_grad = sparsity_penalty(theta["w"], regularization)
        value = penalty / len(batches)
        grad = {"w": penalty_grad / len(batches), "log_sigma": np.array(0.0), "alpha": np.array(0.0)}
        for s, (grid, _) in enumerate(stacks[batch_index]):
            features, log_prior, counts = arrays(batch_index, s)
            loglik, loglik_grad = model.loglik_and_grad(features, grid, log_prior, counts, theta)
            value -= loglik / n_fixations
            for key in grad:
                grad[key] = grad[key] - loglik_grad[key] / n_fixations
        return value, grad

    return f_df


def fit(model, images, regularization=DEFAULT_LAMBDA, n_batches=10, num_passes=20, seed=0, progress=True):
    """Fit ``w``, ``sigma`` and ``alpha`` of ``model`` to the fixations of ``images`` with SFO.

    Parameters
    ----------
    model : repro.model.DeepGazeI
        Its current parameters are the starting point; it is updated in place.
    images : list of ImageData
    regularization : float
        lambda of the sparsity penalty (0.001 in the paper).
    n_batches : int
        Number of SFO subfunctions (groups of images).
    num_passes : int
        Effective passes through the data.
    seed : int
        Seeds the grouping of images and SFO's own choices.
    progress : bool

    Returns
    -------
    history : dict
        ``{'objective': [...], 'passes': [...]}``, the full cost after each pass as SFO recorded it.
    """
    batches = minibatches(len(images), n_batches, seed)
    optimizer = SFO(objective(model, images, batches, regularization), model.parameters,
                    list(range(len(batches))), seed=seed, display=0)
    for _ in tqdm(range(num_passes), desc="SFO passes", disable=not progress):
        model.parameters = optimizer.optimize(num_passes=1)
    return optimizer.history


def train_model(images, layers, geometry, regularization=DEFAULT_LAMBDA, n_batches=10, num_passes=20, seed=0,
                sigma=None, scales=None, progress=True, metadata=None):
    """Build a DeepGaze I readout for ``layers`` and fit it to ``images``.

    Parameters
    ----------
    images : list of ImageData
    layers : list of str
    geometry : repro.resampling.Geometry
        Where the layers' units and the grid sit (:meth:`repro.features.FeatureExtractor.geometry`).
    regularization : float
        lambda of the sparsity penalty (0.001 in the paper); recorded in the model's metadata.
    n_batches, num_passes, seed, progress
        As in :func:`fit`.
    sigma : float, optional
        Initial blur in grid cells (default: 2 % of the grid diagonal, at least 1).
    scales : ndarray, shape (K,), optional
        Feature scales (default: :func:`repro.features.feature_scales` on ``images``; pass the
        cached ones of :meth:`repro.features.FeatureStore.feature_scales` to skip that work).
    metadata : dict, optional
        Saved with the model.

    Returns
    -------
    model : repro.model.DeepGazeI
    history : dict
    """
    channels = [f.shape[0] for f in images[0].features]
    sigma = max(1.0, 0.02 * np.hypot(*images[0].grid.shape)) if sigma is None else sigma
    if scales is None:
        scales = feature_scales(((image.grid.image_shape, image.features) for image in images), geometry)
    # Random start with ||w||_2 about 0.5 (a saliency of about half a nat): at much smaller norms the
    # scale-free penalty ||w||_1 / ||w||_2 is so curved that SFO's first steps are tiny.
    start = np.random.RandomState(seed).randn(sum(channels)) * 0.5 / np.sqrt(sum(channels))
    model = DeepGazeI(layers, channels, scales, geometry, w=start, sigma=sigma, alpha=1.0,
                      metadata={"regularization": float(regularization), **(metadata or {})})
    history = fit(model, images, regularization=regularization, n_batches=n_batches, num_passes=num_passes,
                  seed=seed, progress=progress)
    return model, history
