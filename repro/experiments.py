"""What the scripts in ``experiments/`` share: options, datasets, the cached and distributed grid of fits, results.

A *grid* is a list of fit configurations (dicts: dataset options, layers, held-out subject, lambda,
SFO settings). :func:`run_grid` runs :func:`fit_and_score` on each one, serially or on a
``dask.distributed`` cluster, and caches every result as ``<cache>/<sha1 of the config>.json`` (the
fitted readout beside it as ``.h5``), so an interrupted grid resumes and a finished one is read back.
Workers rebuild the dataset from the options in the config (:func:`load_setup`), once per process.
"""
import argparse
import csv
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import crossvalidation, metrics, paths
from .centerbias import fit_center_bias
from .datasets import DATASET_FOLDERS, DATASETS, dataset_folder
from .demo import demo_dataset, random_alexnet
from .features import FeatureExtractor, FeatureStore
from .goldstandard import fit_gold_standard
from .model import compile_readout
from .network import Network
from .training import train_model

log = logging.getLogger(__name__)

#: The paper's published numbers (MIT1003 explained information; MIT300 benchmark AUCs).
PAPER = {"explained_eDN": 0.34, "explained_DeepGazeI": 0.56, "auc_mit300": 0.8440, "sauc_mit300": 0.7169}
#: Quick configuration: images per split, held-out subjects, SFO passes.
QUICK = {"images": 3, "folds": 1, "passes": 12, "batches": 3}
FULL = {"passes": 20, "batches": 10}
#: Part of every fit's cache key: raise it whenever a change to features, model, training or SFO
#: changes fitted results, so that cached fits from older code are not reused.
FIT_VERSION = 4
#: Where ``--publish`` writes a script's results (committed, one folder per dataset).
PUBLISHED_RESULTS = paths.PROJECT_ROOT / "experiments" / "results"
#: The networks a readout can read (``fit_config(..., network=...)``).
NETWORKS = ("alexnet", "googlenet")
#: The GoogLeNet layer of the readout beside AlexNet's conv5 (see :func:`googlenet`).
GOOGLENET_LAYER = "inception_4e/output"


