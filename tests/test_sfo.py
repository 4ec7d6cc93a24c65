"""SFO reaches known optima, survives failed steps, and catches wrong gradients."""
import numpy as np
import pytest
import scipy.optimize

from repro.sfo import SFO, bfgs_curvature, history_scale


def random_quadratics(M, N, seed=0):
    """N convex quadratics 0.5 (x - c_i)^T A_i (x - c_i) in M dimensions and their exact optimum."""
    rng = np.random.default_rng(seed)
    A, c = [], []
    for _ in range(N):
        X = rng.standard_normal((M // 2 + 3, M)) / np.sqrt(M)
        A.append(X.T @ X + 0.01 * np.eye(M))        # low-rank-ish, positive definite
        c.append(rng.standard_normal(M))

    def f_df(theta, i):
        d = theta["x"] - c[i]
        g = A[i] @ d
        return 0.5 * d @ g, {"x": g}

    x_opt = np.linalg.solve(sum(A), sum(a @ ci for a, ci in zip(A, c)))
    f_opt = sum(f_df({"x": x_opt}, i)[0] for i in range(N))
    return f_df, x_opt, f_opt


def full_objective(f_df, theta, refs):
    return sum(f_df(theta, r)[0] for r in refs)


@pytest.mark.parametrize("M, N", [(12, 4), (60, 5)])     # full space, and the subspace with collapses
def test_random_quadratics_reach_exact_optimum(M, N):
    f_df, x_opt, f_opt = random_quadratics(M, N)
    opt = SFO(f_df, {"x": np.zeros(M)}, list(range(N)), seed=1, display=0)
    theta = opt.optimize(num_passes=60)
    f = full_objective(f_df, theta, range(N))
    assert abs(f - f_opt) <= 1e-8 * abs(f_opt)
    assert set(theta) == {"x"} and theta["x"].shape == (M,)
    if M > opt.space.K_max:
        assert opt.space.P.shape[1] <= opt.space.K_max + 2    # the subspace really was used


def logistic_problem(M=20, N=100, per_batch=10, l2=1e-2, seed=0):
    """L2-regularised logistic regression over N minibatches of a synthetic dataset."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N * per_batch, M))
    w_true = 2 * rng.standard_normal(M) / np.sqrt(M)
    y = (rng.random(N * per_batch) < 1 / (1 + np.exp(-X @ w_true))).astype(float)
    n = len(y)

    def loss(w, rows):
        z = X[rows] @ w
        f = np.sum(np.logaddexp(0, z) - y[rows] * z) / n + 0.5 * l2 * (w @ w) * len(z) / n
        g = X[rows].T @ (1 / (1 + np.exp(-z)) - y[rows]) / n + l2 * w * len(z) / n
        return f, g

    def f_df(theta, rows):
        f, g = loss(theta["w"], rows)
        return f, {"w": g, "b": np.zeros(())}

    refs = [slice(k * per_batch, (k + 1) * per_batch) for k in range(N)]
    best = scipy.optimize.minimize(lambda w: loss(w, slice(None)), np.zeros(M), jac=True,
                                   method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15})
    return f_df, refs, best.fun


def test_logistic_regression_matches_lbfgs_optimum():
    f_df, refs, f_opt = logistic_problem()
    opt = SFO(f_df, {"w": np.zeros(20), "b": np.zeros(())}, refs, seed=0, display=0)
    theta = opt.optimize(num_passes=20)
    f = full_objective(f_df, theta, refs)
    assert abs(f - f_opt) <= 1e-6 * abs(f_opt)
    assert theta["b"].shape == ()
    np.testing.assert_array_equal(opt.theta["w"], theta["w"])
    # the history: one record per effective pass, estimating the objective
    assert opt.history["passes"] == pytest.approx(np.arange(1, 21))
    assert opt.history["objective"][-1] == pytest.approx(f, rel=1e-4)
    assert opt.history["n_active"][-1] == len(refs)


def test_nan_subfunction_is_survived():
    """Subfunction 0 is NaN at scattered points (a fifth of them) away from the optimum."""
    M, N = 12, 4
    f_df, x_opt, f_opt = random_quadratics(M, N, seed=3)

    def f_df_nan(theta, i):
        f, g = f_df(theta, i)
        x = theta["x"]
        if i == 0 and np.sin(1e4 * x.sum()) > 0.6 and np.linalg.norm(x - x_opt) > 1e-3:
            return np.nan, {"x": np.full(M, np.nan)}
        return f, g

    opt = SFO(f_df_nan, {"x": np.zeros(M)}, list(range(N)), seed=0, display=0)
    theta = opt.optimize(num_passes=60)
    reasons = [step["reason"] for step in opt.failed_steps]
    assert any("non-finite" in r for r in reasons)
    assert all(np.isfinite(opt.history["objective"]))
    assert abs(full_objective(f_df, theta, range(N)) - f_opt) <= 1e-8 * abs(f_opt)


def test_check_grad_catches_a_wrong_gradient():
    f_df, refs, _ = logistic_problem(M=6, N=5)
    theta = {"w": np.linspace(-1, 1, 6), "b": np.zeros(())}
    assert SFO(f_df, theta, refs, display=0).check_grad().ok

    def wrong(theta, rows):
        f, g = f_df(theta, rows)
        if rows == refs[3]:
            g["w"] = g["w"].copy()
            g["w"][2] *= 1.05
        return f, g

    result = SFO(wrong, theta, refs, display=0).check_grad()
    assert not result.ok
    assert np.argmax(result.errors) == 3 and result.worst[3] == "'w'[2]"
    assert np.all(result.errors[[0, 1, 2, 4]] < 1e-4)


def test_deterministic_given_seed_and_float32_f_df():
    f_df, refs, _ = logistic_problem(M=8, N=10)

    def f_df32(theta, rows):                       # like a float32 Theano function
        f, g = f_df({k: v.astype(np.float32) for k, v in theta.items()}, rows)
        return np.float32(f), {k: np.asarray(v, np.float32) for k, v in g.items()}

    runs = []
    for _ in range(2):
        opt = SFO(f_df32, {"w": np.zeros(8, np.float32), "b": np.zeros((), np.float32)}, refs,
                  seed=5, display=0)
        runs.append((opt.optimize(num_passes=3), opt.history["objective"]))
    assert runs[0][0]["w"].dtype == np.float64
    np.testing.assert_array_equal(runs[0][0]["w"], runs[1][0]["w"])
    assert runs[0][1] == runs[1][1]


def test_memory_is_linear_in_parameters():
    """Doubling M adds only the (M, K) basis: nothing of size M * N is stored."""
    def stored_bytes(M):
        rng = np.random.default_rng(0)
        c = rng.standard_normal((40, M))
        opt = SFO(lambda th, i: (0.5 * np.sum((th - c[i]) ** 2), th - c[i]), np.zeros(M),
                  list(range(40)), seed=0, display=0)
        opt.optimize(num_steps=30)
        parts = (opt, opt.space, opt.models)
        return (sum(v.nbytes for part in parts for v in vars(part).values() if isinstance(v, np.ndarray)),
                opt.space.P.shape[1])

    small, K = stored_bytes(2000)
    large, _ = stored_bytes(4000)
    assert large - small <= 8 * 2000 * K * 1.01


def test_bad_gradient_structure_is_named():
    def f_df(theta, ref):
        return 0.0, {"w": np.zeros(3), "sigma": np.zeros(2)}

    opt = SFO(f_df, {"w": np.zeros(3), "sigma": np.zeros(())}, [0, 1], display=0)
    with pytest.raises(ValueError, match=r"gradient of subfunction \d\['sigma'\] has shape \(2,\)"):
        opt.optimize(num_steps=1)


def test_bfgs_curvature_is_positive_definite_and_secant():
    rng = np.random.default_rng(0)
    K = 8
    A = rng.standard_normal((K, K))
    A = A @ A.T + 0.1 * np.eye(K)
    S = rng.standard_normal((K, 4))
    Y = A @ S
    beta = history_scale(S, Y)
    B, d = bfgs_curvature(S, Y, beta)
    H = beta * np.eye(K) + (B * d) @ B.T
    np.testing.assert_allclose(H @ S[:, -1], Y[:, -1], rtol=1e-8)        # newest pair holds exactly
    assert np.linalg.eigvalsh(A)[0] <= beta <= np.linalg.eigvalsh(A)[-1]
    # a pair with negative curvature must not make H indefinite
    Y[:, 1] = -Y[:, 1]
    B, d = bfgs_curvature(S, Y, beta)
    assert np.linalg.eigvalsh(beta * np.eye(K) + (B * d) @ B.T)[0] > 0


def overfitting_readout(n_images=20, n_batches=10, pixels=150, features=150, fixations=5, seed=0):
    """A small numpy analogue of the Deep Gaze I readout (issue 5).

    Each image has ``features`` smooth feature maps over a line of ``pixels``;
    fixations follow ``softmax(X w + alpha c)`` with a centre bias ``c``, and the
    cost adds the scale-invariant ``1e-3 |w|_1 / |w|_2``. With more features
    than fixations every minibatch of two images is separable on its own, so
    ``|w|`` grows without bound, as when the readout overfits a few images.
    """
    rng = np.random.default_rng(seed)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    X = rng.standard_normal((n_images, pixels, features))
    X = np.apply_along_axis(lambda v: np.convolve(v, kernel / kernel.sum(), "same"), 1, X)
    X /= X.std()
    c = -0.5 * ((np.arange(pixels) - pixels / 2) / (pixels / 4)) ** 2
    w_true = 0.7 * rng.standard_normal(features)
    fix = []
    for k in range(n_images):
        s = X[k] @ w_true + c
        fix.append(rng.choice(pixels, size=fixations, p=np.exp(s - s.max()) / np.exp(s - s.max()).sum()))
    batches = np.array_split(rng.permutation(n_images), n_batches)
    n_fix, lam = n_images * fixations, 1e-3

    def f_df(theta, b):
        w, alpha = theta["w"], float(theta["alpha"])
        l1, l2 = np.abs(w).sum(), np.linalg.norm(w)
        f = lam * l1 / l2 / n_batches
        g_w = lam * (np.sign(w) / l2 - l1 * w / l2 ** 3) / n_batches
        g_alpha = 0.0
        for k in batches[b]:
            s = X[k] @ w + alpha * c
            log_p = s - s.max() - np.log(np.exp(s - s.max()).sum())
            f -= log_p[fix[k]].sum() / n_fix
            residual = np.bincount(fix[k], minlength=pixels) - len(fix[k]) * np.exp(log_p)
            g_w -= X[k].T @ residual / n_fix
            g_alpha -= c @ residual / n_fix
        return f, {"w": g_w, "alpha": np.array(g_alpha)}

    theta0 = {"w": 0.5 * rng.standard_normal(features) / np.sqrt(features), "alpha": np.array(1.0)}
    return f_df, theta0, list(range(n_batches))


def test_overfitting_readout_descends():
    """Issue 5: on the readout, models that were too flat outside their history let
    SFO's objective climb (here from 1.26 to above 100). It must descend steadily and
    keep up with full-batch L-BFGS-B given the same number of gradient passes."""
    f_df, theta0, refs = overfitting_readout()
    passes = 25
    values = []
    opt = SFO(f_df, theta0, refs, seed=0, display=0)
    for _ in range(passes):
        values.append(full_objective(f_df, opt.optimize(num_passes=1), refs))
    values = np.array(values)
    assert np.all(np.diff(values) <= 0.01 * values[1:]), values      # (nearly) monotone
    assert len(opt.failed_steps) <= 2 * len(refs)

    def total(x):
        theta = {"w": x[:-1], "alpha": x[-1]}
        parts = [f_df(theta, r) for r in refs]
        return sum(p[0] for p in parts), sum(np.append(p[1]["w"], p[1]["alpha"]) for p in parts)

    lbfgs = scipy.optimize.minimize(total, np.append(theta0["w"], theta0["alpha"]), jac=True,
                                    method="L-BFGS-B", options={"maxfun": passes})
    assert values[-1] <= lbfgs.fun
