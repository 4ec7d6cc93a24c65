"""The cached, distributed grid of fits: one leave-one-subject-out fold (:func:`fit_and_score`) per configuration.

A *grid* is a list of fit configurations (dicts: dataset options, layers, held-out subject, lambda,
SFO settings). :func:`run_grid` runs :func:`fit_and_score` on each one, serially or on a
``dask.distributed`` cluster, and caches every result as ``<cache>/<sha1 of the config>.json`` (the
fitted readout beside it as ``.h5``), so an interrupted grid resumes and a finished one is read back.
Workers rebuild the dataset from the options in the config (:func:`~repro.experiments.setups.load_setup`),
once per process.
"""
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import crossvalidation, metrics, paths
from ..cluster import SCHEDULER_TIMEOUT, check_scheduler, dask_client, same_blas_threads
from ..crossvalidation import aggregate
from ..model import compile_readout
from ..training import train_model
from .setups import FULL, QUICK, _check_network, _load_setup, load_setup, setup_store

__all__ = ["NOT_IN_FITS", "NOT_IN_READOUT_FITS", "FIT_SOURCES", "SALIENCY_SOURCES", "fit_config", "saliency_config",
           "config_key", "release_prepared", "is_prepared", "prepared",
           "transfer_scores", "fit_and_score", "train_readout", "cached_result", "same_blas_threads", "GridResults",
           "run_grid", "feature_values", "estimate_seconds", "aggregate", "grid_runner", "SCHEDULER_TIMEOUT",
           "check_scheduler"]

log = logging.getLogger(__name__)

#: Modules of the package that take no part in a fit (command-line front ends, downloads, figures): changing them
#: keeps the cached fits.
NOT_IN_FITS = ("__main__.py", "predict.py", "interop.py", "download.py", "cluster.py", "experiments/results.py",
               "experiments/patches.py")
#: What an earlier saliency model's evaluation runs and a readout's fit does not: a new or changed model keeps the
#: readouts' cached fits.
NOT_IN_READOUT_FITS = ("saliency_models/", "saliency_maps.py", "evaluation.py", "experiments/comparison.py")
#: Part of every readout fit's cache key: the digest of the sources a fit runs (:func:`repro.paths.sources_digest`),
#: so that fits cached by other code are never reused.
FIT_SOURCES = paths.sources_digest(exclude=NOT_IN_FITS + NOT_IN_READOUT_FITS)
#: The same for an earlier model's evaluation (:func:`saliency_config`): all the sources but :data:`NOT_IN_FITS`.
SALIENCY_SOURCES = paths.sources_digest(exclude=NOT_IN_FITS)


def fit_config(setup, layers, subject, regularization=1e-3, network="alexnet", mit=False):
    """The configuration of one fit: dataset options, network and layers, held-out subject, lambda,
    SFO settings, and the digest of the sources that fit it (:data:`FIT_SOURCES`); with ``mit``, its scores include
    the MIT benchmark's (:func:`repro.crossvalidation.fold_scores`)."""
    _check_network(network)
    sfo = QUICK if setup.options["quick"] else FULL
    config = {"options": setup.options, "network": network, "layers": list(layers), "subject": int(subject),
              "regularization": float(regularization), "passes": sfo["passes"], "batches": sfo["batches"],
              "seed": setup.options["seed"], "sources": FIT_SOURCES}
    return {**config, "mit": True} if mit else config


def saliency_config(setup, name, parameters=None):
    """The configuration of one earlier saliency model's evaluation (:func:`repro.experiments.comparison.
    score_saliency_model`): dataset options, the model's name and parameters (default: its paper's), and
    :data:`SALIENCY_SOURCES`. The grid runs it beside the readouts' folds, cached alike."""
    from ..saliency_models import get_model
    model = get_model(name, parameters)
    return {"options": setup.options, "saliency_model": name, "parameters": model.parameters, "mit": True,
            "sources": SALIENCY_SOURCES}