# ------------------------------------------------------------------------------------ options
def parser(description):
    """An argument parser with the options every experiment script takes."""
    p = argparse.ArgumentParser(description=description)
    on_disk = list(DATASET_FOLDERS)
    p.add_argument("--dataset", choices=list(DATASETS), default="demo",
                   help=f"demo (embedded, no download), {', '.join(on_disk[:-1])} or {on_disk[-1]} (under --data-dir)")
    p.add_argument("--data-dir", help="data directory (default: DEEPGAZE_DATA)")
    p.add_argument("--weights", help="folder with AlexNet's deploy.prototxt and *.caffemodel "
                                     "(default: <data-dir>/weights/bvlc_alexnet if present)")
    p.add_argument("--quick", action="store_true", help="small, fast configuration (CI)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="local dask workers (0: run serially)")
    p.add_argument("--scheduler", help="address of an existing dask scheduler")
    p.add_argument("--out", default=str(paths.PROJECT_ROOT / "results"), help="results folder")
    p.add_argument("--publish", action="store_true",
                   help="write PNG, CSV and JSON to experiments/results/<dataset>/ (the committed results) "
                        "instead of --out; full configurations only")
    p.add_argument("--cache", help="cache of grid results (default: <cache>/experiments)")
    return p


def options_of(args):
    """The options that determine the dataset and network, as a plain (JSON-able) dict."""
    data = paths.data_dir(args.data_dir, required=args.dataset in DATASET_FOLDERS or args.weights is not None)
    if data is None and args.data_dir is None:
        data = paths.data_dir(None, required=False)
    if args.weights:
        weights = Path(args.weights)
        if not (weights / "deploy.prototxt").is_file():
            raise FileNotFoundError(f"--weights {weights}: no deploy.prototxt there")
    else:       # the data directory's AlexNet, else the one 'python -m repro download bvlc_alexnet' fetched
        candidates = ([data / "weights" / "bvlc_alexnet"] if data else []) + [paths.weights_dir() / "bvlc_alexnet"]
        weights = next((c for c in candidates if (c / "deploy.prototxt").is_file()), None)
    return {"dataset": args.dataset, "data_dir": str(data) if data else None,
            "weights": str(weights.resolve()) if weights else None, "quick": bool(args.quick), "seed": args.seed}


# ------------------------------------------------------------------------------------ datasets
@dataclass
class Setup:
    """A dataset ready for the experiments.

    Attributes
    ----------
    options : dict
    stimuli, fixations : repro.datasets.Stimuli, Fixations
    train, test : ndarray of int
        Image indices of the two halves.
    folds : list of int
        Subjects held out in the cross-validation.
    store : repro.features.FeatureStore
        AlexNet's features (the paper's network).
    network_note : str
        Which weights AlexNet has.
    label : str
        Title line naming the data (the demonstration label for ``demo``).
    center_bias : repro.centerbias.CenterBias
    cb_ll, gold_ll : ndarray, shape (n_fixations,)
        Leave-one-image-out centre bias and gold standard log-likelihoods (nats).
    planted : repro.model.DeepGazeI or None
        The model that generated the demonstration fixations.
    stores, notes : dict
        Feature store and weights note of each network used so far, by name (see :func:`setup_store`).
    """
    options: dict
    stimuli: object
    fixations: object
    train: np.ndarray
    test: np.ndarray
    folds: list
    store: object
    network_note: str
    label: str
    center_bias: object
    cb_ll: np.ndarray
    gold_ll: np.ndarray
    planted: object = None
    stores: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.stores.setdefault("alexnet", self.store)
        self.notes.setdefault("alexnet", self.network_note)


def alexnet(options):
    """AlexNet in ``full`` padding: the real weights if ``options['weights']`` names them, else random."""
    if options["weights"]:
        folder = Path(options["weights"])
        models = sorted(folder.glob("*.caffemodel"))
        if not models:
            raise FileNotFoundError(f"no .caffemodel in {folder}")
        return Network(folder / "deploy.prototxt", models[-1], padding="full", last_layer="pool5"), \
            f"AlexNet, weights {models[-1].name}"
    return random_alexnet(options["seed"]), "AlexNet architecture with deterministic RANDOM weights (no pretrained weights found)"


def googlenet_weights(options):
    """``<data>/weights/bvlc_googlenet`` if it holds ``deploy.prototxt`` and ``bvlc_googlenet.caffemodel``, else None."""
    if not options["data_dir"]:
        return None
    folder = Path(options["data_dir"]) / "weights" / "bvlc_googlenet"
    found = all((folder / name).is_file() for name in ("deploy.prototxt", "bvlc_googlenet.caffemodel"))
    return folder if found else None


def googlenet(options):
    """BVLC GoogLeNet (Szegedy et al. 2015) up to :data:`GOOGLENET_LAYER`, with the prototxt's (``caffe``) padding.

    The paper's proposed next step is a readout of a better ImageNet network. Its layer here,
    ``inception_4e/output``, is GoogLeNet's deepest layer at the stride of AlexNet's conv5 (16 network
    pixels, 32 image pixels after the initial downsampling by 2): 832 features on an 18 x 25 grid for
    OSIE's 800 x 600 images (400 x 300 network input). The layers above it (``pool4``, ``inception_5*``)
    halve that resolution to 9 x 12. Its theoretical receptive field (427 network pixels) is larger
    than that input; as in every deep network, the effective one is much smaller.

    Padding is ``'caffe'``, not the paper's ``'full'``: in ``'full'`` mode the branches of an inception
    module (1x1, 3x3 and 5x5 convolutions, 3x3 pooling) grow by 0, 2 and 4 pixels and can no longer be
    concatenated (:class:`repro.network.Network` refuses such a Concat).

    Returns
    -------
    network : repro.network.Network
    note : str
        Which weights and layer it uses.

    Raises
    ------
    FileNotFoundError
        When :func:`googlenet_weights` finds no weights (no random stand-in: the readout of a random
        GoogLeNet would say nothing about GoogLeNet).
    """
    folder = googlenet_weights(options)
    if folder is None:
        raise FileNotFoundError(f"no GoogLeNet weights (deploy.prototxt, bvlc_googlenet.caffemodel) under "
                                f"<data>/weights/bvlc_googlenet (data: {options['data_dir']})")
    network = Network(folder / "deploy.prototxt", folder / "bvlc_googlenet.caffemodel", padding="caffe",
                      last_layer=GOOGLENET_LAYER)
    return network, f"GoogLeNet, weights bvlc_googlenet.caffemodel, caffe padding, layer {GOOGLENET_LAYER}"


def _check_network(network):
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r} (known: {', '.join(NETWORKS)})")


