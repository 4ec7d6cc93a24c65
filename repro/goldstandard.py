"""The gold-standard model: how well one observer's fixations are predicted by the others'.

For image ``n`` and subject ``s`` (Kümmerer et al. 2014): the fixations of all *other* subjects
on ``n`` are binned into a histogram, blurred with a Gaussian of ``sigma = bandwidth * H`` (rows)
and ``bandwidth * W`` (columns) and normalised (the KDE), then mixed with the centre bias and
the uniform density::

    p_s(x, y | n) = w_kde * kde_{-s} + w_cb * centre_bias_n + w_uniform / (H * W)

``bandwidth`` and the weights (summing to 1) maximise the log-likelihood of every subject's
fixations under ``p_s`` (leave one subject out): :func:`fit_gold_standard`. Its information
gain over the centre bias is the *explainable information*. Where no other subject fixated an
image, the KDE component is replaced by the centre bias.

:func:`kde_log_density` is the exact Gaussian KDE at pixel centres of pysaliency's
``KDEGoldModel`` (used for its reference value in the tests).
"""
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from .centerbias import blur_operators, kept
from .datasets import check_fixations, group_by_image
from .density import DensityModel

__all__ = ["GoldStandard", "fit_gold_standard", "kde_log_density", "fit_mixture_weights", "loo_subject_kde_values"]


def kde_log_density(shape, x, y, bandwidth, eps=0.0):
    """Exact Gaussian KDE of relative fixation coordinates, at the pixel centres.

    Parameters
    ----------
    shape : tuple
        ``(height, width)``.
    x, y : array_like, shape (n_fixations,)
        Relative coordinates, ``x / width`` and ``y / height``.
    bandwidth : float
        Standard deviation in relative units.
    eps : float
        Weight of a uniform component.

    Returns
    -------
    ndarray, shape (height, width)
        Log-density over the pixels (``logsumexp == 0``), evaluated at ``((j + 0.5) / W, (i + 0.5) / H)``.
    """
    height, width = shape
    centres_x = (np.arange(width) + 0.5) / width
    centres_y = (np.arange(height) + 0.5) / height
    log_x = -0.5 * ((centres_x[:, None] - np.asarray(x)[None, :]) / bandwidth) ** 2   # (width, n)
    log_y = -0.5 * ((centres_y[:, None] - np.asarray(y)[None, :]) / bandwidth) ** 2   # (height, n)
    scores = logsumexp(log_y[:, None, :] + log_x[None, :, :], axis=-1)
    scores -= logsumexp(scores)
    if eps:
        scores = np.logaddexp(np.log1p(-eps) + scores, np.log(eps) - np.log(height * width))
    return scores


def loo_subject_kde_values(fixations, sizes, bandwidth):
    """Density at every fixation's pixel of the blurred histogram of the *other* subjects'
    fixations on the same image (normalised over the image); nan where there are none.

    Returns
    -------
    ndarray, shape (n_fixations,)
    """
    sizes = np.asarray(sizes)
    values = np.empty(len(fixations))
    operators = {}
    images, groups = group_by_image(fixations.n)
    for n, group in zip(images, groups):
        shape = tuple(sizes[n])
        if shape not in operators:
            rows_y, cols_x = blur_operators(shape, bandwidth)
            operators[shape] = rows_y, cols_x, rows_y.sum(axis=0), cols_x.sum(axis=0)
        rows_y, cols_x, mass_y, mass_x = operators[shape]
        r, c, subject = fixations.y_int[group], fixations.x_int[group], fixations.subject[group]
        others = subject[:, None] != subject[None, :]
        kernel = rows_y[r][:, r] * cols_x[c][:, c]
        mass = others @ (mass_y[r] * mass_x[c])
        with np.errstate(invalid="ignore", divide="ignore"):
            values[group] = np.where(mass > 0, np.sum(kernel * others, axis=1) / mass, np.nan)
    return values


def fit_mixture_weights(likelihoods, iterations=1000, tol=1e-10):
    """Maximum-likelihood mixture weights for fixed components (EM).

    Parameters
    ----------
    likelihoods : ndarray, shape (n_fixations, n_components)
        Density of every component at every fixation.

    Returns
    -------
    weights : ndarray, shape (n_components,)
    mean_ll : float
        Mean log-likelihood (nats) at these weights.
    """
    weights = np.full(likelihoods.shape[1], 1.0 / likelihoods.shape[1])
    previous = -np.inf
    for _ in range(iterations):
        mixture = likelihoods @ weights
        mean_ll = np.mean(np.log(mixture))
        weights = weights * np.mean(likelihoods / mixture[:, None], axis=0)
        if mean_ll - previous < tol:
            break
        previous = mean_ll
    return weights, float(np.mean(np.log(likelihoods @ weights)))


def _components(fixations, sizes, bandwidth, center_bias_ll):
    sizes = np.asarray(sizes)
    kde = loo_subject_kde_values(fixations, sizes, bandwidth)
    center_bias = np.exp(center_bias_ll)
    kde = np.where(np.isnan(kde), center_bias, kde)
    uniform = 1.0 / sizes[fixations.n].prod(axis=1)
    return np.column_stack([kde, center_bias, uniform])


