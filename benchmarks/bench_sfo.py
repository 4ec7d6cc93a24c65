"""Effective passes through the data that SFO and its peers need to reach an optimum.

The paper's claim (Sohl-Dickstein et al. 2014): SFO needs fewer effective
passes than full-batch L-BFGS, minibatch SGD with a tuned learning rate, and
Adam-like methods. An effective pass is N subfunction (minibatch) gradient
evaluations; a full-batch evaluation is one pass.

``compare_optimizers(f_df, theta0, refs, optimum)`` runs all of them on any
sum-of-subfunctions objective, so the DeepGaze I readout objective can be
plugged in once it exists; ``main`` runs it on L2-regularised logistic
regression and prints (or writes) a markdown table.

    python benchmarks/bench_sfo.py [--passes 40] [--write]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.optimize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from repro.sfo import SFO, ParameterLayout  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sfo.md"
SGD_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
ADAM_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


class Trace:
    """The full objective against effective passes for one optimizer run."""

    def __init__(self, objective, optimum):
        self.objective, self.optimum = objective, optimum
        self.passes, self.errors = [], []

    def record(self, passes, theta_flat):
        error = (self.objective(theta_flat) - self.optimum) / abs(self.optimum)
        self.passes.append(passes)
        self.errors.append(error if np.isfinite(error) else np.inf)

    def passes_to(self, tolerance):
        """The first recorded effective pass with relative error <= tolerance, or inf."""
        hits = [p for p, e in zip(self.passes, self.errors) if e <= tolerance]
        return hits[0] if hits else np.inf


def run_sfo(f_df, theta0, refs, trace, num_passes, seed, checkpoint=0.25):
    layout = ParameterLayout(theta0)
    opt = SFO(f_df, theta0, refs, seed=seed, display=0)
    trace.record(0.0, layout.flatten(theta0))
    while opt.passes < num_passes:
        theta = opt.optimize(num_passes=checkpoint)
        trace.record(opt.passes, layout.flatten(theta))
    return f"{len(opt.failed_steps)} failed steps"


def run_lbfgs(f_df, theta0, refs, trace, num_passes, seed):
    """scipy's L-BFGS-B on the full batch; every function evaluation is one pass."""
    layout = ParameterLayout(theta0)
    count = [0]

    def full(x):
        theta = layout.unflatten(x)
        f, g = 0.0, np.zeros_like(x)
        for ref in refs:
            fi, gi = f_df(theta, ref)
            f, g = f + float(fi), g + layout.flatten(gi)
        count[0] += 1
        trace.record(float(count[0]), x)
        return f, g

    scipy.optimize.minimize(full, layout.flatten(theta0), jac=True, method="L-BFGS-B",
                            options={"maxfun": int(num_passes), "maxiter": int(num_passes),
                                     "ftol": 1e-15, "gtol": 1e-12})
    return ""


def minibatch_run(f_df, theta0, refs, trace, num_passes, seed, update):
    """Shuffled minibatch passes; ``update(x, g, t)`` returns the new flat x."""
    layout = ParameterLayout(theta0)
    rng = np.random.default_rng(seed)
    x = layout.flatten(theta0)
    trace.record(0.0, x)
    N, t = len(refs), 0
    for p in range(int(num_passes)):
        for k, j in enumerate(rng.permutation(N)):
            _, g = f_df(layout.unflatten(x), refs[j])
            t += 1
            x = update(x, N * layout.flatten(g), t)     # N * g_j estimates the full gradient
            if not np.all(np.isfinite(x)):
                trace.record(p + 1.0, x)
                return
            if (k + 1) % max(N // 4, 1) == 0:
                trace.record(p + (k + 1) / N, x)


def best_of_rates(method, rates, f_df, theta0, refs, objective, optimum, num_passes, seed, tolerance):
    """Run ``method`` at every rate; keep the trace that reaches the tolerance first
    (or, failing that, ends lowest)."""
    best = None
    for rate in rates:
        trace = Trace(objective, optimum)
        minibatch_run(f_df, theta0, refs, trace, num_passes, seed, method(rate))
        key = (trace.passes_to(tolerance), trace.errors[-1] if np.isfinite(trace.errors[-1]) else np.inf)
        if best is None or key < best[0]:
            best = (key, trace, rate)
    return best[1], f"best rate {best[2]:g} of {len(rates)}"


def sgd(rate):
    return lambda x, g, t: x - rate * g


def adam(rate, b1=0.9, b2=0.999, eps=1e-8):
    state = {}

    def update(x, g, t):
        m = state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
        v = state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
        return x - rate * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)

    return update