def setup_store(setup, network="alexnet"):
    """The feature store of ``network`` (one of :data:`NETWORKS`) for ``setup``, built on first use.

    ``'alexnet'`` is ``setup.store``; ``'googlenet'`` is :func:`googlenet` (its features get their own
    cache folder: the extractor's cache key includes weights, prototxt and padding). The weights note
    goes to ``setup.notes[network]``.
    """
    _check_network(network)
    if network not in setup.stores:
        net, setup.notes[network] = googlenet(setup.options)
        setup.stores[network] = FeatureStore(FeatureExtractor(net))
    return setup.stores[network]


def _subset(stimuli, fixations, train, test, n):
    """The first ``n`` images of each half (quick mode), renumbered."""
    keep = np.concatenate([train[:n], test[:n]])
    return stimuli.subset(keep), fixations.remap_images(keep), np.arange(len(train[:n])), \
        np.arange(len(train[:n]), len(keep))


@lru_cache(maxsize=4)
def _load_setup(options_json):
    options = json.loads(options_json)
    network, note = alexnet(options)
    store = FeatureStore(FeatureExtractor(network))
    spec, planted = DATASETS[options["dataset"]], None
    if spec.load is None:                                # the demonstration data, made from the network
        stimuli, fixations, planted = demo_dataset(store, n_subjects=4 if options["quick"] else 6, seed=options["seed"])
        label = spec.label
    else:
        folder = dataset_folder(spec.name, paths.data_dir(options["data_dir"]))
        stimuli, fixations = spec.load(folder, keep_first=False)
        label = f"{spec.label_of(folder)}, first fixation dropped"
    train, test = spec.split(stimuli)
    if options["quick"]:
        stimuli, fixations, train, test = _subset(stimuli, fixations, train, test, QUICK["images"])
        label += " [quick]"
    if options.get("images"):                            # python -m repro train --images N
        stimuli, fixations, train, test = _subset(stimuli, fixations, train, test, options["images"])
        label += f" [first {options['images']} images of each half]"
    subjects = list(fixations.subjects)
    folds = subjects[:QUICK["folds"]] if options["quick"] else subjects
    center_bias = fit_center_bias(stimuli.sizes, fixations, frame=spec.center_bias_frame)
    cb_ll = center_bias.log_likelihoods()
    gold_ll = fit_gold_standard(stimuli.sizes, fixations, center_bias).log_likelihoods(cb_ll)
    return Setup(options, stimuli, fixations, np.asarray(train), np.asarray(test), [int(s) for s in folds], store,
                 note, label, center_bias, cb_ll, gold_ll, planted)


def load_setup(options):
    """The :class:`Setup` of ``options`` (see :func:`options_of`), built once per process."""
    return _load_setup(json.dumps(options, sort_keys=True))


# ------------------------------------------------------------------------------------ one fit
def fit_config(setup, layers, subject, regularization=1e-3, network="alexnet"):
    """The configuration of one fit: dataset options, network and layers, held-out subject, lambda,
    SFO settings."""
    _check_network(network)
    sfo = QUICK if setup.options["quick"] else FULL
    return {"options": setup.options, "network": network, "layers": list(layers), "subject": int(subject),
            "regularization": float(regularization), "passes": sfo["passes"], "batches": sfo["batches"],
            "seed": setup.options["seed"], "version": FIT_VERSION}


