"""The experiments' datasets and networks: command-line options, and the :class:`Setup` a script (or a grid
worker, from the options in a fit's configuration) builds once per process."""
import json
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from .. import cli, paths
from ..centerbias import fit_center_bias
from ..datasets import DATASET_FOLDERS, DATASETS, dataset_folder
from ..features import FeatureExtractor, FeatureStore
from ..goldstandard import fit_gold_standard
from ..network import Network
from ..planted import planted_log_densities, random_alexnet

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
def parser(description, models=False):
    """An argument parser with the options every experiment script takes (and, with ``models``, ``--models``: the
    earlier saliency models to compare, :func:`repro.experiments.comparison.model_names`)."""
    p = cli.Parser(description=description)
    on_disk = list(DATASET_FOLDERS)
    p.add_argument("--dataset", choices=list(DATASETS), default="demo",
                   help=f"demo (embedded, no download), {', '.join(on_disk[:-1])} or {on_disk[-1]} (under --data-dir)")
    p.add_argument("--data-dir", help="data directory (default: DEEPGAZE_DATA)")
    p.add_argument("--weights", help="folder with AlexNet's deploy.prototxt and *.caffemodel "
                                     "(default: <data-dir>/weights/bvlc_alexnet, else weights/bvlc_alexnet, "
                                     "if present)")
    p.add_argument("--quick", action="store_true", help="small, fast configuration (CI)")
    p.add_argument("--seed", type=cli.seed, default=0, help=f"0 ... {cli.SEEDS[-1]} (default 0)")
    p.add_argument("--workers", type=cli.whole_number(0), default=0, help="local dask workers (0: run serially)")
    p.add_argument("--scheduler", help="address of an existing dask scheduler, e.g. tcp://host:8786 (it must "
                                       "answer, and have a worker, within "
                                       "repro.experiments.SCHEDULER_TIMEOUT seconds)")
    p.add_argument("--out", default=str(paths.PROJECT_ROOT / "results"), help="results folder")
    p.add_argument("--publish", action="store_true",
                   help="write PNG, CSV and JSON to experiments/results/<dataset>/ (the committed results) "
                        "instead of --out; full configurations only")
    p.add_argument("--cache", help="cache of grid results (default: <cache>/experiments)")
    if models:
        p.add_argument("--models", default="all", help="earlier saliency models beside DeepGaze I: all (default), "
                                                       "none, or names separated by commas")
    return p


def options_of(args):
    """The options that determine the dataset and network, as a plain (JSON-able) dict.

    ``weights`` is the folder of AlexNet's files, ``--weights`` or where :func:`repro.paths.find_weights` finds
    them (the data directory's, else the one ``python -m repro download bvlc_alexnet`` fetched), or None.
    """
    cli.check_seed(args.seed)
    data = paths.data_dir(args.data_dir, required=args.dataset in DATASET_FOLDERS or args.weights is not None)
    if data is None and args.data_dir is None:
        data = paths.data_dir(None, required=False)
    found = paths.find_weights("bvlc_alexnet", args.weights or None, data)
    weights = found[0].parent if found else None
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
    gold_standard : repro.goldstandard.GoldStandard
        What ``gold_ll`` scores (its densities are what CC, KL and SIM compare maps with).
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
    gold_standard: object = None

    @property
    def store(self):
        return self.stores["alexnet"]

    @property
    def network_note(self):
        return self.notes["alexnet"]


def alexnet(options):
    """AlexNet in ``full`` padding: the real weights if ``options['weights']`` names them, else random."""
    if options["weights"]:
        prototxt, caffemodel = paths.find_weights("bvlc_alexnet", options["weights"])
        return Network(prototxt, caffemodel, padding="full", last_layer="pool5"), f"AlexNet, weights {caffemodel.name}"
    return random_alexnet(options["seed"]), "AlexNet architecture with deterministic RANDOM weights (no pretrained weights found)"


def googlenet_weights(options):
    """``(prototxt, caffemodel)`` of BVLC GoogLeNet, ``bvlc_googlenet`` where :func:`repro.paths.find_weights` finds
    it (``<data>/weights/bvlc_googlenet``, else ``weights/bvlc_googlenet``), or None."""
    return paths.find_weights("bvlc_googlenet", data=options["data_dir"])


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
    found = googlenet_weights(options)
    if found is None:
        raise FileNotFoundError(f"no GoogLeNet weights (deploy.prototxt, *.caffemodel) under "
                                f"<data>/weights/bvlc_googlenet (data: {options['data_dir']}) or "
                                f"{paths.weights_dir() / 'bvlc_googlenet'}")
    prototxt, caffemodel = found
    network = Network(prototxt, caffemodel, padding="caffe", last_layer=GOOGLENET_LAYER)
    return network, f"GoogLeNet, weights {caffemodel.name}, caffe padding, layer {GOOGLENET_LAYER}"


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


def _made_from(spec, options, store):
    """What the loader of dataset ``spec`` takes beyond its folder: nothing, but for the demonstration data
    (:func:`repro.datasets.demo.load_demo`), which are made from this setup's AlexNet (``store``), a readout
    of it planted with the seed of ``options`` (:func:`repro.planted.planted_log_densities`), and 4 subjects
    in quick mode, 6 otherwise."""
    if spec.name != "demo":
        return {}
    return {"log_densities": partial(planted_log_densities, store=store, seed=options["seed"]),
            "n_subjects": 4 if options["quick"] else 6, "seed": options["seed"]}


@lru_cache(maxsize=4)
def _load_setup(options_json):
    options = json.loads(options_json)
    network, note = alexnet(options)
    store = FeatureStore(FeatureExtractor(network))
    spec = DATASETS[options["dataset"]]
    folder = dataset_folder(spec.name, paths.data_dir(options["data_dir"])) if spec.folders else None
    stimuli, fixations = spec.load(folder, keep_first=False, **_made_from(spec, options, store))
    label = spec.label_of(folder, keep_first=False)
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
    gold_standard = fit_gold_standard(stimuli.sizes, fixations, center_bias)
    return Setup(options, stimuli, fixations, np.asarray(train), np.asarray(test), [int(s) for s in folds], label,
                 center_bias, cb_ll, gold_standard.log_likelihoods(cb_ll), {"alexnet": store}, {"alexnet": note},
                 gold_standard=gold_standard)


def load_setup(options):
    """The :class:`Setup` of ``options`` (see :func:`options_of`), built once per process."""
    return _load_setup(json.dumps(options, sort_keys=True))