def config_key(config):
    """SHA-1 of a configuration (its canonical JSON)."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _prepare(options_json, network, layers, progress=False):
    setup = _load_setup(options_json)
    return crossvalidation.prepare(setup_store(setup, network), setup.stimuli, setup.fixations, setup.train,
                                   setup.test, layers, setup.center_bias, setup.cb_ll, setup.gold_ll, progress=progress)


#: The one :class:`repro.crossvalidation.Prepared` a process holds, ``{key: Prepared}`` (see :func:`prepared`).
_PREPARED = {}


def release_prepared():
    """Forget the :class:`~repro.crossvalidation.Prepared` data this process holds (e.g. before its workers start)."""
    _PREPARED.clear()


def _prepared_key(setup, network, layers):
    return json.dumps(setup.options, sort_keys=True), network, tuple(layers)


def is_prepared(setup, network, layers):
    """Whether this process holds the :class:`~repro.crossvalidation.Prepared` data of these layers."""
    return _prepared_key(setup, network, layers) in _PREPARED


def prepared(setup, network, layers, progress=False):
    """The :class:`~repro.crossvalidation.Prepared` data of a readout of ``layers`` of ``network`` on ``setup`` (with ``progress``,
    progress bars while features are extracted or read).

    One is kept per process, and the previous one is released *before* the next is built, so that a worker
    moving on to another layer subset never holds both (with all 15 layers, each is several GB).
    """
    key = _prepared_key(setup, network, layers)
    if key not in _PREPARED:
        release_prepared()
        _PREPARED[key] = _prepare(*key, progress=progress)
    return _PREPARED[key]


def transfer_scores(models, setup, images, network="alexnet"):
    """Cross-validated scores of readouts trained elsewhere (e.g. on another dataset) on images of ``setup``.

    Each model is scored on all fixations of ``images`` with ``setup``'s own centre bias and gold standard;
    the scores are combined as :func:`aggregate` combines folds.

    Parameters
    ----------
    models : list of repro.model.DeepGazeI
        The fold models of one readout (all of the same layers).
    setup : Setup
        The dataset tested on.
    images : array_like of int
        Image indices of ``setup`` scored (its test half, or all images).
    network : str

    Returns
    -------
    dict
        ``explained``, ``ig_bits`` (bit/fix), ``auc`` (centre-bias prior), ``sauc`` (uniform prior), ``n_images``,
        ``n_fixations``.
    """
    fx = setup.fixations
    data = prepared(setup, network, models[0].layers)
    mask = np.isin(fx.n, images)
    scored = fx.filter(mask)
    sums, aucs, saucs = metrics.InformationSums(), [], []
    for model in models:
        ll, with_prior, flat = crossvalidation.score(model, data, len(fx))
        sums = sums + metrics.InformationSums.of(ll[mask], setup.cb_ll[mask], setup.gold_ll[mask])
        aucs.append(metrics.auc(with_prior, scored))
        saucs.append(metrics.shuffled_auc(flat, scored, setup.stimuli.sizes))
    return {"explained": sums.explained_information, "ig_bits": sums.information_gain, "auc": float(np.mean(aucs)),
            "sauc": float(np.mean(saucs)), "n_images": len(np.unique(fx.n[mask])), "n_fixations": int(mask.sum())}


def fit_and_score(config):
    """Fit one readout (of ``config['network']``, held-out subject ``config['subject']``) and score it.

    Returns
    -------
    result : dict
        :func:`repro.crossvalidation.fold_scores` (``'gains'`` of each role, AUCs, the fitted parameters), and
        ``'seconds'``: the whole call, ``'seconds_fit'``, ``'seconds_score'``: SFO and scoring alone;
        ``'seconds_prepare'``: the per-process preparation of these layers' data (:func:`prepared`), 0 when an
        earlier fold did it; ``'seconds_compile'``: compiling the readout's graphs, about 0 once the process has them.
    model : repro.model.DeepGazeI
    """
    start = time.perf_counter()
    setup = load_setup(config["options"])
    fx, layers, subject = setup.fixations, config["layers"], config["subject"]
    built = not is_prepared(setup, config["network"], layers)     # the first fold of these layers in this process
    data = prepared(setup, config["network"], layers)
    compiling = time.perf_counter()
    preparation = compiling - start if built else 0.0
    compile_readout(len(layers), compact=any(image.compact for image in data.train))   # apart from the fit
    fitting = time.perf_counter()
    model = crossvalidation.fold(data, fx, subject, layers, metadata={"config_key": config_key(config)},
                                 regularization=config["regularization"], n_batches=config["batches"],
                                 num_passes=config["passes"], seed=config["seed"])
    scoring = time.perf_counter()
    result = crossvalidation.fold_scores(model, data, fx, subject, mit=config.get("mit", False))
    end = time.perf_counter()
    result.update(seconds=end - start, seconds_fit=scoring - fitting, seconds_score=end - scoring,
                  seconds_prepare=preparation, seconds_compile=fitting - compiling)
    return result, model


def train_readout(setup, layers, network="alexnet", regularization=1e-3, progress=True):
    """The paper's readout of ``layers`` trained on all training images of ``setup`` with all subjects, and its
    scores on the test images (what ``python -m repro train`` runs).

    Returns
    -------
    model : repro.model.DeepGazeI
        Its metadata records the network (caffemodel SHA-1, prototxt, padding), the dataset and the split.
    scores : dict
        On the test images: ``ig_bits`` (over the centre bias, bit/fix), ``explained`` (fraction of the gold
        standard's gain), ``auc`` (centre-bias prior), ``sauc`` (uniform prior), ``n_fixations``.
    """
    sfo = QUICK if setup.options["quick"] else FULL
    fx, store = setup.fixations, setup_store(setup, network)
    data = prepared(setup, network, layers, progress=progress)
    names = setup.stimuli.ids
    metadata = {"network": {**store.extractor.metadata, "prototxt": Path(store.extractor.network.model.prototxt).name,
                            "name": store.extractor.network.model.name},
                "dataset": setup.label, "split": {"train": [names[int(n)] for n in setup.train],
                                                  "test": [names[int(n)] for n in setup.test]},
                "subjects": "all", "sfo": {"passes": sfo["passes"], "batches": sfo["batches"]}}
    model, _ = train_model(data.train, list(layers), data.geometry, regularization=regularization,
                           n_batches=sfo["batches"], num_passes=sfo["passes"], seed=setup.options["seed"],
                           scales=data.scales, progress=progress, metadata=metadata)
    ll, with_prior, flat = crossvalidation.score(model, data, len(fx))
    on_test = np.isin(fx.n, setup.test)
    sums = metrics.InformationSums.of(ll[on_test], setup.cb_ll[on_test], setup.gold_ll[on_test])
    return model, {"ig_bits": sums.information_gain, "explained": sums.explained_information,
                   "auc": metrics.auc(with_prior, fx.filter(on_test)),
                   "sauc": metrics.shuffled_auc(flat, fx.filter(on_test), setup.stimuli.sizes),
                   "n_fixations": sums.n}


def _fit_and_cache(config, folder):
    """Run :func:`fit_and_score` (or, for a :func:`saliency_config`, :func:`repro.experiments.comparison.
    score_saliency_model`) and write its result (and fitted readout) under ``folder``; return the result."""
    key = config_key(config)
    if "saliency_model" in config:
        from .comparison import score_saliency_model
        result = score_saliency_model(config)
    else:
        result, model = fit_and_score(config)
        model.save(folder / f"{key}.h5")
    with paths.atomic_path(folder / f"{key}.json") as tmp:
        Path(tmp).write_text(json.dumps({"config": config, "result": result}))
    return result


def cached_result(path, config):
    """The result stored in ``path`` for ``config``, or None (with a warning naming the file) if the file is
    damaged or holds the result of another configuration: the fit is then run again."""
    try:
        stored = json.loads(Path(path).read_text())
        result, found = stored["result"], stored["config"]
    except (ValueError, KeyError, TypeError) as err:
        log.warning("%s: damaged cached result (%s: %s); fitting again", path, type(err).__name__, err)
        return None
    if found != json.loads(json.dumps(config)):
        log.warning("%s: holds the result of another configuration than its name says; fitting again", path)
        return None
    return result


class GridResults(list):
    """The results of a grid (a list, in the order of its configurations) and what running it took.

    Attributes
    ----------
    computed : int
        Fits run by this call (the others were read from the cache).
    """

    def __init__(self, results, computed):
        super().__init__(results)
        self.computed = computed


def run_grid(configs, folder=None, workers=0, scheduler=None, progress=True):
    """Results of :func:`fit_and_score` for every configuration, cached, serially or with dask.

    Parameters
    ----------
    configs : list of dict
        From :func:`fit_config` or :func:`saliency_config`.
    folder : str or Path, optional
        Cache folder (default ``cache_dir('experiments')``); each result is ``<config key>.json``.
    workers : int
        Number of local dask workers (each one process, one thread); 0 runs in this process.
    scheduler : str, optional
        Address of a running dask scheduler (wins over ``workers``). It must answer, and have a worker, within
        :data:`SCHEDULER_TIMEOUT` seconds.
    progress : bool

    Returns
    -------
    GridResults
        A list of dicts, in the order of ``configs``.

    Raises
    ------
    ValueError
        ``workers`` is not a whole number >= 0.
    ConnectionError, TimeoutError
        No scheduler answers at ``scheduler``, or no worker is there, within :data:`SCHEDULER_TIMEOUT`.
    """
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be a whole number >= 0 (0: run in this process), got {workers!r}")
    folder = Path(folder) if folder else paths.cache_dir("experiments")
    folder.mkdir(parents=True, exist_ok=True)
    keys = [config_key(c) for c in configs]
    results = {}
    for key, config in zip(keys, configs):
        if key not in results and (folder / f"{key}.json").is_file():
            found = cached_result(folder / f"{key}.json", config)
            if found is not None:
                results[key] = found
    todo = {key: config for key, config in zip(keys, configs) if key not in results}
    if todo and scheduler:
        check_scheduler(scheduler)                   # before anything is shown or started
    bar = tqdm(total=len(set(keys)), initial=len(results), desc="grid fits", disable=not progress)
    if todo and (workers or scheduler):
        from dask.distributed import as_completed

        # a worker holds one layer subset's data for all its folds (several GB with many layers), which dask
        # counts as unmanaged memory: its default pause at 80 % of the limit would stop every worker for good
        unbounded = {"distributed.worker.memory.pause": False, "distributed.worker.memory.target": False,
                     "distributed.worker.memory.spill": False}
        with dask_client(workers, scheduler, config=unbounded) as client:
            futures = {client.submit(_fit_and_cache, config, folder, key=f"fit-{key}", pure=False): key
                       for key, config in todo.items()}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    else:
        for key, config in todo.items():
            results[key] = _fit_and_cache(config, folder)
            bar.update()
    bar.close()
    return GridResults([results[key] for key in keys], len(todo))


def feature_values(setup, layers, network="alexnet"):
    """Feature values per image of ``layers`` (``sum C_l h_l w_l`` on the first training image): what the cost
    of a fit grows with."""
    return sum(m.size for m in setup_store(setup, network).features(setup.stimuli[int(setup.train[0])], layers))


def estimate_seconds(sizes, calibration, workers=1):
    """Estimated wall time of a grid from measured fits, interpolated linearly in the fits' size.

    Parameters
    ----------
    sizes : dict
        ``{layer subset: (feature values per image, number of folds)}``.
    calibration : dict
        ``{feature values per image: fit_and_score result}`` of fits measured alone (at least two
        sizes; the smallest and the largest are used); a result gives ``seconds_fit + seconds_score``
        per fold, ``seconds_prepare`` and ``seconds_compile``.
    workers : int
        Parallel processes; each prepares the data of every layer subset it fits once, and compiles
        what the calibration fits compiled once.

    Returns
    -------
    float
        Seconds.
    """
    known = sorted(calibration)
    if len(known) < 2:
        raise ValueError("estimating a grid needs fits of at least two sizes")
    small, large = known[0], known[-1]

    def at(size, parts):
        """Seconds of ``parts`` for a fit of ``size``: linear through the smallest and largest fit, at least the smallest's."""
        low, high = (sum(calibration[k][part] for part in parts) for k in (small, large))
        return max(low, low + (high - low) * (size - small) / (large - small))

    workers = max(1, workers)
    total = sum(folds * at(size, ("seconds_fit", "seconds_score")) + min(workers, folds) * at(size, ("seconds_prepare",))
                for size, folds in sizes.values())
    return total / workers + sum(result.get("seconds_compile", 0.0) for result in calibration.values())


def grid_runner(args):
    """``run_grid`` with the script's ``--cache``, ``--workers`` and ``--scheduler``."""
    return lambda configs: run_grid(configs, args.cache, workers=args.workers, scheduler=args.scheduler)