def config_key(config):
    """SHA-1 of a configuration (its canonical JSON)."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _prepare(options_json, network, layers, progress=False):
    setup = _load_setup(options_json)
    return crossvalidation.prepare(setup_store(setup, network), setup.stimuli, setup.fixations, setup.train,
                                   setup.test, layers, setup.center_bias, progress=progress)


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


def _sums(ll, baseline, gold, mask):
    return {"model": float(np.sum(ll[mask] - baseline[mask])), "gold": float(np.sum(gold[mask] - baseline[mask])),
            "n": int(mask.sum())}


def score_images(model, setup, data):
    """A readout's log-likelihoods and pixel log-densities on the prepared images of ``setup``
    (:func:`repro.crossvalidation.score` of all its fixations)."""
    return crossvalidation.score(model, data, len(setup.fixations))


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
        ``explained``, ``ig`` (bit/fix), ``auc`` (centre-bias prior), ``sauc`` (uniform prior), ``n_images``,
        ``n_fixations``.
    """
    fx = setup.fixations
    data = prepared(setup, network, models[0].layers)
    mask = np.isin(fx.n, images)
    scored = fx.filter(mask)
    sums, aucs, saucs = [], [], []
    for model in models:
        ll, with_prior, flat = score_images(model, setup, data)
        sums.append(_sums(ll, setup.cb_ll, setup.gold_ll, mask))
        aucs.append(metrics.auc(with_prior, scored))
        saucs.append(metrics.shuffled_auc(flat, scored, setup.stimuli.sizes))
    model_gain, gold_gain, n = (sum(s[key] for s in sums) for key in ("model", "gold", "n"))
    return {"explained": model_gain / gold_gain, "ig": model_gain / n / np.log(2), "auc": float(np.mean(aucs)),
            "sauc": float(np.mean(saucs)), "n_images": len(np.unique(fx.n[mask])), "n_fixations": int(mask.sum())}


def fit_and_score(config):
    """Fit one readout (of ``config['network']``, held-out subject ``config['subject']``) and score it.

    Returns
    -------
    result : dict
        ``'ig'``: for ``'test_subjects'`` (held-out subject, training images), ``'train_subjects'``
        (the others, training images) and ``'test_images'``: summed log-likelihood gains over the
        centre bias of the model (``'model'``) and the gold standard (``'gold'``) in nats, and the count
        ``'n'``; ``'sauc_train'``, ``'sauc_test'``: shuffled AUC with a uniform prior on training /
        test images; ``'auc_test'``: AUC with the centre-bias prior on test images;
        ``'w'``, ``'sigma'``, ``'alpha'``: the fitted readout; ``'seconds'``: the whole call,
        ``'seconds_fit'``, ``'seconds_score'``: SFO and scoring alone; ``'seconds_prepare'``: the
        per-process preparation of these layers' data (:func:`prepared`), 0 when an earlier fold did it;
        ``'seconds_compile'``: compiling the readout's graphs, about 0 once the process has them.
    model : repro.model.DeepGazeI
    """
    start = time.perf_counter()
    setup = load_setup(config["options"])
    fx, layers, subject = setup.fixations, config["layers"], config["subject"]
    built = not is_prepared(setup, config["network"], layers)     # the first fold of these layers in this process
    data = prepared(setup, config["network"], layers)
    compiling = time.perf_counter()
    preparation = compiling - start if built else 0.0
    compile_readout(len(layers))                             # timed apart from the fit (once per process)
    fitting = time.perf_counter()
    model = crossvalidation.fold(data, fx, subject, layers, metadata={"config_key": config_key(config)},
                                 regularization=config["regularization"], n_batches=config["batches"],
                                 num_passes=config["passes"], seed=config["seed"])
    scoring = time.perf_counter()
    ll, with_prior, flat = score_images(model, setup, data)
    on_train, on_test = np.isin(fx.n, setup.train), np.isin(fx.n, setup.test)
    masks = crossvalidation.roles(fx, subject, setup.train, setup.test)
    result = {"ig": {key: _sums(ll, setup.cb_ll, setup.gold_ll, mask) for key, mask in masks.items()},
              "sauc_train": metrics.shuffled_auc(flat, fx.filter(on_train), setup.stimuli.sizes),
              "sauc_test": metrics.shuffled_auc(flat, fx.filter(on_test), setup.stimuli.sizes),
              "auc_test": metrics.auc(with_prior, fx.filter(on_test)),
              "w": model.w.tolist(), "sigma": model.sigma, "alpha": model.alpha}
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
    ll, with_prior, flat = score_images(model, setup, data)
    on_test = np.isin(fx.n, setup.test)
    sums = _sums(ll, setup.cb_ll, setup.gold_ll, on_test)
    return model, {"ig_bits": sums["model"] / sums["n"] / np.log(2), "explained": sums["model"] / sums["gold"],
                   "auc": metrics.auc(with_prior, fx.filter(on_test)),
                   "sauc": metrics.shuffled_auc(flat, fx.filter(on_test), setup.stimuli.sizes),
                   "n_fixations": sums["n"]}


