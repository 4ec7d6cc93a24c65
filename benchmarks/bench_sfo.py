"""Effective passes through the data that SFO and its peers need to reach an optimum.

The paper's claim (Sohl-Dickstein et al. 2014): SFO needs fewer effective
passes than full-batch L-BFGS, minibatch SGD with a tuned learning rate, and
Adam-like methods. An effective pass is N subfunction (minibatch) gradient
evaluations; a full-batch evaluation is one pass.

``compare_optimizers(f_df, theta0, refs, optimum)`` runs all of them on any
sum-of-subfunctions objective. ``main`` runs it on L2-regularised logistic
regression and, with ``--readout``, on the DeepGaze I readout cost
(``repro.training.objective``) of conv5 features of OSIE training images,
and prints (or writes) a markdown table. The readout of a few images has no
finite optimum (``|w|`` grows as it overfits), so there the "optimum" is the
lowest value any method reached, including a long full-batch L-BFGS-B run.

    python benchmarks/bench_sfo.py [--passes 40] [--write]
    DEEPGAZE_DATA=... python benchmarks/bench_sfo.py --readout [--images 40] [--write]
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
#: The readout costs ~2 s per pass: a smaller grid (each rate is a full run).
READOUT_SGD_RATES = (3e-2, 1e-1, 3e-1)
READOUT_ADAM_RATES = (3e-3, 1e-2, 3e-2)
READOUT_SECTION = "## DeepGaze I readout (real data)"


class Trace:
    """The full objective against effective passes for one optimizer run.

    ``optimum`` may be set after the run (e.g. to the best value any run reached).
    """

    def __init__(self, objective, optimum=None):
        self.objective, self.optimum = objective, optimum
        self.passes, self.values = [], []

    def record(self, passes, theta_flat, value=None):
        """Record the objective at ``theta_flat`` (``value`` if already known)."""
        value = self.objective(theta_flat) if value is None else value
        self.passes.append(passes)
        self.values.append(value if np.isfinite(value) else np.inf)

    @property
    def errors(self):
        """Relative errors ``(value - optimum) / |optimum|``, one per record."""
        return [(v - self.optimum) / abs(self.optimum) for v in self.values]

    def passes_to(self, tolerance):
        """The first recorded effective pass with relative error <= tolerance, or inf."""
        hits = [p for p, e in zip(self.passes, self.errors) if e <= tolerance]
        return hits[0] if hits else np.inf

    def error_after(self, passes):
        """The relative error of the last record at or before ``passes`` effective passes."""
        errors = [e for p, e in zip(self.passes, self.errors) if p <= passes]
        return errors[-1] if errors else np.inf


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
        trace.record(float(count[0]), x, f)
        return f, g

    scipy.optimize.minimize(full, layout.flatten(theta0), jac=True, method="L-BFGS-B",
                            options={"maxfun": int(num_passes), "maxiter": int(num_passes),
                                     "ftol": 1e-15, "gtol": 1e-12})
    return ""


def minibatch_run(f_df, theta0, refs, trace, num_passes, seed, update, checkpoint=0.25):
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
            if (k + 1) % max(int(N * checkpoint), 1) == 0:
                trace.record(p + (k + 1) / N, x)


def best_of_rates(method, rates, f_df, theta0, refs, objective, optimum, num_passes, seed, tolerance,
                  checkpoint=0.25):
    """Run ``method`` at every rate; keep the trace that reaches the tolerance first
    (or, failing that or without a known ``optimum``, ends lowest)."""
    best = None
    for rate in rates:
        trace = Trace(objective, optimum)
        minibatch_run(f_df, theta0, refs, trace, num_passes, seed, method(rate), checkpoint)
        reached = trace.passes_to(tolerance) if optimum is not None else np.inf
        key = (reached, trace.values[-1])
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


def compare_optimizers(f_df, theta0, refs, optimum=None, *, num_passes=40, tolerance=1e-4, seed=0,
                       checkpoint=0.25, lbfgs_passes=None, sgd_rates=SGD_RATES, adam_rates=ADAM_RATES):
    """Effective passes each optimizer needs to get within ``tolerance`` of ``optimum``.

    Parameters
    ----------
    f_df : callable
        ``f_df(theta, ref) -> (f, df)`` as for :class:`repro.sfo.SFO`.
    theta0 : ndarray or dict/list of ndarray
        Start for every optimizer.
    refs : list
        Subfunction references (minibatches).
    optimum : float, optional
        The minimal value of ``sum_ref f(theta, ref)``; if None, the lowest
        value any run reached.
    checkpoint : float
        Effective passes between records of the full objective (SFO, SGD, Adam).
    lbfgs_passes : int, optional
        Run L-BFGS-B this long (default ``num_passes``); its row still reports
        the error after ``num_passes``.

    Returns
    -------
    rows : list of dict
        One row per optimizer: ``method``, ``passes`` (inf if never reached),
        ``final_error`` (relative, after ``num_passes``), ``seconds``, ``note``, ``trace``.
    optimum : float
    """
    layout = ParameterLayout(theta0)

    def objective(x):
        theta = layout.unflatten(x)
        return sum(float(f_df(theta, ref)[0]) for ref in refs)

    rows = []
    runs = [("SFO", lambda tr: run_sfo(f_df, theta0, refs, tr, num_passes, seed, checkpoint)),
            ("L-BFGS-B, full batch", lambda tr: run_lbfgs(f_df, theta0, refs, tr, lbfgs_passes or num_passes,
                                                          seed)),
            ("SGD", None), ("Adam", None)]
    for name, run in runs:
        start = time.perf_counter()
        if run is not None:
            trace = Trace(objective, optimum)
            note = run(trace)
        else:
            method, rates = (sgd, sgd_rates) if name == "SGD" else (adam, adam_rates)
            trace, note = best_of_rates(method, rates, f_df, theta0, refs, objective, optimum,
                                        num_passes, seed, tolerance, checkpoint)
        rows.append({"method": name, "seconds": time.perf_counter() - start, "note": note, "trace": trace})
    if optimum is None:
        optimum = min(min(r["trace"].values) for r in rows)
    for r in rows:
        r["trace"].optimum = optimum
        r["passes"] = r["trace"].passes_to(tolerance)
        r["final_error"] = r["trace"].error_after(num_passes)
    return rows, optimum


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


def readout_problem(n_images=40, n_batches=10, seed=0):
    """The DeepGaze I readout cost on conv5 features of the first ``n_images`` OSIE training images.

    Fixations of all subjects but the first fold's; ``w`` starts small and random,
    ``sigma = 2``, ``alpha = 1``. Needs the data (DEEPGAZE_DATA); conv5 features
    are computed once and cached.

    Returns
    -------
    f_df, theta0, refs : as for :func:`compare_optimizers`
    title : str
    """
    from repro import experiments
    from repro.model import DeepGazeI
    from repro.training import minibatches, objective, prepare_images

    args = experiments.parser("bench_sfo").parse_args(["--dataset", "osie", "--seed", str(seed)])
    setup = experiments.load_setup(experiments.options_of(args))
    fixations, images = setup.fixations, setup.train[:n_images]
    selected = np.isin(fixations.n, images) & (fixations.subject != setup.folds[0])
    data = prepare_images(setup.store, setup.stimuli, fixations.filter(selected), ["conv5"],
                          setup.center_bias, images=images, progress=True)
    channels = data[0].features[0].shape[0]
    w = np.random.RandomState(seed).randn(channels) * 0.5 / np.sqrt(channels)
    scales = setup.store.feature_scales([setup.stimuli[int(n)] for n in images], ["conv5"])
    model = DeepGazeI(["conv5"], [channels], scales, setup.store.extractor.geometry(["conv5"]), w=w, sigma=2.0,
                      alpha=1.0)
    batches = minibatches(len(data), n_batches, seed)
    title = (f"DeepGaze I readout, OSIE conv5, {len(data)} training images, N={len(batches)} minibatches, "
             f"M={channels + 2} parameters")
    return objective(model, data, batches), model.parameters, list(range(len(batches))), title


def format_table(title, rows, num_passes, tolerances, optimum_note=""):
    head = " | ".join(f"effective passes to {t:g} relative" for t in tolerances)
    lines = [f"### {title}", ""] + ([optimum_note, ""] if optimum_note else []) + [
        f"| method | {head} | relative error after {num_passes} passes | seconds | note |",
        "|---|" + "---|" * len(tolerances) + "---|---|---|"]
    for r in rows:
        reached = [r["trace"].passes_to(t) for t in tolerances]
        cells = " | ".join(f"{p:.2f}" if np.isfinite(p) else f"> {num_passes}" for p in reached)
        lines.append(f"| {r['method']} | {cells} | {r['final_error']:.2e} | {r['seconds']:.1f} | {r['note']} |")
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, help="effective passes per optimizer run "
                                                   "(default 40; 25 with --readout)")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readout", action="store_true",
                        help="the DeepGaze I readout on OSIE conv5 features instead of logistic regression")
    parser.add_argument("--images", type=int, default=40, help="training images of the readout")
    parser.add_argument("--batches", type=int, default=10, help="minibatches of the readout")
    parser.add_argument("--lbfgs-passes", type=int, default=100,
                        help="length of the L-BFGS-B run that helps to define the readout's optimum")
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name} under benchmarks/results/ "
                        "(the readout table replaces its own section only)")
    args = parser.parse_args(argv)
    passes = args.passes or (25 if args.readout else 40)
    if args.readout:
        f_df, theta0, refs, title = readout_problem(args.images, args.batches, args.seed)
        rows, optimum = compare_optimizers(f_df, theta0, refs, None, num_passes=passes, tolerance=args.tolerance,
                                           seed=args.seed, checkpoint=1.0, lbfgs_passes=args.lbfgs_passes,
                                           sgd_rates=READOUT_SGD_RATES, adam_rates=READOUT_ADAM_RATES)
        note = (f"`python benchmarks/bench_sfo.py --readout --images {args.images} --batches {args.batches} "
                f"--passes {passes} --lbfgs-passes {args.lbfgs_passes} --seed {args.seed}`. "
                f"No finite optimum (|w| grows as the readout overfits): \"optimum\" = {optimum:.6f}, the lowest "
                f"value any method reached, L-BFGS-B running {args.lbfgs_passes} evaluations. Objective recorded "
                f"every pass; SGD rates {list(READOUT_SGD_RATES)}, Adam rates {list(READOUT_ADAM_RATES)}.")
        table = format_table(title, rows, passes, (1e-3, 1e-4), note)
        print(table, flush=True)
        if args.write:
            write_section(RESULTS, READOUT_SECTION, table)
            print(f"wrote {RESULTS}")
        return
    out = ["# SFO against its peers: effective passes to the optimum", "",
           f"`python benchmarks/bench_sfo.py --passes {passes} --seed {args.seed}`; "
           "an effective pass is N minibatch gradients (one full-batch evaluation for L-BFGS-B). "
           "SGD and Adam report their best learning rate of the grid "
           f"(SGD {list(SGD_RATES)}, Adam {list(ADAM_RATES)}); the full objective is recorded every "
           "quarter pass (every evaluation for L-BFGS-B).", ""]
    for title, spec in PROBLEMS.items():
        f_df, theta0, refs, optimum = logistic_regression(*spec, seed=args.seed)
        rows, _ = compare_optimizers(f_df, theta0, refs, optimum, num_passes=passes,
                                     tolerance=args.tolerance, seed=args.seed)
        table = format_table(title, rows, passes, (args.tolerance,))
        print(table, flush=True)
        out.append(table)
    if args.write:
        old = RESULTS.read_text() if RESULTS.exists() else ""
        kept = old[old.index(READOUT_SECTION):] if READOUT_SECTION in old else ""
        write_atomically(RESULTS, "\n".join(out) + ("\n" + kept if kept else ""))
        print(f"wrote {RESULTS}")


def write_section(path, heading, table):
    """Replace (or append) the part of ``path`` from ``heading`` on with ``heading`` and ``table``."""
    old = path.read_text() if path.exists() else ""
    kept = old[:old.index(heading)] if heading in old else old
    write_atomically(path, kept.rstrip("\n") + "\n\n" + heading + "\n\n" + table)


if __name__ == "__main__":
    main()
