"""The experiments' datasets and networks: command-line options, and the :class:`Setup` a script (or a grid
worker, from the options in a fit's configuration) builds once per process."""
import argparse
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import paths
from ..centerbias import fit_center_bias
from ..datasets import DATASET_FOLDERS, DATASETS, dataset_folder
from ..demo import demo_dataset, random_alexnet
from ..features import FeatureExtractor, FeatureStore
from ..goldstandard import fit_gold_standard
from ..network import Network

__all__ = ["QUICK", "FULL", "NETWORKS", "GOOGLENET_LAYER", "parser", "options_of", "Setup", "alexnet",
           "googlenet_weights", "googlenet", "setup_store", "load_setup"]

#: Quick configuration: images per split, held-out subjects, SFO passes.
QUICK = {"images": 3, "folds": 1, "passes": 12, "batches": 3}
FULL = {"passes": 20, "batches": 10}
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
    label : str
        Title line naming the data (the demonstration label for ``demo``).
    center_bias : repro.centerbias.CenterBias
    cb_ll, gold_ll : ndarray, shape (n_fixations,)
        Leave-one-image-out centre bias and gold standard log-likelihoods (nats).
    stores, notes : dict
        Feature store and weights note of each network used so far, by name: AlexNet's from the start,
        others added by :func:`setup_store`.
    planted : repro.model.DeepGazeI or None
        The model that generated the demonstration fixations.
    store, network_note
        AlexNet's (the paper's network) feature store and weights note: ``stores['alexnet']``,
        ``notes['alexnet']``.
    """
    options: dict
    stimuli: object
    fixations: object
    train: np.ndarray
    test: np.ndarray
    folds: list
    label: str
    center_bias: object
    cb_ll: np.ndarray
    gold_ll: np.ndarray
    stores: dict
    notes: dict
    planted: object = None

    @property
    def store(self):
        return self.stores["alexnet"]

    @property
    def network_note(self):
        return self.notes["alexnet"]


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
    return Setup(options, stimuli, fixations, np.asarray(train), np.asarray(test), [int(s) for s in folds], label,
                 center_bias, cb_ll, gold_ll, {"alexnet": store}, {"alexnet": note}, planted)


def load_setup(options):
    """The :class:`Setup` of ``options`` (see :func:`options_of`), built once per process."""
    return _load_setup(json.dumps(options, sort_keys=True))