def compare_optimizers(f_df, theta0, refs, optimum, *, num_passes=40, tolerance=1e-4, seed=0):
    """Effective passes each optimizer needs to get within ``tolerance`` of ``optimum``.

    Parameters
    ----------
    f_df : callable
        ``f_df(theta, ref) -> (f, df)`` as for :class:`repro.sfo.SFO`.
    theta0 : ndarray or dict/list of ndarray
        Start for every optimizer.
    refs : list
        Subfunction references (minibatches).
    optimum : float
        The minimal value of ``sum_ref f(theta, ref)``.

    Returns
    -------
    list of dict
        One row per optimizer: ``method``, ``passes`` (inf if never reached),
        ``final_error`` (relative), ``seconds``, ``note``.
    """
    layout = ParameterLayout(theta0)

    def objective(x):
        theta = layout.unflatten(x)
        return sum(float(f_df(theta, ref)[0]) for ref in refs)

    rows = []
    runs = [("SFO", lambda tr: run_sfo(f_df, theta0, refs, tr, num_passes, seed)),
            ("L-BFGS-B, full batch", lambda tr: run_lbfgs(f_df, theta0, refs, tr, num_passes, seed)),
            ("SGD", None), ("Adam", None)]
    for name, run in runs:
        start = time.perf_counter()
        if run is not None:
            trace = Trace(objective, optimum)
            note = run(trace)
        else:
            method, rates = (sgd, SGD_RATES) if name == "SGD" else (adam, ADAM_RATES)
            trace, note = best_of_rates(method, rates, f_df, theta0, refs, objective, optimum,
                                        num_passes, seed, tolerance)
        rows.append({"method": name, "passes": trace.passes_to(tolerance),
                     "final_error": trace.errors[-1], "seconds": time.perf_counter() - start,
                     "note": note})
    return rows


def logistic_regression(M, N, per_batch, l2, seed=0):
    """L2-regularised logistic regression on a synthetic dataset in N minibatches.

    Returns ``f_df, theta0, refs, optimum`` (optimum from a tight full-batch L-BFGS-B).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N * per_batch, M))
    w_true = 3 * rng.standard_normal(M) / np.sqrt(M)
    y = (rng.random(N * per_batch) < 1 / (1 + np.exp(-X @ w_true))).astype(float)
    n = len(y)

    def f_df(theta, rows):
        w = theta["w"]
        z = X[rows] @ w
        p = 0.5 * (1 + np.tanh(0.5 * z))                   # the logistic function, overflow-free
        f = (np.sum(np.logaddexp(0, z) - y[rows] * z) + 0.5 * l2 * len(z) * (w @ w)) / n
        return f, {"w": (X[rows].T @ (p - y[rows]) + l2 * len(z) * w) / n}

    refs = [slice(k * per_batch, (k + 1) * per_batch) for k in range(N)]

    def full(w):
        f, g = f_df({"w": w}, slice(None))
        return f, g["w"]

    best = scipy.optimize.minimize(full, np.zeros(M), jac=True, method="L-BFGS-B",
                                   options={"maxiter": 100000, "ftol": 1e-16, "gtol": 1e-13})
    return f_df, {"w": np.zeros(M)}, refs, best.fun


PROBLEMS = {
    "logistic regression, M=100 parameters, N=50 minibatches of 100, l2=1e-2": (100, 50, 100, 1e-2),
    "logistic regression, M=1000, N=40 minibatches of 100, l2=1e-3": (1000, 40, 100, 1e-3),
}


def format_table(title, rows, num_passes, tolerance):
    lines = [f"### {title}", "",
             f"| method | effective passes to {tolerance:g} relative | relative error after {num_passes} passes "
             "| seconds | note |", "|---|---|---|---|---|"]
    for r in rows:
        passes = f"{r['passes']:.2f}" if np.isfinite(r["passes"]) else f"> {num_passes}"
        lines.append(f"| {r['method']} | {passes} | {r['final_error']:.2e} | {r['seconds']:.1f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=40, help="effective passes per optimizer run")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name} under benchmarks/results/")
    args = parser.parse_args(argv)
    out = ["# SFO against its peers: effective passes to the optimum", "",
           f"`python benchmarks/bench_sfo.py --passes {args.passes} --seed {args.seed}`; "
           "an effective pass is N minibatch gradients (one full-batch evaluation for L-BFGS-B). "
           "SGD and Adam report their best learning rate of the grid "
           f"(SGD {list(SGD_RATES)}, Adam {list(ADAM_RATES)}); the full objective is recorded every "
           "quarter pass (every evaluation for L-BFGS-B).", ""]
    for title, spec in PROBLEMS.items():
        f_df, theta0, refs, optimum = logistic_regression(*spec, seed=args.seed)
        rows = compare_optimizers(f_df, theta0, refs, optimum, num_passes=args.passes,
                                  tolerance=args.tolerance, seed=args.seed)
        table = format_table(title, rows, args.passes, args.tolerance)
        print(table, flush=True)
        out.append(table)
    if args.write:
        write_atomically(RESULTS, "\n".join(out))
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