def _fit_and_cache(config, folder):
    """Run :func:`fit_and_score` and write its result and model under ``folder``; return the result."""
    key = config_key(config)
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


BLAS_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def same_blas_threads():
    """Dask's worker environment, but with this process's BLAS thread settings.

    Dask limits workers to one BLAS thread by default. SFO fits are sensitive to the last bits of
    float64 sums, which depend on the number of BLAS threads, so local workers inherit this process's
    settings instead: a distributed grid then gives exactly the serial results.
    """
    import dask

    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items() if k not in BLAS_THREADS}
    environ.update({k: os.environ[k] for k in BLAS_THREADS if k in os.environ})
    return environ


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
        From :func:`fit_config`.
    folder : str or Path, optional
        Cache folder (default ``cache_dir('experiments')``); each result is ``<config key>.json``.
    workers : int
        Number of local dask workers (each one process, one thread); 0 runs in this process.
    scheduler : str, optional
        Address of a running dask scheduler (wins over ``workers``).
    progress : bool

    Returns
    -------
    GridResults
        A list of dicts, in the order of ``configs``.
    """
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
    bar = tqdm(total=len(set(keys)), initial=len(results), desc="grid fits", disable=not progress)
    if todo and (workers or scheduler):
        import dask
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if not scheduler:
            # a worker holds one layer subset's data for all its folds (several GB with many layers), which dask
            # counts as unmanaged memory: its default pause at 80 % of the limit would stop every worker for good
            with dask.config.set({"distributed.nanny.pre-spawn-environ": same_blas_threads(),
                                  "distributed.worker.memory.pause": False,
                                  "distributed.worker.memory.target": False,
                                  "distributed.worker.memory.spill": False}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
        with Client(scheduler or cluster) as client:
            futures = {client.submit(_fit_and_cache, config, folder, key=f"fit-{key}", pure=False): key
                       for key, config in todo.items()}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        if cluster is not None:
            cluster.close()
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


def aggregate(results):
    """Cross-validated scores of the folds of one model (a list of :func:`fit_and_score` results).

    Returns
    -------
    dict
        ``explained_<part>`` (fraction of the gold standard's gain) and ``ig_<part>`` (bit/fix) for
        ``test_subjects``, ``train_subjects``, ``test_images``; fold means of ``sauc_train``,
        ``sauc_test``, ``auc_test``.
    """
    out = {}
    for part in ("test_subjects", "train_subjects", "test_images"):
        model = sum(r["ig"][part]["model"] for r in results)
        gold = sum(r["ig"][part]["gold"] for r in results)
        n = sum(r["ig"][part]["n"] for r in results)
        out[f"explained_{part}"] = model / gold if gold else float("nan")
        out[f"ig_{part}"] = model / n / np.log(2) if n else float("nan")
    for key in ("sauc_train", "sauc_test", "auc_test"):
        out[key] = float(np.mean([r[key] for r in results]))
    return out


def grid_runner(args):
    """``run_grid`` with the script's ``--cache``, ``--workers`` and ``--scheduler``."""
    return lambda configs: run_grid(configs, args.cache, workers=args.workers, scheduler=args.scheduler)


# ------------------------------------------------------------------------------------ results
def tag(args):
    """``[<dataset>]`` or ``[<dataset> quick]``: how a script's printed summary names its run."""
    return f"[{args.dataset}{' quick' if args.quick else ''}]"


def portable_options(options):
    """``options`` with its paths relative to the project root, as committed results name them."""
    return {key: (os.path.relpath(value, paths.PROJECT_ROOT) if key in ("data_dir", "weights") and value else value)
            for key, value in options.items()}


def run_record(args, start, grids=()):
    """What a script's run took: its wall time, workers, and the fits of its grids (run now or read from the cache).

    ``fit_seconds`` sums the fits' own times (:func:`fit_and_score`'s ``seconds``), whenever they ran.
    """
    fits = [result for grid in grids for result in grid]
    return {"date": time.strftime("%Y-%m-%d"), "wall_seconds": round(time.time() - start, 1),
            "workers": args.workers, "fits": len(fits), "fits_computed": sum(g.computed for g in grids),
            "fit_seconds": round(sum(result.get("seconds", 0.0) for result in fits), 1)}


def _shrink_png(path, colours=256):
    """Rewrite a PNG with an adaptive palette of ``colours`` (committed figures stay small: photographs in
    Figures 1, 6 and 7 take megabytes in full colour)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colours)
    small.save(path, format="PNG", optimize=True)


def write_results(name, figure, rows, setup, args, line, start, grids=(), **extra):
    """Write ``<args.out>/<name>.{png,pdf,csv,json}`` and print the script's one-line summary.

    With ``--publish``, write ``experiments/results/<dataset>/<name>.{png,csv,json}`` instead: the results
    committed with the project (refused for ``--quick``). The JSON holds the table, the setup (dataset
    options with relative paths, data label, network note, folds), the run (:func:`run_record`) and ``extra``.

    Parameters
    ----------
    name : str
    figure : matplotlib.figure.Figure
    rows : list of dict
        The table (same keys in every row).
    setup : Setup
    args : argparse.Namespace
        The script's options (``out``, ``publish``, ``dataset``, ``quick``, ``workers``).
    line : str
        What the printed summary says, after ``<name> [<dataset> quick]:``.
    start : float
        ``time.time()`` at the script's start (the line ends with the seconds taken and the PNG).
    grids : sequence of GridResults
        The grids the script ran, for the run record.
    **extra
        More JSON-able information for the JSON (scores, notes).

    Returns
    -------
    Path
        The PNG.
    """
    if args.publish:
        if args.quick:
            raise ValueError("--publish writes the committed results of full configurations: drop --quick")
        out, formats = PUBLISHED_RESULTS / args.dataset, ("png",)
    else:
        out, formats = Path(args.out), ("png", "pdf")
    out.mkdir(parents=True, exist_ok=True)
    for ext in formats:
        with paths.atomic_path(out / f"{name}.{ext}") as tmp:
            figure.savefig(tmp, format=ext, dpi=100, bbox_inches="tight")
            if ext == "png" and args.publish:
                _shrink_png(tmp)
    with paths.atomic_path(out / f"{name}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {"rows": rows, "options": portable_options(setup.options), "label": setup.label,
               "network": setup.network_note, "folds": setup.folds, "run": run_record(args, start, grids), **extra}
    with paths.atomic_path(out / f"{name}.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1, default=float))
    png = out / f"{name}.png"
    print(f"{name} {tag(args)}: {line}; {time.time() - start:.0f} s -> {png}")
    return png


def is_published(row):
    """Whether a table row is a number copied from the paper (its ``source`` starts with "published")."""
    return row["source"].startswith("published")


def bar_chart(ax, rows, key, fmt="{:.1f}", published_note="published"):
    """One bar per row, this run's values in blue, published values hatched grey, each with its value.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rows : list of dict
        With ``'model'`` (the bar's label; a parenthesis goes on a line of its own), ``'source'`` (legend
        entry; "published ..." for the paper's numbers) and ``key`` (the height).
    key : str
    fmt : str
        Format of the value written above each bar.
    published_note : str
        Added under the label of published bars.
    """
    seen = set()
    for i, row in enumerate(rows):
        published = is_published(row)
        ax.bar(i, row[key], color="lightgrey" if published else "C0", hatch="//" if published else None,
               edgecolor="k", label=None if row["source"] in seen else row["source"])
        seen.add(row["source"])
        below = row[key] < 0
        ax.annotate(fmt.format(row[key]), (i, row[key]), xytext=(0, -2 if below else 2), textcoords="offset points",
                    ha="center", va="top" if below else "bottom", fontsize=8)
    labels = [row["model"].replace(" (", "\n(") + (f"\n({published_note})" if is_published(row) else "")
              for row in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=8)


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def label_figure(figure, setup, title):
    """Title the figure with what it shows and which data and network it comes from (and, for ``--quick``
    runs, that their numbers are not meaningful)."""
    quick = ("\nQUICK CONFIGURATION (a few images, one fold, short fits): a smoke test, its numbers are not "
             "meaningful" if setup.options["quick"] else "")
    figure.suptitle(f"{title}\n{setup.label}; {setup.network_note}{quick}", fontsize=9,
                    color="darkred" if setup.options["dataset"] == "demo" or quick else "black")


# ------------------------------------------------------------------------------------ fitted models
def load_model(config, folder=None):
    """The readout fitted for ``config`` (run :func:`run_grid` on it first)."""
    from .model import DeepGazeI

    path = Path(folder or paths.cache_dir("experiments")) / f"{config_key(config)}.h5"
    if not path.is_file():
        raise FileNotFoundError(f"no fitted model {path}: run the grid of this configuration first")
    return DeepGazeI.load(path)


def top_features(weights, n=10):
    """Indices of the ``n`` features of largest ``|weight|``, largest first."""
    return np.argsort(-np.abs(np.asarray(weights)), kind="stable")[:n]


def strongest_units(setup, layer, channels, signs, n=9):
    """For each feature, the ``n`` images where it responds most (sign -1: least), with the unit of that response.

    One unit per image (its extreme), so the patches come from ``n`` different images. Every image's
    features are read once for all ``channels``.

    Parameters
    ----------
    channels : sequence of int
    signs : sequence of float
        +1 (largest response) or -1 (smallest) for each channel.

    Returns
    -------
    list, for each channel, of lists of (image index, row, column, response), strongest first
    """
    found = [[] for _ in channels]
    for index in range(len(setup.stimuli)):
        maps = setup.store.features(setup.stimuli[index], [layer])[0]
        for units, channel, sign in zip(found, channels, signs):
            response = sign * maps[channel]
            row, col = np.unravel_index(np.argmax(response), response.shape)
            units.append((index, int(row), int(col), float(sign * response[row, col])))
    return [sorted(units, key=lambda u: -sign * u[3])[:n] for units, sign in zip(found, signs)]


def top_feature_patches(args, setup, n_features, n_patches):
    """Figures 6 and 7: fit the conv5 readout on every fold, average the weights, find the top features' patches.

    Returns
    -------
    found : list of (channel, weight, [(image index, row, column, response), ...]), most weighted feature first
    grid : GridResults
        The fits.
    """
    results = grid_runner(args)([fit_config(setup, ["conv5"], s) for s in setup.folds])
    weights = np.mean([r["w"] for r in results], axis=0)
    channels = [int(c) for c in top_features(weights, n_features)]
    signs = [np.sign(weights[c]) or 1.0 for c in channels]
    units = strongest_units(setup, "conv5", channels, signs, n_patches)
    return [(c, float(weights[c]), u) for c, u in zip(channels, units)], results


def unit_box(setup, layer, row, col):
    """The receptive field of unit ``(row, col)`` of ``layer`` in image pixels: ``(top, left, size)``.

    From :meth:`repro.network.Network.receptive_field` (network-input pixels) times the initial
    downsampling factor.
    """
    size, stride, offset = setup.store.extractor.network.receptive_field(layer)
    factor = setup.store.extractor.downsample
    return (offset + row * stride) * factor, (offset + col * stride) * factor, size * factor


def crop(image, top, left, size):
    """The square ``size`` x ``size`` patch at ``(top, left)``, grey (128) where it leaves the image."""
    patch = np.full((size, size, 3), 128, np.uint8)
    rows = slice(max(top, 0), min(top + size, image.shape[0]))
    cols = slice(max(left, 0), min(left + size, image.shape[1]))
    patch[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = image[rows, cols]
    return patch
