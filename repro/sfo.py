"""The Sum of Functions Optimizer (SFO).

Sohl-Dickstein, Poole & Ganguli, "Fast large-scale optimization by unifying
stochastic gradient and quasi-Newton methods", ICML 2014. Deep Gaze I
minimises its cost with it ("the mini-batch based BFGS method"). This is the
project's own implementation of the method as described in ``docs/sfo.md``;
it depends on numpy and scipy only.

The objective is a sum ``F(theta) = sum_i f_i(theta)`` over N subfunctions
(minibatches). SFO keeps one quadratic model per subfunction, built from that
subfunction's last gradient and a BFGS curvature estimate from its own
history, minimises the sum of the models exactly, and evaluates one
subfunction at the new point. A step costs one minibatch gradient, like SGD,
but uses curvature, like quasi-Newton; there is no learning rate.

All models live in a shared subspace spanned by an orthonormal basis ``P`` of
shape ``(M, K)`` (M parameters, K <= K_max ~ 3 N): the new gradients expand it,
and it is collapsed to the most informative directions when full. Memory is
``O(M K)`` for the basis plus ``O(K N max_history)`` for the models: about
``8 (K_max + 2) (M + N (4 max_history + 4))`` bytes, e.g. 0.17 GB for
M = 10,000 parameters and N = 300 subfunctions (K_max = 903).

The state has three parts: :class:`Subspace` holds the basis and maps vectors
into and out of it; :class:`SubfunctionModels` holds every subfunction's
quadratic model and their sum, in the subspace's coordinates; :class:`SFO`
orchestrates them: it proposes steps, chooses and evaluates subfunctions,
handles failed steps, grows the active set, collapses the subspace (which
changes both parts together) and keeps the record.

Example
-------
>>> def f_df(theta, ref):                       # doctest: +SKIP
...     r = X[ref] @ theta['w'] - y[ref]
...     return 0.5 * r @ r, {'w': X[ref].T @ r}
>>> opt = SFO(f_df, {'w': np.zeros(10)}, [slice(0, 50), slice(50, 100)], seed=0)  # doctest: +SKIP
>>> theta = opt.optimize(num_passes=20)         # doctest: +SKIP
>>> opt.history['objective']                       # doctest: +SKIP
"""
import math
import time

import numpy as np
import scipy.linalg

__all__ = ["SFO", "GradCheck", "ParameterLayout", "Subspace", "SubfunctionModels", "history_scale",
           "bfgs_curvature", "orthogonal_residual", "orthonormal_columns", "bound_step", "project_coordinates"]

#: Relative size below which a vector, a history pair or an eigenvalue is
#: treated as zero.
EPS = 1e-12
#: Steps shorter than this (in parameter space) are lengthened to it, so that
#: consecutive evaluations always give a usable curvature pair.
MIN_STEP_LENGTH = 1e-8
#: After the first pass, a step is at most this many times the average step.
MAX_STEP_RATIO = 10.0
#: Eigenvalues of a curvature estimate below ``largest / EIG_FLOOR`` are
#: replaced by a typical positive value.
EIG_FLOOR = 1e8
#: A history pair is forgotten when a collapse of the subspace removes more
#: than this fraction of its length (see ``SubfunctionModels._drop_lost_pairs``).
PROJECTION_LOSS = 0.3
#: ``step_scale`` never falls below this after repeated failed steps.
MIN_STEP_SCALE = 1e-5
#: The first evaluation of a subfunction fails if its value exceeds the mean
#: of the others by this many standard deviations.
FIRST_EVAL_SIGMAS = 3.0


# ----------------------------------------------------------------------------
# Parameters: one array, or a dict / list / tuple of arrays <-> one flat vector
# ----------------------------------------------------------------------------

