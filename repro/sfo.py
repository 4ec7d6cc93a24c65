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

__all__ = ["SFO", "GradCheck", "ParameterLayout", "history_scale", "bfgs_curvature", "orthogonal_residual",
           "orthonormal_columns"]

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
#: than this fraction of its length (see ``SFO._drop_lost_pairs``).
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
        self.max_history, self.hessian_init, self.display = int(max_history), float(hessian_init), display
        self.rng = np.random.default_rng(seed)

        self.K_min = min(2 * self.N + 2, self.M)
        self.K_max = min(math.ceil(1.5 * self.K_min), self.M)
        self.full_space = self.M <= self.K_max
        rows = self.M if self.full_space else self.K_max + 2   # room for one push before a collapse
        self.rows = rows
        if self.full_space:
            self.P, self.K = None, self.M
            self.coords = theta0.copy()
        else:
            self.P = np.zeros((self.M, rows))
            norm = np.linalg.norm(theta0)
            self.P[:, 0] = theta0 / norm if norm > 0 else self._random_unit()
            self.K = 1
            self.coords = np.zeros(rows)
            self.coords[0] = norm

        # per-subfunction models, in subspace coordinates (rows beyond K are zero)
        N, H = self.N, self.max_history
        self.theta_i = np.zeros((rows, N))
        self.df_i = np.zeros((rows, N))
        self.f_i = np.full(N, np.nan)
        self.S = np.zeros((rows, H, N))
        self.Y = np.zeros((rows, H, N))
        self.n_hist = np.zeros(N, dtype=int)
        self.beta = np.zeros(N)
        self.B = np.zeros((rows, 2 * H, N))
        self.d = np.zeros((2 * H, N))
        self.rank = np.zeros(N, dtype=int)
        self.eval_count = np.zeros(N, dtype=int)
        self.in_sum = np.zeros(N, dtype=bool)        # model i is part of H_sum, b_sum
        # the summed model: H_sum = sum_i H_i, b_sum = sum_i (H_i theta_i - df_i)
        self.H_sum = np.zeros((rows, rows))
        self.b_sum = np.zeros(rows)

        self.active = np.zeros(N, dtype=bool)
        self.active[self.rng.choice(N, size=min(init_subf, N), replace=False)] = True
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
        return self.layout.unflatten(self._to_full(self.coords))

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
        theta = self._to_full(self.coords)
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
        theta_new_full = self._to_full(theta_new)
        f, g = self._call(i, theta_new_full)
        reason = self._failure(i, f, g, theta_new)
        if reason is None:
            self._push(i, theta_new_full, f, g)
            self.coords = self._to_coords(theta_new_full)
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
        if not np.any(self.eval_count > 0):
            return self.coords.copy()
        K = self.K
        H, b = self.H_sum[:K, :K], self.b_sum[:K]
        try:
            optimum = scipy.linalg.cho_solve(scipy.linalg.cho_factor(H), b)
        except np.linalg.LinAlgError:
            lam, V = np.linalg.eigh(0.5 * (H + H.T))
            lam = np.maximum(lam, np.max(np.abs(lam)) / EIG_FLOOR)
            optimum = V @ ((V.T @ b) / lam)
        step = self.step_scale * (optimum - self.coords[:K])
        length = np.linalg.norm(step)
        if 0 < length < MIN_STEP_LENGTH:
            step *= MIN_STEP_LENGTH / length
        elif self.n_evals >= self.N and self.n_steps > 0:
            limit = MAX_STEP_RATIO * self.step_length_sum / self.n_steps
            if length > limit > 0:
                step *= limit / length
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
        counts = self.eval_count[active]
        if counts.min() < 2:
            fewest = active[counts == counts.min()]
            return int(self.rng.choice(fewest))
        K = self.K
        delta = theta_new[:K, None] - self.theta_i[:K, active]
        if self.rng.random() < 0.5:
            dist = np.sum(delta * (self.H_sum[:K, :K] @ delta), axis=0)
        else:
            proj = np.einsum("krn,kn->rn", self.B[:K, :, active], delta)
            dist = self.beta[active] * np.sum(delta ** 2, axis=0) + np.sum(self.d[:, active] * proj ** 2, axis=0)
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
        if self.eval_count[i] == 0:
            others = self.f_i[self.eval_count > 0]
            if others.size >= 2 and f > others.mean() + FIRST_EVAL_SIGMAS * others.std():
                return "first value far above the others"
            return None
        predicted = self._model_value(i, theta_new)
        gain_of_others = self.predicted_gain - (self.f_i[i] - predicted)
        if f > self.f_i[i] and f - predicted > gain_of_others + EPS * abs(f):
            return "value rose more than the model allows"
        return None

    def _failed_step(self, i, reason, theta_new_full, f_new, g_new):
        """Halve ``step_scale``, re-evaluate at the current point, keep the better one."""
        self.step_scale = max(self.step_scale / 2, MIN_STEP_SCALE)
        self.failed_steps.append({"passes": self.passes, "subfunction": i, "reason": reason})
        if self.display >= 2:
            self._say(f"  failed step at pass {self.passes:.2f}, subfunction {i}: {reason}")
        theta_full = self._to_full(self.coords)
        f_old, g_old = self._call(i, theta_full)
        old_ok = np.isfinite(f_old) and np.all(np.isfinite(g_old))
        new_ok = np.isfinite(f_new) and np.all(np.isfinite(g_new))
        if not old_ok:
            if new_ok:                      # the current point is unusable: take the new one
                self._push(i, theta_new_full, f_new, g_new)
                self.coords = self._to_coords(theta_new_full)
            elif self.eval_count[i] > 0:    # both unusable: back to its last finite point
                self.coords = self.theta_i[:, i].copy()
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
        self.coords = self._to_coords(points[-1][1])

    def _maybe_grow(self, force):
        """Add a random inactive subfunction when the active ones disagree or stall."""
        if self.active.all() or self.eval_count[self.active].min() < 2:
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
        K, active = self.K, np.flatnonzero(self.active)
        n = active.size
        if n < 2:
            return True
        delta = self.coords[:K, None] - self.theta_i[:K, active]
        proj = np.einsum("krn,kn->rn", self.B[:K, :, active], delta)
        grads = (self.df_i[:K, active] + self.beta[active] * delta
                 + np.einsum("krn,rn->kn", self.B[:K, :, active], self.d[:, active] * proj))
        mean = grads.mean(axis=1)
        centred = grads - mean[:, None]
        try:
            factor = scipy.linalg.cho_factor(self.H_sum[:K, :K])
        except np.linalg.LinAlgError:
            return True
        solved = scipy.linalg.cho_solve(factor, np.column_stack([mean, centred]))
        mean_sq = mean @ solved[:, 0]
        sq_err = np.sum(centred * solved[:, 1:]) / (n - 1) / n
        return sq_err > mean_sq

    # -- models --------------------------------------------------------------

    def _hessian_times(self, i, v):
        """``H_i v`` for a coordinate vector ``v`` of shape ``(K,)``."""
        K, r = self.K, self.rank[i]
        B = self.B[:K, :r, i]
        return self.beta[i] * v + B @ (self.d[:r, i] * (B.T @ v))

    def _model_value(self, i, theta):
        """The quadratic model g_i of subfunction ``i`` at coordinates ``theta``."""
        delta = theta[:self.K] - self.theta_i[:self.K, i]
        return self.f_i[i] + self.df_i[:self.K, i] @ delta + 0.5 * delta @ self._hessian_times(i, delta)

    def _contribution(self, i, sign):
        """Add (``sign=+1``) or remove (-1) model ``i`` from ``H_sum`` and ``b_sum``."""
        if self.eval_count[i] == 0 or self.in_sum[i] == (sign > 0):
            return
        self.in_sum[i] = sign > 0
        K, r = self.K, self.rank[i]
        B = self.B[:K, :r, i]
        self.H_sum[:K, :K] += sign * ((B * self.d[:r, i]) @ B.T)
        self.H_sum[np.arange(K), np.arange(K)] += sign * self.beta[i]
        self.b_sum[:K] += sign * (self._hessian_times(i, self.theta_i[:K, i]) - self.df_i[:K, i])

    def _default_beta(self):
        """Curvature for a subfunction without history: the median eigenvalue of
        the summed curvature of the subfunctions with history, per subfunction
        (``hessian_init`` before any has history; 10 times smaller during the
        first pass, so early steps explore)."""
        with_history = self.in_sum & (self.n_hist > 0)
        if not with_history.any():
            return self.hessian_init
        without = self.in_sum & (self.n_hist == 0)
        K = self.K
        lam = np.linalg.eigvalsh(self.H_sum[:K, :K]) - self.beta[without].sum()
        beta = np.median(lam) / with_history.sum()
        if not beta > 0:
            beta = np.max(lam) / with_history.sum() / EIG_FLOOR
        return beta / 10 if self.n_evals < self.N else beta

    def _rebuild_model(self, i):
        """Recompute the curvature ``H_i = beta_i I + B_i diag(d_i) B_i^T``."""
        K, h = self.K, self.n_hist[i]
        S, Y = self.S[:K, :h, i], self.Y[:K, :h, i]
        beta = history_scale(S, Y) if h else None
        self.beta[i] = beta if beta is not None else self._default_beta()
        B, d = bfgs_curvature(S, Y, self.beta[i])
        r = B.shape[1]
        self.B[:, :, i] = 0
        self.B[:K, :r, i] = B
        self.d[:, i] = 0
        self.d[:r, i] = d
        self.rank[i] = r

    def _push(self, i, theta_full, f, g):
        """Record an evaluation of subfunction ``i``: ``f`` and gradient ``g``
        ``(M,)`` at ``theta_full`` ``(M,)``; update its history and model."""
        self._contribution(i, -1)
        pair = None
        if self.eval_count[i] > 0:          # in parameter space: a collapse may follow
            pair = theta_full - self._to_full(self.theta_i[:, i]), g - self._to_full(self.df_i[:, i])
        self._expand(i, [theta_full, g])
        theta, df = self._to_coords(theta_full), self._to_coords(g)
        if pair is not None and self._usable_pair(*pair):
            h = self.n_hist[i]
            if h == self.max_history:
                self.S[:, :-1, i], self.Y[:, :-1, i] = self.S[:, 1:, i], self.Y[:, 1:, i]
                h -= 1
            self.S[:, h, i], self.Y[:, h, i] = self._to_coords(pair[0]), self._to_coords(pair[1])
            self.n_hist[i] = h + 1
        self.theta_i[:, i], self.df_i[:, i], self.f_i[i] = theta, df, f
        self.eval_count[i] += 1
        self._rebuild_model(i)
        self._contribution(i, +1)

    def _usable_pair(self, s_full, y_full):
        """A curvature pair ``(M,)``, ``(M,)`` is kept if neither part is tiny,
        they are not orthogonal, and the subspace holds all but PROJECTION_LOSS of both."""
        ns, ny = np.linalg.norm(s_full), np.linalg.norm(y_full)
        if ns == 0 or ny == 0 or abs(s_full @ y_full) <= EPS * ns * ny:
            return False
        s, y = self._to_coords(s_full), self._to_coords(y_full)
        return np.linalg.norm(s) >= (1 - PROJECTION_LOSS) * ns and \
            np.linalg.norm(y) >= (1 - PROJECTION_LOSS) * ny

    # -- the shared subspace ---------------------------------------------------

    def _to_full(self, coords):
        """Coordinates ``(rows,)`` -> parameter vector ``(M,)``."""
        return coords.copy() if self.full_space else self.P[:, :self.K] @ coords[:self.K]

    def _to_coords(self, v):
        """Parameter-space vector ``(M,)`` -> coordinates ``(rows,)`` (its projection)."""
        if self.full_space:
            return v.copy()
        out = np.zeros(self.rows)
        out[:self.K] = self.P[:, :self.K].T @ v
        return out

    def _random_unit(self):
        v = self.rng.standard_normal(self.M)
        return v / np.linalg.norm(v)

    def _append_direction(self, v):
        """Append the normalised part of ``v`` orthogonal to P, if it is not tiny."""
        r = orthogonal_residual(self.P[:, :self.K], v)
        norm = np.linalg.norm(r)
        if norm > 1e-10 * np.linalg.norm(v) and norm > 0:
            self.P[:, self.K] = r / norm
            self.K += 1
            self.H_sum[self.K - 1, self.K - 1] = self.beta[self.in_sum].sum()
            return True
        return False

    def _expand(self, i, vectors):
        """Expand the subspace to contain ``vectors`` (each ``(M,)``); collapse if
        it grew beyond K_max. Subfunction ``i`` is being updated with them."""
        if self.full_space:
            return
        for v in vectors:
            self._append_direction(v)
        if self.K > self.K_max:
            self._collapse(i, vectors)

    def _collapse(self, i, vectors):
        """Rebuild P from the latest position and gradient of every evaluated
        active subfunction (``vectors`` for subfunction ``i``), the current
        theta, padded with random directions up to K_min; project all models."""
        K = self.K
        keep = np.flatnonzero((self.eval_count > 0) & self.active)
        keep = keep[keep != i]
        columns = [self.theta_i[:K, keep], self.df_i[:K, keep], self.coords[:K, None]]
        columns += [(self.P[:, :K].T @ v)[:, None] for v in vectors]
        A = np.hstack(columns)
        norms = np.linalg.norm(A, axis=0)
        Q = orthonormal_columns(A[:, norms > 0] / norms[norms > 0])[:, :self.K_min]   # scale-free
        k = Q.shape[1]
        self.P[:, :k] = self.P[:, :K] @ Q
        self.P[:, k:] = 0
        self.K = k

        def project(a):                     # (rows, ...) along axis 0
            a[:k] = np.tensordot(Q.T, a[:K], axes=1)
            a[k:] = 0

        norms = np.linalg.norm(self.S[:K], axis=0), np.linalg.norm(self.Y[:K], axis=0)
        for a in (self.coords, self.theta_i, self.df_i, self.S, self.Y, self.B, self.b_sum):
            project(a)
        self._drop_lost_pairs(norms)
        self.H_sum[:k, :k] = Q.T @ self.H_sum[:K, :K] @ Q
        self.H_sum[k:, :] = 0
        self.H_sum[:, k:] = 0
        while self.K < self.K_min:
            self._append_direction(self._random_unit())
        drift = np.abs(self.P[:, :self.K].T @ self.P[:, :self.K] - np.eye(self.K)).max()
        if drift > 1e-8:                    # re-orthonormalise; coordinates change by ~drift
            Q, R = np.linalg.qr(self.P[:, :self.K])
            self.P[:, :self.K] = Q * np.sign(np.diag(R))

    def _drop_lost_pairs(self, norms_before):
        """Forget history pairs that lost more than ``PROJECTION_LOSS`` of their
        length in a collapse: a partly projected pair no longer obeys the
        secant relation, and one such pair can set a far too small curvature."""
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
        evaluated = self.eval_count > 0
        f_sum = self.f_i[evaluated].sum() * self.N / max(evaluated.sum(), 1)
        entry = {"passes": self.passes, "objective": f_sum, "f_subfunctions": self.f_i.copy(),
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