class GoldStandard(DensityModel):
    """Leave-one-subject-out gold standard with fitted bandwidth and weights.

    A density model (:class:`repro.density.DensityModel`) of its dataset's images only: it predicts a
    subject from the others' fixations on the same image, so it has nothing to say of a new image.

    Parameters
    ----------
    sizes : array_like, shape (n_images, 2)
    fixations : Fixations
    center_bias : repro.centerbias.CenterBias
        Its leave-one-image-out densities are the second component.
    bandwidth : float
        Relative to the image height and width.
    weights : array_like, shape (3,)
        Weights of the KDE, the centre bias and the uniform density.
    """

    def __init__(self, sizes, fixations, center_bias, bandwidth, weights):
        _check(fixations, sizes, "GoldStandard")
        self.sizes = np.asarray(sizes)
        self.fixations = fixations
        self.center_bias = center_bias
        self.bandwidth = float(bandwidth)
        self.weights = np.asarray(weights, dtype=float)
        self._kept = {}       # per shape: the blur operators (see _operators)

    def log_likelihoods(self, center_bias_ll=None):
        """Cross-validated log-likelihood (nats) of every fixation it was estimated from.

        ``center_bias_ll`` (shape (n_fixations,)) saves recomputing the centre bias's.
        """
        if center_bias_ll is None:
            center_bias_ll = self.center_bias.log_likelihoods()
        return np.log(_components(self.fixations, self.sizes, self.bandwidth, center_bias_ll) @ self.weights)

    def log_density(self, n, subject=None):
        """Log-density ``(height, width)`` of dataset image ``n``.

        Parameters
        ----------
        n : int
        subject : int, optional
            The subject predicted: the KDE is of all *other* subjects' fixations on ``n`` (what
            :meth:`log_likelihoods` scores). Default: of all subjects' (a new observer's density).
        """
        shape = tuple(self.sizes[n])
        on_image = self.fixations.n == n
        others = self.fixations.filter(on_image if subject is None else on_image & (self.fixations.subject != subject))
        center_bias = np.exp(self.center_bias.log_density(n))
        if len(others):
            along_y, along_x = self._operators(shape)
            blurred = along_y[:, others.y_int] @ along_x[:, others.x_int].T      # the blurred histogram, as _blur's
            kde = blurred / blurred.sum()
        else:
            kde = center_bias
        w_kde, w_cb, w_uniform = self.weights
        return np.log(w_kde * kde + w_cb * center_bias + w_uniform / (shape[0] * shape[1]))

    def __getstate__(self):
        return {**self.__dict__, "_kept": {}}             # pickles (and their digests) without what is recomputed

    def _operators(self, shape):
        """The blur operators ``(along_y, along_x)`` of images of ``shape`` (:func:`repro.centerbias.blur_operators`),
        kept for the last :data:`repro.centerbias.KEPT_SHAPES` shapes: blurring an image's few fixations is then a
        product of their columns."""
        return kept(self._kept, shape, lambda: blur_operators(shape, self.bandwidth))

    def __repr__(self):
        w = self.weights
        return (f"GoldStandard(bandwidth={self.bandwidth:.5g}, weights: kde {w[0]:.4g}, "
                f"centre bias {w[1]:.4g}, uniform {w[2]:.3g})")


def _check(fixations, sizes, where):
    """Fixations on their images, of at least two subjects (each is predicted from the others)."""
    check_fixations(fixations, sizes, where, empty_ok=False)
    if len(fixations.subjects) < 2:
        raise ValueError(f"{where}: fixations of {len(fixations.subjects)} subject(s); the leave-one-subject-out "
                         f"gold standard needs at least two")


def fit_gold_standard(sizes, fixations, center_bias, bandwidth_bounds=(1e-3, 0.3), verbose=False):
    """Fit bandwidth (log-scale bounded Brent) and mixture weights (EM at each bandwidth) by
    maximising the leave-one-subject-out log-likelihood.

    Returns
    -------
    GoldStandard
    """
    _check(fixations, sizes, "fit_gold_standard")
    center_bias_ll = center_bias.log_likelihoods()
    found = {}

    def negative_ll(log_bandwidth):
        weights, mean_ll = fit_mixture_weights(_components(fixations, sizes, np.exp(log_bandwidth), center_bias_ll))
        found[log_bandwidth] = weights
        if verbose:
            print(f"gold standard: bandwidth {np.exp(log_bandwidth):.5f} weights {np.round(weights, 5)} "
                  f"LL {mean_ll:.6f} nat/fix")
        return -mean_ll

    result = minimize_scalar(negative_ll, bounds=np.log(bandwidth_bounds), method="bounded",
                             options={"xatol": 1e-3})
    return GoldStandard(sizes, fixations, center_bias, np.exp(result.x), found[result.x])