class ParameterLayout:
    """How a parameter structure maps to one flat float64 vector.

    Parameters
    ----------
    theta : ndarray, dict of ndarray, or list/tuple of ndarray
        An example structure; arrays may have any shape, including ``()``.
    """

    def __init__(self, theta):
        if isinstance(theta, dict):
            self.kind, self.keys = "dict", list(theta.keys())
            arrays = [theta[k] for k in self.keys]
        elif isinstance(theta, (list, tuple)):
            self.kind, self.keys = type(theta).__name__, list(range(len(theta)))
            arrays = list(theta)
        else:
            self.kind, self.keys = "array", [None]
            arrays = [theta]
        self.shapes = [np.shape(a) for a in arrays]
        self.sizes = [int(np.prod(s, dtype=int)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.size = int(self.offsets[-1])

    def name(self, index):
        """A readable name for flat parameter ``index``, e.g. ``"w[3]"``."""
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        key, shape = self.keys[part], self.shapes[part]
        local = np.unravel_index(index - self.offsets[part], shape) if shape else ()
        label = "theta" if key is None else repr(key)
        return label + ("[" + ", ".join(str(int(j)) for j in local) + "]" if shape else "")

    def flatten(self, theta, what="theta"):
        """The structure ``theta`` as a flat float64 vector of shape ``(M,)``."""
        if self.kind == "dict":
            if not isinstance(theta, dict) or set(theta) != set(self.keys):
                got = sorted(theta) if isinstance(theta, dict) else type(theta).__name__
                raise ValueError(f"{what} must be a dict with keys {self.keys}, got {got}")
            arrays = [theta[k] for k in self.keys]
        elif self.kind in ("list", "tuple"):
            if not isinstance(theta, (list, tuple)) or len(theta) != len(self.keys):
                raise ValueError(f"{what} must be a {self.kind} of {len(self.keys)} arrays")
            arrays = list(theta)
        else:
            arrays = [theta]
        flat = np.empty(self.size)
        for key, shape, start, stop, a in zip(self.keys, self.shapes, self.offsets[:-1],
                                              self.offsets[1:], arrays):
            if np.shape(a) != shape:
                label = what if key is None else f"{what}[{key!r}]"
                raise ValueError(f"{label} has shape {np.shape(a)}, expected {shape}")
            flat[start:stop] = np.ravel(a)
        return flat

    def unflatten(self, flat):
        """The flat vector ``flat`` of shape ``(M,)`` as float64 arrays in the structure."""
        arrays = [np.array(flat[start:stop], dtype=float).reshape(shape)
                  for shape, start, stop in zip(self.shapes, self.offsets[:-1], self.offsets[1:])]
        if self.kind == "dict":
            return dict(zip(self.keys, arrays))
        if self.kind == "list":
            return arrays
        if self.kind == "tuple":
            return tuple(arrays)
        return arrays[0]


# ----------------------------------------------------------------------------
# Small pure functions of the method
# ----------------------------------------------------------------------------

def orthogonal_residual(P, v, passes=3):
    """The part of ``v`` orthogonal to the orthonormal columns of ``P``.

    Parameters
    ----------
    P : ndarray, shape (M, K)
    v : ndarray, shape (M,)
    passes : int
        Gram-Schmidt passes; repeating restores accuracy lost to rounding.
    """
    r = v.copy()
    for _ in range(passes):
        r -= P @ (P.T @ r)
    return r


def orthonormal_columns(A, rtol=1e-10):
    """An orthonormal basis ``(n, r)`` of the column space of ``A`` ``(n, m)``."""
    if A.shape[1] == 0:
        return A[:, :0].copy()
    U, sv, _ = np.linalg.svd(A, full_matrices=False)
    if sv[0] == 0:
        return A[:, :0].copy()
    return U[:, sv > rtol * sv[0]]


def history_scale(S, Y):
    """The typical curvature that a history of steps shows.

    Fits the matrix ``Q = Y S^+`` that maps the steps to the gradient changes
    in least squares and returns the median of its non-zero singular values,
    i.e. of the eigenvalues of ``(Q^T Q)^(1/2)``, floored at
    ``largest / EIG_FLOOR``. On a quadratic they all lie between the smallest
    and the largest eigenvalue of the Hessian. This is the curvature a model
    assumes in every direction its history does not reach.

    The paper takes the *smallest* of these values. On objectives whose
    subfunctions each keep improving along their own direction (a readout
    that overfits a few images, where every minibatch alone is separable)
    that makes every model nearly flat outside its history: the summed model
    then predicts large gains for long steps that raise the subfunctions not
    evaluated (the failure test sees only the one evaluated), and the
    objective diverges. The median keeps the models honest there and
    converges as fast on well-posed problems; see ``benchmarks/results/sfo.md``
    and ``tests/test_sfo.py::test_overfitting_readout_descends``.

    Parameters
    ----------
    S, Y : ndarray, shape (K, h)
        Parameter differences and gradient differences, one pair per column.

    Returns
    -------
    float or None
        None when the history shows no curvature at all.
    """
    if S.shape[1] == 0:
        return None
    _, sv, Vt = np.linalg.svd(S, full_matrices=False)
    keep = sv > EPS * sv[0] if sv[0] > 0 else np.zeros(sv.shape, bool)
    if not keep.any():
        return None
    # Q = Y V diag(1/sv) U^T; U^T has orthonormal rows, so Q's singular values are those of Y V / sv
    fit = np.linalg.svd((Y @ Vt[keep].T) / sv[keep], compute_uv=False)
    if not (np.all(np.isfinite(fit)) and fit[0] > 0):
        return None
    return float(max(np.median(fit), fit[0] / EIG_FLOOR))


def bfgs_curvature(S, Y, beta):
    """A positive definite BFGS curvature ``beta I + B diag(d) B^T`` from a history.

    Starts from ``beta I`` and applies BFGS updates oldest to newest,
    ``H <- H + y y^T / (y^T s) - H s s^T H / (s^T H s)``, skipping pairs with
    non-positive curvature ``y^T s`` (they would make ``H`` indefinite). All of
    it happens in the span of the history, outside which ``H = beta I``.
    Eigenvalues below ``largest / EIG_FLOOR`` are replaced by the median
    positive eigenvalue.

    Parameters
    ----------
    S, Y : ndarray, shape (K, h)
        Parameter and gradient differences, oldest first.
    beta : float
        Curvature in all directions the history does not reach.

    Returns
    -------
    B : ndarray, shape (K, r)
        Orthonormal directions, ``r <= 2 h``.
    d : ndarray, shape (r,)
        Curvature along ``B`` minus ``beta``.
    """
    Q = orthonormal_columns(np.hstack([S, Y]))
    r = Q.shape[1]
    if r == 0:
        return Q, np.zeros(0)
    s_all, y_all = Q.T @ S, Q.T @ Y
    A = beta * np.eye(r)
    for s, y in zip(s_all.T, y_all.T):
        sy = s @ y
        if sy <= EPS * np.linalg.norm(s) * np.linalg.norm(y):
            continue
        As = A @ s
        A += np.outer(y, y) / sy - np.outer(As, As) / (s @ As)
    lam, V = np.linalg.eigh(0.5 * (A + A.T))
    spectrum = np.append(lam, beta) if r < S.shape[0] else lam
    floor = np.max(np.abs(spectrum)) / EIG_FLOOR
    good = spectrum[spectrum > floor]
    typical = np.median(good) if good.size else beta
    lam = np.where(lam > floor, lam, typical)
    return Q @ V, lam - beta


def bound_step(step, limit=None):
    """Bound the length of a step, in place.

    A non-zero step shorter than ``MIN_STEP_LENGTH`` is lengthened to it;
    otherwise a step longer than ``limit`` (if given and positive) is
    shortened to it.

    Parameters
    ----------
    step : ndarray, shape (K,)
    limit : float or None

    Returns
    -------
    ndarray, shape (K,)
        ``step`` itself.
    """
    length = np.linalg.norm(step)
    if 0 < length < MIN_STEP_LENGTH:
        step *= MIN_STEP_LENGTH / length
    elif limit is not None and length > limit > 0:
        step *= limit / length
    return step


def project_coordinates(a, Q):
    """Re-express coordinates in a new basis, in place.

    Parameters
    ----------
    a : ndarray, shape (rows, ...)
        Coordinates along axis 0 in the old basis; entries beyond ``K`` are zero.
    Q : ndarray, shape (K, k)
        Orthonormal columns: the new basis is the old one times ``Q``.
        Afterwards entries beyond ``k`` are zero.
    """
    K, k = Q.shape
    a[:k] = np.tensordot(Q.T, a[:K], axes=1)
    a[k:] = 0


# ----------------------------------------------------------------------------
# The shared subspace
# ----------------------------------------------------------------------------

class Subspace:
    """The low-dimensional subspace shared by all models.

    An orthonormal basis ``P`` of which the first ``K`` columns are in use;
    or, when the parameters are few (``M <= K_max``), the whole parameter
    space, where ``P`` is the identity and is not stored. A vector in the
    subspace is stored as its coordinates, shape ``(rows,)``, zero beyond ``K``.

    Parameters
    ----------
    M : int
        Number of parameters.
    N : int
        Number of subfunctions; ``K_min = min(2 N + 2, M)``,
        ``K_max = min(ceil(1.5 K_min), M)``.
    rng : numpy.random.Generator
        The optimiser's generator (random directions).

    Attributes
    ----------
    K_min, K_max : int
        Columns kept by a collapse, and columns that trigger one.
    full : bool
        True if the subspace is the whole parameter space (``K = M``).
    rows : int
        Length of a coordinate vector: ``M`` in the full space, else
        ``K_max + 2`` (room for one push before a collapse).
    P : ndarray, shape (M, rows), or None
        The basis, zero beyond column ``K``; None in the full space.
    K : int
        Columns of ``P`` in use.
    """

    def __init__(self, M, N, rng):
        self.M, self.rng = M, rng
        self.K_min = min(2 * N + 2, M)
        self.K_max = min(math.ceil(1.5 * self.K_min), M)
        self.full = M <= self.K_max
        self.rows = M if self.full else self.K_max + 2
        self.P, self.K = (None, M) if self.full else (np.zeros((M, self.rows)), 0)

    def start(self, theta0):
        """Start the basis from ``theta0`` ``(M,)``, normalised (a random unit
        vector if it is zero); returns the coordinates ``(rows,)`` of ``theta0``."""
        if self.full:
            return theta0.copy()
        norm = np.linalg.norm(theta0)
        self.P[:, 0] = theta0 / norm if norm > 0 else self.random_unit()
        self.K = 1
        coords = np.zeros(self.rows)
        coords[0] = norm
        return coords

    def to_full(self, coords):
        """Coordinates ``(rows,)`` -> parameter vector ``(M,)``."""
        return coords.copy() if self.full else self.P[:, :self.K] @ coords[:self.K]

    def to_coords(self, v):
        """Parameter-space vector ``(M,)`` -> coordinates ``(rows,)`` (its projection)."""
        if self.full:
            return v.copy()
        out = np.zeros(self.rows)
        out[:self.K] = self.P[:, :self.K].T @ v
        return out

    def random_unit(self):
        """A random unit vector ``(M,)``."""
        v = self.rng.standard_normal(self.M)
        return v / np.linalg.norm(v)

    def append(self, v):
        """Append the normalised part of ``v`` ``(M,)`` orthogonal to P as
        column ``K``, if it is not tiny; True if it was appended."""
        r = orthogonal_residual(self.P[:, :self.K], v)
        norm = np.linalg.norm(r)
        if norm > 1e-10 * np.linalg.norm(v) and norm > 0:
            self.P[:, self.K] = r / norm
            self.K += 1
            return True
        return False

    def rebase(self, A):
        """Replace the basis by one of the span of the columns of ``A``.

        Parameters
        ----------
        A : ndarray, shape (K, n)
            Vectors in current coordinates; each is normalised first (so the
            choice is scale-free), and at most ``K_min`` directions are kept.

        Returns
        -------
        Q : ndarray, shape (K, k)
            Orthonormal columns: the new basis is the old one times ``Q``
            (see :func:`project_coordinates`); ``K`` becomes ``k``.
        """
        norms = np.linalg.norm(A, axis=0)
        Q = orthonormal_columns(A[:, norms > 0] / norms[norms > 0])[:, :self.K_min]
        k = Q.shape[1]
        self.P[:, :k] = self.P[:, :self.K] @ Q
        self.P[:, k:] = 0
        self.K = k
        return Q

    def reorthonormalise(self):
        """Re-orthonormalise P if rounding made ``P^T P`` drift from the identity
        (coordinates then change by about the drift)."""
        drift = np.abs(self.P[:, :self.K].T @ self.P[:, :self.K] - np.eye(self.K)).max()
        if drift > 1e-8:
            Q, R = np.linalg.qr(self.P[:, :self.K])
            self.P[:, :self.K] = Q * np.sign(np.diag(R))


# ----------------------------------------------------------------------------
# The per-subfunction quadratic models
# ----------------------------------------------------------------------------

class SubfunctionModels:
    """The quadratic model of every subfunction, and their sum.

    Model ``i`` is ``g_i(x) = f_i + df_i^T (x - theta_i) + 0.5 (x - theta_i)^T
    H_i (x - theta_i)`` with ``H_i = beta_i I + B_i diag(d_i) B_i^T``, all in
    the coordinates of ``space`` (entries beyond ``space.K`` are zero).

    Parameters
    ----------
    space : Subspace
        The subspace the models live in; shared with the optimiser.
    N : int
        Number of subfunctions.
    max_history : int
        Curvature pairs kept per subfunction (``h`` below).
    hessian_init : float
        Curvature of a model without history before any model has one.

    Attributes
    ----------
    theta_i, df_i : ndarray, shape (rows, N)
        Where each subfunction was last evaluated, and its gradient there.
    f_i : ndarray, shape (N,)
        Its value there; NaN until evaluated.
    eval_count : ndarray of int, shape (N,)
        Evaluations of each subfunction that entered its model.
    S, Y : ndarray, shape (rows, h, N)
        History pairs (position and gradient differences), oldest first;
        the first ``n_hist[i]`` columns of subfunction ``i`` are in use.
    n_hist : ndarray of int, shape (N,)
    beta : ndarray, shape (N,)
        Curvature of each model outside its history.
    B : ndarray, shape (rows, 2 h, N)
        Orthonormal directions of each model's extra curvature, the first
        ``rank[i]`` in use.
    d : ndarray, shape (2 h, N)
        Curvature along ``B`` minus ``beta``.
    rank : ndarray of int, shape (N,)
    in_sum : ndarray of bool, shape (N,)
        Model ``i`` is part of ``H_sum`` and ``b_sum``.
    H_sum : ndarray, shape (rows, rows)
        ``sum_i H_i``; the summed model is minimal at ``H_sum^-1 b_sum``.
    b_sum : ndarray, shape (rows,)
        ``sum_i (H_i theta_i - df_i)``.
    """

    def __init__(self, space, N, max_history, hessian_init):
        self.space, self.N = space, N
        self.max_history, self.hessian_init = int(max_history), float(hessian_init)
        rows, H = space.rows, self.max_history
        self.theta_i = np.zeros((rows, N))
        self.df_i = np.zeros((rows, N))
        self.f_i = np.full(N, np.nan)
        self.eval_count = np.zeros(N, dtype=int)
        self.S = np.zeros((rows, H, N))
        self.Y = np.zeros((rows, H, N))
        self.n_hist = np.zeros(N, dtype=int)
        self.beta = np.zeros(N)
        self.B = np.zeros((rows, 2 * H, N))
        self.d = np.zeros((2 * H, N))
        self.rank = np.zeros(N, dtype=int)
        self.in_sum = np.zeros(N, dtype=bool)
        self.H_sum = np.zeros((rows, rows))
        self.b_sum = np.zeros(rows)

    # -- reading the models ----------------------------------------------------

    def hessian_times(self, i, v):
        """``H_i v`` for a coordinate vector ``v`` of shape ``(K,)``."""
        K, r = self.space.K, self.rank[i]
        B = self.B[:K, :r, i]
        return self.beta[i] * v + B @ (self.d[:r, i] * (B.T @ v))

    def model_value(self, i, theta):
        """The model ``g_i`` at coordinates ``theta`` ``(rows,)``."""
        K = self.space.K
        delta = theta[:K] - self.theta_i[:K, i]
        return self.f_i[i] + self.df_i[:K, i] @ delta + 0.5 * delta @ self.hessian_times(i, delta)

    def _offsets(self, theta, which):
        """``theta - theta_i`` ``(K, n)`` for the ``n`` subfunctions ``which``,
        and its components along their ``B`` ``(2 h, n)``."""
        K = self.space.K
        delta = theta[:K, None] - self.theta_i[:K, which]
        return delta, np.einsum("krn,kn->rn", self.B[:K, :, which], delta)

    def gradients(self, theta, which):
        """The gradients ``(K, n)`` of the models ``which`` ``(n,)`` at coordinates ``theta``."""
        K = self.space.K
        delta, proj = self._offsets(theta, which)
        return (self.df_i[:K, which] + self.beta[which] * delta
                + np.einsum("krn,rn->kn", self.B[:K, :, which], self.d[:, which] * proj))

    def distances(self, theta, which, summed):
        """Squared distances ``(n,)`` of ``theta`` from the models ``which``
        ``(n,)`` in the metric of ``H_sum`` (``summed``) or of each ``H_i``."""
        K = self.space.K
        if summed:
            delta = theta[:K, None] - self.theta_i[:K, which]
            return np.sum(delta * (self.H_sum[:K, :K] @ delta), axis=0)
        delta, proj = self._offsets(theta, which)
        return self.beta[which] * np.sum(delta ** 2, axis=0) + np.sum(self.d[:, which] * proj ** 2, axis=0)

    def minimum(self):
        """The minimum ``(K,)`` of the summed model, and ``H_sum`` ``(K, K)``.

        An indefinite ``H_sum`` has its eigenvalues floored at
        ``largest / EIG_FLOOR``.
        """
        K = self.space.K
        H, b = self.H_sum[:K, :K], self.b_sum[:K]
        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(H), b), H
        except np.linalg.LinAlgError:
            lam, V = np.linalg.eigh(0.5 * (H + H.T))
            lam = np.maximum(lam, np.max(np.abs(lam)) / EIG_FLOOR)
            return V @ ((V.T @ b) / lam), H

    # -- updating them ---------------------------------------------------------

    def contribute(self, i, sign):
        """Add (``sign=+1``) or remove (-1) model ``i`` from ``H_sum`` and ``b_sum``."""
        if self.eval_count[i] == 0 or self.in_sum[i] == (sign > 0):
            return
        self.in_sum[i] = sign > 0
        K, r = self.space.K, self.rank[i]
        B = self.B[:K, :r, i]
        self.H_sum[:K, :K] += sign * ((B * self.d[:r, i]) @ B.T)
        self.H_sum[np.arange(K), np.arange(K)] += sign * self.beta[i]
        self.b_sum[:K] += sign * (self.hessian_times(i, self.theta_i[:K, i]) - self.df_i[:K, i])

    def new_direction(self):
        """Give the subspace's newest direction (column ``K - 1``) the curvature
        ``sum_i beta_i`` of the models in the sum."""
        K = self.space.K
        self.H_sum[K - 1, K - 1] = self.beta[self.in_sum].sum()

    def step_since(self, i, theta_full, g):
        """The pair ``(theta_full - theta_i, g - df_i)``, each ``(M,)``, since the
        last evaluation of subfunction ``i``; None if it has none."""
        if self.eval_count[i] == 0:
            return None
        to_full = self.space.to_full
        return theta_full - to_full(self.theta_i[:, i]), g - to_full(self.df_i[:, i])

    def record(self, i, theta_full, f, g, pair, first_pass):
        """Record an evaluation of subfunction ``i`` (out of the sum): ``f`` and
        gradient ``g`` ``(M,)`` at ``theta_full`` ``(M,)``, with ``pair`` from
        :meth:`step_since`; push the pair into its history, rebuild its model
        and add it to the sum. The subspace must already contain both vectors."""
        to_coords = self.space.to_coords
        theta, df = to_coords(theta_full), to_coords(g)
        if pair is not None and self.usable_pair(*pair):
            h = self.n_hist[i]
            if h == self.max_history:
                self.S[:, :-1, i], self.Y[:, :-1, i] = self.S[:, 1:, i], self.Y[:, 1:, i]
                h -= 1
            self.S[:, h, i], self.Y[:, h, i] = to_coords(pair[0]), to_coords(pair[1])
            self.n_hist[i] = h + 1
        self.theta_i[:, i], self.df_i[:, i], self.f_i[i] = theta, df, f
        self.eval_count[i] += 1
        self.rebuild(i, first_pass)
        self.contribute(i, +1)

    def usable_pair(self, s_full, y_full):
        """A curvature pair ``(M,)``, ``(M,)`` is kept if neither part is tiny,
        they are not orthogonal, and the subspace holds all but PROJECTION_LOSS of both."""
        ns, ny = np.linalg.norm(s_full), np.linalg.norm(y_full)
        if ns == 0 or ny == 0 or abs(s_full @ y_full) <= EPS * ns * ny:
            return False
        s, y = self.space.to_coords(s_full), self.space.to_coords(y_full)
        return np.linalg.norm(s) >= (1 - PROJECTION_LOSS) * ns and \
            np.linalg.norm(y) >= (1 - PROJECTION_LOSS) * ny

    def default_beta(self, first_pass):
        """Curvature for a subfunction without history: the median eigenvalue of
        the summed curvature of the subfunctions with history, per subfunction
        (``hessian_init`` before any has history; 10 times smaller during the
        ``first_pass``, so early steps explore)."""
        with_history = self.in_sum & (self.n_hist > 0)
        if not with_history.any():
            return self.hessian_init
        without = self.in_sum & (self.n_hist == 0)
        K = self.space.K
        lam = np.linalg.eigvalsh(self.H_sum[:K, :K]) - self.beta[without].sum()
        beta = np.median(lam) / with_history.sum()
        if not beta > 0:
            beta = np.max(lam) / with_history.sum() / EIG_FLOOR
        return beta / 10 if first_pass else beta

    def rebuild(self, i, first_pass):
        """Recompute the curvature ``H_i = beta_i I + B_i diag(d_i) B_i^T``
        from the history (see :meth:`default_beta` for ``first_pass``)."""
        K, h = self.space.K, self.n_hist[i]
        S, Y = self.S[:K, :h, i], self.Y[:K, :h, i]
        beta = history_scale(S, Y) if h else None
        self.beta[i] = beta if beta is not None else self.default_beta(first_pass)
        B, d = bfgs_curvature(S, Y, self.beta[i])
        r = B.shape[1]
        self.B[:, :, i] = 0
        self.B[:K, :r, i] = B
        self.d[:, i] = 0
        self.d[:r, i] = d
        self.rank[i] = r

    def project(self, Q):
        """Follow a rebase of the subspace (new basis = old one times ``Q``
        ``(K, k)``): re-express everything stored, and forget the history
        pairs the new subspace lost too much of."""
        K = Q.shape[0]
        norms = np.linalg.norm(self.S[:K], axis=0), np.linalg.norm(self.Y[:K], axis=0)
        for a in (self.theta_i, self.df_i, self.S, self.Y, self.B, self.b_sum):
            project_coordinates(a, Q)
        self._drop_lost_pairs(norms)
        k = Q.shape[1]
        self.H_sum[:k, :k] = Q.T @ self.H_sum[:K, :K] @ Q
        self.H_sum[k:, :] = 0
        self.H_sum[:, k:] = 0

    def _drop_lost_pairs(self, norms_before):
        """Forget history pairs that lost more than ``PROJECTION_LOSS`` of their
        length ``norms_before`` (two ``(h, N)``) in a collapse: a partly projected
        pair no longer obeys the secant relation, and one such pair can set a
        far too small curvature."""
        kept_s = np.linalg.norm(self.S, axis=0) >= (1 - PROJECTION_LOSS) * norms_before[0]
        kept_y = np.linalg.norm(self.Y, axis=0) >= (1 - PROJECTION_LOSS) * norms_before[1]
        for j in range(self.N):
            h = self.n_hist[j]
            good = np.flatnonzero(kept_s[:h, j] & kept_y[:h, j])
            if good.size < h:
                self.S[:, :good.size, j] = self.S[:, good, j]
                self.Y[:, :good.size, j] = self.Y[:, good, j]
                self.S[:, good.size:, j] = 0
                self.Y[:, good.size:, j] = 0
                self.n_hist[j] = good.size


# ----------------------------------------------------------------------------
# The optimizer
# ----------------------------------------------------------------------------

class GradCheck:
    """The result of :meth:`SFO.check_grad`.

    Attributes
    ----------
    errors : ndarray, shape (N,)
        Largest relative error between analytic and finite-difference gradient
        per subfunction, ``|g - g_fd| / (|g| + |g_fd|)`` over checked parameters.
    worst : list of str
        Per subfunction, the name of the parameter with the largest error.
    ok : bool
        True if every error is below the tolerance.
    """

    def __init__(self, errors, worst, tolerance):
        self.errors, self.worst, self.tolerance = errors, worst, tolerance
        self.ok = bool(np.all(errors <= tolerance))

    def __repr__(self):
        i = int(np.argmax(self.errors))
        return (f"GradCheck(ok={self.ok}, max relative error {self.errors[i]:.2e} "
                f"in subfunction {i} at {self.worst[i]}, tolerance {self.tolerance:g})")


class SFO:
    """The Sum of Functions Optimizer.

    Parameters
    ----------
    f_df : callable
        ``f_df(theta, ref) -> (f, df)``: value and gradient of one subfunction.
        ``theta`` arrives as float64 arrays in the structure of ``theta_init``
        (cast inside ``f_df`` if it computes in float32); ``df`` must have the
        same structure and shapes. Must be deterministic for a given
        ``(theta, ref)``.
    theta_init : ndarray, or dict / list / tuple of ndarray
        Starting parameters; the result is returned in the same structure.
    subfunction_references : sequence
        One reference per subfunction (minibatch), passed to ``f_df`` as ``ref``.
        The authors suggest about ``sqrt(M) / 10`` subfunctions for M parameters.
    max_history : int
        Curvature pairs kept per subfunction.
    hessian_init : float
        Curvature of the first subfunction models, large so the first steps
        are tiny.
    init_subf : int
        Subfunctions active at the start; the active set grows to all of them.
    seed : int or None
        Seed of the random choices (active set, subspace padding); the run is
        deterministic given the seed and a deterministic ``f_df``.
    display : int
        0 silent, 1 one line per effective pass, 2 also each failed step and
        each growth of the active set.

    Attributes
    ----------
    history : dict of list
        One entry per effective pass (and at the end of each ``optimize``):
        ``'passes'`` (effective passes so far), ``'objective'`` (sum of the latest value
        of every subfunction, extrapolated as ``N / n_evaluated`` times the sum
        while not all were evaluated), ``'f_subfunctions'`` (latest value per
        subfunction, ``(N,)``, NaN if never evaluated), ``'n_active'``,
        ``'n_failed'`` (failed steps so far), ``'step_scale'``, ``'seconds'``.
    failed_steps : list of dict
        Each failed step: ``'passes'``, ``'subfunction'``, ``'reason'``.
    theta : the current parameters in the structure of ``theta_init``.
    passes : float
        Effective passes so far.
    space : Subspace
        The shared subspace (basis ``P``, its size ``K``).
    models : SubfunctionModels
        The quadratic model of every subfunction and their sum.
    coords : ndarray, shape (rows,)
        The current parameters, in subspace coordinates.
    active : ndarray of bool, shape (N,)
        The active set.
    step_scale : float
        Damping of the Newton step; halved by a failed step, relaxed towards 1.
    """

    def __init__(self, f_df, theta_init, subfunction_references, *, max_history=10,
                 hessian_init=1e5, init_subf=2, seed=None, display=1):
        self.f_df = f_df
        self.refs = list(subfunction_references)
        self.N = len(self.refs)
        if self.N < 1:
            raise ValueError("subfunction_references is empty: SFO needs at least one subfunction")
        self.layout = ParameterLayout(theta_init)
        theta0 = self.layout.flatten(theta_init, "theta_init")
        if not np.all(np.isfinite(theta0)):
            raise ValueError(f"theta_init is not finite at {self.layout.name(int(np.argmin(np.isfinite(theta0))))}")
        self.M = self.layout.size
        if self.M < 1:
            raise ValueError("theta_init has no parameters")
        self.display = display
        self.rng = np.random.default_rng(seed)

        self.space = Subspace(self.M, self.N, self.rng)
        self.coords = self.space.start(theta0)
        self.models = SubfunctionModels(self.space, self.N, max_history, hessian_init)

        self.active = np.zeros(self.N, dtype=bool)
        self.active[self.rng.choice(self.N, size=min(init_subf, self.N), replace=False)] = True
        self.steps_since_growth = 0
        self.step_scale = 1.0
        self.n_evals = 0
        self.n_steps = 0
        self.step_length_sum = 0.0
        self.predicted_gain = 0.0
        self.history = {k: [] for k in ("passes", "objective", "f_subfunctions", "n_active",
                                        "n_failed", "step_scale", "seconds")}
        self.failed_steps = []
        self._seconds = 0.0
        if display >= 2 and self.N < 25:
            self._say(f"hint: {self.N} subfunctions; the authors suggest about sqrt(M)/10 "
                      f"= {math.sqrt(self.M) / 10:.0f} for M = {self.M} parameters")

    # -- public --------------------------------------------------------------

    @property
    def passes(self):
        """Effective passes through the data so far (subfunction evaluations / N)."""
        return self.n_evals / self.N

    @property
    def theta(self):
        """The current parameters, float64 arrays in the structure of ``theta_init``."""
        return self.layout.unflatten(self.space.to_full(self.coords))

    def get_theta(self):
        """The current parameters (same as :attr:`theta`)."""
        return self.theta

    def optimize(self, num_passes=10, num_steps=None):
        """Run SFO for ``num_passes`` effective passes (or ``num_steps`` steps).

        Parameters
        ----------
        num_passes : float
            Effective passes; one pass is N subfunction evaluations (a failed
            step costs two). Fractions are allowed.
        num_steps : int, optional
            If given, run this many steps instead.

        Returns
        -------
        theta : the current parameters in the structure of ``theta_init``.
        """
        start = time.perf_counter()
        target_evals = self.n_evals + int(round(num_passes * self.N))
        steps = 0
        while (steps < num_steps) if num_steps is not None else (self.n_evals < target_evals):
            before = int(self.passes)
            self._step()
            steps += 1
            if int(self.passes) > before:
                self._seconds += time.perf_counter() - start
                start = time.perf_counter()
                self._record()
        self._seconds += time.perf_counter() - start
        if not self.history["passes"] or self.history["passes"][-1] != self.passes:
            self._record()
        return self.get_theta()

    def check_grad(self, small_diff=1e-6, tolerance=1e-4, num_params=None):
        """Compare ``f_df``'s gradient with central finite differences.

        Checks every subfunction at the current parameters.

        Parameters
        ----------
        small_diff : float
            Finite-difference step.
        tolerance : float
            Largest acceptable relative error.
        num_params : int, optional
            Check this many randomly chosen parameters (all if None); the full
            check costs ``2 M N`` subfunction evaluations.

        Returns
        -------
        GradCheck
        """
        theta = self.space.to_full(self.coords)
        index = np.arange(self.M)
        if num_params is not None and num_params < self.M:
            index = np.sort(self.rng.choice(self.M, size=num_params, replace=False))
        errors, worst = np.zeros(self.N), []
        for i in range(self.N):
            _, g = self._call(i, theta, count=False)
            g_fd = np.empty(index.size)
            for n, j in enumerate(index):
                up, down = theta.copy(), theta.copy()
                up[j] += small_diff
                down[j] -= small_diff
                g_fd[n] = (self._call(i, up, False)[0] - self._call(i, down, False)[0]) / (2 * small_diff)
            scale = np.abs(g[index]) + np.abs(g_fd)
            rel = np.abs(g[index] - g_fd) / np.where(scale > 0, scale, 1.0)
            errors[i] = rel.max()
            worst.append(self.layout.name(int(index[np.argmax(rel)])))
        result = GradCheck(errors, worst, tolerance)
        if self.display >= 1:
            self._say(repr(result))
        return result

    # -- one step --------------------------------------------------------------

    def _step(self):
        """Propose a point, evaluate one subfunction there, update its model."""
        theta_new = self._proposal()
        i = self._choose_subfunction(theta_new)
        theta_new_full = self.space.to_full(theta_new)
        f, g = self._call(i, theta_new_full)
        reason = self._failure(i, f, g, theta_new)
        if reason is None:
            self._push(i, theta_new_full, f, g)
            self.coords = self.space.to_coords(theta_new_full)
            self.step_scale = 1.0 / self.N + (1.0 - 1.0 / self.N) * self.step_scale
        else:
            self._failed_step(i, reason, theta_new_full, f, g)
        self.n_steps += 1
        self.steps_since_growth += 1
        self._maybe_grow(force=reason is not None)

    def _proposal(self):
        """The minimum of the summed quadratic model, damped by ``step_scale``.

        Also sets ``self.predicted_gain``, ``0.5 step^T H step`` for the step
        taken, which the failure test compares against.
        """
        self.predicted_gain = 0.0
        if not np.any(self.models.eval_count > 0):
            return self.coords.copy()
        K = self.space.K
        optimum, H = self.models.minimum()
        limit = None
        if self.n_evals >= self.N and self.n_steps > 0:   # after the first pass
            limit = MAX_STEP_RATIO * self.step_length_sum / self.n_steps
        step = bound_step(self.step_scale * (optimum - self.coords[:K]), limit)
        self.step_length_sum += np.linalg.norm(step)
        self.predicted_gain = 0.5 * step @ (H @ step)
        theta_new = self.coords.copy()
        theta_new[:K] += step
        return theta_new

    def _choose_subfunction(self, theta_new):
        """An active subfunction evaluated fewer than twice, else the farthest one.

        Distance is ``(theta_new - theta_i)^T H (theta_new - theta_i)`` with ``H``
        the summed Hessian or the subfunction's own, chosen at random.
        """
        active = np.flatnonzero(self.active)
        counts = self.models.eval_count[active]
        if counts.min() < 2:
            fewest = active[counts == counts.min()]
            return int(self.rng.choice(fewest))
        dist = self.models.distances(theta_new, active, summed=self.rng.random() < 0.5)
        return int(active[np.argmax(dist)])

    def _failure(self, i, f, g, theta_new):
        """Why evaluating subfunction ``i`` at ``theta_new`` failed, or None.

        Fails if ``f`` or the gradient is not finite; at a first evaluation,
        if ``f`` exceeds the mean of the other subfunctions by 3 standard
        deviations; otherwise if ``f`` rose above its previous value and
        exceeds its model's prediction ``g_i(theta_new)`` by more than the
        improvement the step predicted for the other subfunctions: the summed
        model's gain ``0.5 step^T H step`` minus the decrease ``g_i`` itself
        predicted.
        """
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return "non-finite value or gradient"
        models = self.models
        if models.eval_count[i] == 0:
            others = models.f_i[models.eval_count > 0]
            if others.size >= 2 and f > others.mean() + FIRST_EVAL_SIGMAS * others.std():
                return "first value far above the others"
            return None
        predicted = models.model_value(i, theta_new)
        gain_of_others = self.predicted_gain - (models.f_i[i] - predicted)
        if f > models.f_i[i] and f - predicted > gain_of_others + EPS * abs(f):
            return "value rose more than the model allows"
        return None

    def _failed_step(self, i, reason, theta_new_full, f_new, g_new):
        """Halve ``step_scale``, re-evaluate at the current point, keep the better one."""
        self.step_scale = max(self.step_scale / 2, MIN_STEP_SCALE)
        self.failed_steps.append({"passes": self.passes, "subfunction": i, "reason": reason})
        if self.display >= 2:
            self._say(f"  failed step at pass {self.passes:.2f}, subfunction {i}: {reason}")
        theta_full = self.space.to_full(self.coords)
        f_old, g_old = self._call(i, theta_full)
        old_ok = np.isfinite(f_old) and np.all(np.isfinite(g_old))
        new_ok = np.isfinite(f_new) and np.all(np.isfinite(g_new))
        if not old_ok:
            if new_ok:                      # the current point is unusable: take the new one
                self._push(i, theta_new_full, f_new, g_new)
                self.coords = self.space.to_coords(theta_new_full)
            elif self.models.eval_count[i] > 0:    # both unusable: back to its last finite point
                self.coords = self.models.theta_i[:, i].copy()
            elif self.step_scale == MIN_STEP_SCALE:
                raise FloatingPointError(
                    f"subfunction {i} (reference {self.refs[i]!r}) stays non-finite near the "
                    f"current parameters even at the smallest step scale")
            return
        points = [(f_old, theta_full, g_old)]
        if new_ok:
            points.append((f_new, theta_new_full, g_new))
            points.sort(key=lambda p: -p[0])      # worse first, the better one is pushed last
        for f, th, g in points:
            self._push(i, th, f, g)
        self.coords = self.space.to_coords(points[-1][1])

    def _maybe_grow(self, force):
        """Add a random inactive subfunction when the active ones disagree or stall."""
        if self.active.all() or self.models.eval_count[self.active].min() < 2:
            return
        grow = force or self.steps_since_growth > self.active.sum() or self._gradients_disagree()
        if grow:
            i = int(self.rng.choice(np.flatnonzero(~self.active)))
            self.active[i] = True
            self.steps_since_growth = 0
            if self.display >= 2:
                self._say(f"  active set grows to {self.active.sum()} (subfunction {i})")

    def _gradients_disagree(self):
        """True if the squared standard error of the active model gradients at
        theta exceeds the squared norm of their mean, both in the H^-1 metric."""
        K, active = self.space.K, np.flatnonzero(self.active)
        n = active.size
        if n < 2:
            return True
        grads = self.models.gradients(self.coords, active)
        mean = grads.mean(axis=1)
        centred = grads - mean[:, None]
        try:
            factor = scipy.linalg.cho_factor(self.models.H_sum[:K, :K])
        except np.linalg.LinAlgError:
            return True
        solved = scipy.linalg.cho_solve(factor, np.column_stack([mean, centred]))
        mean_sq = mean @ solved[:, 0]
        sq_err = np.sum(centred * solved[:, 1:]) / (n - 1) / n
        return sq_err > mean_sq

    # -- updating models and subspace together --------------------------------

    def _push(self, i, theta_full, f, g):
        """Record an evaluation of subfunction ``i``: ``f`` and gradient ``g``
        ``(M,)`` at ``theta_full`` ``(M,)``; update its history and model."""
        self.models.contribute(i, -1)
        pair = self.models.step_since(i, theta_full, g)    # in parameter space: a collapse may follow
        self._expand(i, [theta_full, g])
        self.models.record(i, theta_full, f, g, pair, first_pass=self.n_evals < self.N)

    def _append_direction(self, v):
        """Append the part of ``v`` ``(M,)`` orthogonal to the subspace, if it is not tiny."""
        if self.space.append(v):
            self.models.new_direction()

    def _expand(self, i, vectors):
        """Expand the subspace to contain ``vectors`` (each ``(M,)``); collapse if
        it grew beyond K_max. Subfunction ``i`` is being updated with them."""
        if self.space.full:
            return
        for v in vectors:
            self._append_direction(v)
        if self.space.K > self.space.K_max:
            self._collapse(i, vectors)

    def _collapse(self, i, vectors):
        """Rebuild P from the latest position and gradient of every evaluated
        active subfunction (``vectors`` for subfunction ``i``), the current
        theta, padded with random directions up to K_min; project all models."""
        space, models = self.space, self.models
        K = space.K
        keep = np.flatnonzero((models.eval_count > 0) & self.active)
        keep = keep[keep != i]
        columns = [models.theta_i[:K, keep], models.df_i[:K, keep], self.coords[:K, None]]
        columns += [space.to_coords(v)[:K, None] for v in vectors]
        Q = space.rebase(np.hstack(columns))
        project_coordinates(self.coords, Q)
        models.project(Q)
        while space.K < space.K_min:
            self._append_direction(space.random_unit())
        space.reorthonormalise()

    # -- evaluation and bookkeeping ------------------------------------------

    def _call(self, i, theta_full, count=True):
        """Evaluate subfunction ``i`` at ``theta_full`` ``(M,)``: ``(f, gradient (M,))``."""
        f, df = self.f_df(self.layout.unflatten(theta_full), self.refs[i])
        self.n_evals += int(count)
        try:
            f = float(np.asarray(f).reshape(()))
        except (TypeError, ValueError):
            raise ValueError(f"f_df must return a scalar value first; subfunction {i} returned "
                             f"shape {np.shape(f)}") from None
        return f, self.layout.flatten(df, f"gradient of subfunction {i}")

    def _record(self):
        f_i, evaluated = self.models.f_i, self.models.eval_count > 0
        f_sum = f_i[evaluated].sum() * self.N / max(evaluated.sum(), 1)
        entry = {"passes": self.passes, "objective": f_sum, "f_subfunctions": f_i.copy(),
                 "n_active": int(self.active.sum()), "n_failed": len(self.failed_steps),
                 "step_scale": self.step_scale, "seconds": self._seconds}
        for key, value in entry.items():
            self.history[key].append(value)
        if self.display >= 1:
            self._say(f"pass {self.passes:7.2f}  f {f_sum:.8g}  active {entry['n_active']}/{self.N}  "
                      f"failed {entry['n_failed']}  step scale {self.step_scale:.3g}  "
                      f"{self._seconds:.1f} s")

    @staticmethod
    def _say(text):
        print(text, flush=True)
