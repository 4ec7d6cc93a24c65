"""Command line: ``python -m repro COMMAND`` (also installed as ``deepgaze1-repro``).

Commands
--------
info
    Versions, Theano configuration and the folders the package uses.
download NAME [--to FOLDER] [--fixations TABLE]
    Fetch an official BVLC network (``bvlc_alexnet``, ``bvlc_reference_caffenet``): caffemodel
    (SHA-1) and deploy.prototxt (network digest), both checked, into ``weights/NAME`` by default; or a
    dataset with a source (``osie``, ``mit1003``, every file checked) into the data directory; see
    :mod:`repro.download`.
train [--dataset osie|mit1003] [--layers conv5] [--images N] [--out FILE]
    The paper's readout on the training images with all subjects; prints its scores on the test
    images; writes ``weights/deepgaze1.h5`` by default.
predict IMAGE|FOLDER|PATTERN|@LIST... [--model FILE] [--centerbias osie|mit1003|uniform] [--out DIR]
    Fixation densities of images (``<name>_logdensity.npy``, or one ``--hdf5 FILE``) and a picture of each
    (``<name>_density.png``; ``--figures``/``--no-figures``, default for up to 10 images); a run skips the images
    already done, so a killed one is resumed; ``--workers N`` or ``--scheduler ADDRESS`` spread the images over
    dask workers (:mod:`repro.predict`).
evaluate MAPS [--dataset osie|mit1003] [--resize] [--subjects] [--mit] [--out DIR]
    Any saliency model scored as the paper scores models: its maps (a folder, one per stimulus) postprocessed on
    the training images, scored on the test images (:mod:`repro.evaluation`); writes
    ``<MAPS>_<dataset>_evaluation.{json,csv,png,pdf}``.
saliency MODEL IMAGE... [--out DIR] | saliency MODEL --dataset osie|mit1003 [--out DIR]
    An earlier saliency model's maps (:mod:`repro.saliency_models`), cached per image: ``<name>.npy`` of each image,
    or of every stimulus of a dataset into ``DIR`` (default ``./MODEL``), the folder ``evaluate`` reads.
"""
import argparse
import sys

from . import cli


def _info(args):
    import numpy
    import scipy

    from . import __version__, paths
    from .backend import theano

    print(f"deepgaze1-repro {__version__}")
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
          f"theano {theano.__version__}")
    print(f"theano floatX={theano.config.floatX} blas.ldflags={theano.config.blas.ldflags!r} "
          f"compiledir={theano.config.compiledir}")
    print(f"data directory:  {paths.data_dir(required=False) or '(not set: DEEPGAZE_DATA)'}")
    print(f"weights folder:  {paths.weights_dir()}")
    print(f"cache folder:    {paths.cache_dir()}")
    return 0


def _download(args):
    from . import download, paths

    if args.name not in download.NETWORK_FILES:
        spec = download.downloadable_dataset(args.name)
        data_dir = args.to or paths.data_dir(required=False)
        if data_dir is None:
            raise FileNotFoundError("where to? set DEEPGAZE_DATA to your data directory or pass --to FOLDER")
        folder = download.download_dataset(args.name, data_dir, fixations=args.fixations)
        if spec.source.note and not (folder / spec.fixation_file).is_file():
            print(f"note: {spec.source.note}", file=sys.stderr)
    else:
        if args.fixations:
            raise ValueError("--fixations is for the dataset mit1003")
        folder = download.download_network(args.name, args.to)
    print(f"{args.name}: {folder}")
    return 0


def _train(args):
    import time

    from . import experiments as ex
    from .predict import default_model

    start = time.time()
    options = ex.options_of(args)
    if args.images:
        options["images"] = args.images
    setup = ex.load_setup(options)
    if setup.options["weights"] is None:
        raise FileNotFoundError("no pretrained AlexNet: run 'python -m repro download bvlc_alexnet' or pass "
                                "--weights FOLDER (deploy.prototxt + *.caffemodel)")
    print(f"training the readout of {' '.join(args.layers)} on {len(setup.train)} images of {setup.label}, "
          f"all {len(setup.fixations.subjects)} subjects; testing on {len(setup.test)} images", file=sys.stderr)
    model, scores = ex.train_readout(setup, args.layers)
    out = args.out or default_model()
    model.save(out)
    print(f"{out}: {' + '.join(args.layers)} readout, {len(model.w)} features, sigma {model.sigma:.2f} cells, "
          f"alpha {model.alpha:.3f}")
    print(f"test images ({scores['n_fixations']} fixations): explained information "
          f"{100 * scores['explained']:.1f} % ({scores['ig_bits']:.3f} bit/fix over the centre bias), "
          f"AUC {100 * scores['auc']:.2f} %, shuffled AUC {100 * scores['sauc']:.2f} %; "
          f"wall time {time.time() - start:.0f} s")
    return 0


def _predict(args):
    import time

    from .predict import center_bias_template, default_model, predict_files

    start = time.perf_counter()
    centerbias = center_bias_template(args.centerbias)
    done = predict_files(args.images, args.model or default_model(), args.network, centerbias, args.out,
                         fixations=args.fixations, lists=args.list, hdf5=args.hdf5, figures=args.figures,
                         workers=args.workers, scheduler=args.scheduler)
    seconds = time.perf_counter() - start
    print(f"{len(done)} images predicted in {seconds:.1f} s ({len(done) / seconds:.2f} images/s), {done.skipped} "
          f"skipped (done already): {args.hdf5 or args.out}")
    return 0


def _evaluate(args):
    import time
    from argparse import Namespace
    from pathlib import Path

    import numpy as np

    from . import experiments as ex
    from .evaluation import evaluate_maps, evaluation_figure, scores_table
    from .paths import data_dir
    from .saliency_maps import checked_map, load_maps, map_files, read_map

    start = time.time()
    maps_folder = Path(args.maps)
    if not maps_folder.is_dir():                                  # before the dataset is loaded
        raise FileNotFoundError(f"{maps_folder}: no such folder of saliency maps")
    name = maps_folder.resolve().name
    setup = ex.load_setup({"dataset": args.dataset, "data_dir": str(data_dir(args.data_dir)), "weights": None,
                           "quick": False, "seed": 0})
    cells = load_maps(maps_folder, setup.stimuli, resize=args.resize, cache=not args.no_cache)
    print(f"{len(cells)} maps of {maps_folder}; fitting the postprocessing on {len(setup.train)} training images of "
          f"{setup.label}, scoring {len(setup.test)} test images", file=sys.stderr)
    result = evaluate_maps(cells, setup.stimuli, setup.fixations, setup.train, setup.test, setup.center_bias,
                           setup.gold_standard, subjects=args.subjects, mit=args.mit)
    rows = scores_table(result)
    for row in rows:
        print(f"{row['score']:>22} {row['value']:10.4f} {row['unit']:9} {row['meaning']}")
    files = map_files(maps_folder, setup.stimuli)
    raw = lambda n: checked_map(read_map(files[n]), files[n], setup.stimuli.sizes[n], args.resize)   # noqa: E731
    examples = setup.test[np.linspace(0, len(setup.test) - 1, 3).astype(int)]
    figure = evaluation_figure(result, result["postprocessing"].density(cells), setup.stimuli, setup.fixations, raw,
                               examples, title=f"{name} on {setup.label}")
    scores = result["scores"]
    fits = [result["postprocessing"].info] + [fold["info"] for fold in result["folds"]]
    ex.write_results(f"{name}_{args.dataset}_evaluation", figure, rows, setup,
                     Namespace(out=args.out, publish=args.publish, dataset=args.dataset, quick=False, workers=0),
                     f"{name}: {scores['information_gain']:.3f} bit/fix, {100 * scores['explained_information']:.1f} % "
                     f"explained", start, [ex.GridResults(fits, len(fits))], network=f"none: the saliency maps of {name}",
                     maps=name, scores=scores, postprocessing=result["postprocessing"].to_json(), subject_folds=result["folds"],
                     subjects=result["subjects"], images=result["images"], fixations=result["fixations"],
                     machine=ex.machine())
    return 0


def _saliency(args):
    from pathlib import Path

    import numpy as np
    from tqdm.auto import tqdm

    from .datasets import load_dataset, load_image
    from .paths import atomic_path, data_dir
    from .saliency_models import MapStore, get_model

    model = get_model(args.model)
    if bool(args.images) == bool(args.dataset):
        raise ValueError("saliency: give images or --dataset NAME (one of the two)")
    if args.dataset:
        stimuli, _ = load_dataset(args.dataset, data_dir(args.data_dir), keep_first=True)
        out = Path(args.out or model.name)
        names = [f"{stimulus_id}.npy" for stimulus_id in stimuli.ids]
        images = (stimuli[n] for n in range(len(stimuli)))
    else:
        out = Path(args.out or ".")
        names = [f"{Path(image).stem}.npy" for image in args.images]
        if len(set(names)) < len(names):
            raise ValueError(f"saliency: two images would write the same map ({', '.join(sorted(names))}); "
                             f"give images of distinct names")
        images = (load_image(image) for image in args.images)
    out.mkdir(parents=True, exist_ok=True)
    compute = model if args.no_cache else MapStore(model).map
    for name, image in zip(tqdm(names, desc=model.name, unit="img", disable=len(names) < 10), images):
        with atomic_path(out / name) as tmp, open(tmp, "wb") as f:
            np.save(f, compute(image))
        if not args.dataset:
            print(out / name)
    if args.dataset:
        print(f"{out}: {len(names)} maps of {model.name} ({args.dataset}); score them with "
              f"'python -m repro evaluate {out} --dataset {args.dataset}'")
    return 0


def build_parser():
    """Return the argument parser of ``python -m repro``."""
    from .datasets import DATASET_FOLDERS, DATASETS
    from .download import NETWORK_FILES
    from .saliency_models import MODELS

    parser = cli.Parser(prog="python -m repro", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions, Theano configuration and folders").set_defaults(run=_info)
    download = commands.add_parser("download", help="fetch official BVLC Caffe networks or datasets (checksummed)")
    download.add_argument("name", choices=[*NETWORK_FILES, *(name for name, spec in DATASETS.items() if spec.source)])
    download.add_argument("--to", metavar="FOLDER", help="destination (default: weights/NAME for networks, the "
                          "data directory DEEPGAZE_DATA for datasets, which go to FOLDER/NAME)")
    download.add_argument("--fixations", metavar="TABLE", help="mit1003: a fixation table (CSV, columns of "
                          "repro.datasets.MIT1003_COLUMNS) to copy beside the images")
    download.set_defaults(run=_download)
    train = commands.add_parser("train", help="the paper's readout trained on a dataset's training images")
    train.add_argument("--dataset", choices=list(DATASET_FOLDERS), default="osie")
    train.add_argument("--layers", nargs="+", default=["conv5"], help="AlexNet layers read (default: conv5)")
    train.add_argument("--images", type=cli.whole_number(1), help="only the first N images of each half (a faster, smaller model)")
    train.add_argument("--out", help="model file (default: weights/deepgaze1.h5, where predict looks)")
    train.add_argument("--data-dir", help="data directory (default: DEEPGAZE_DATA)")
    train.add_argument("--weights", help="AlexNet folder (default: <data-dir>/weights/bvlc_alexnet, else "
                       "weights/bvlc_alexnet)")
    train.set_defaults(run=_train, quick=False, seed=0)
    predict = commands.add_parser("predict", help="fixation densities of images under a trained model")
    predict.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (their images), glob "
                         "patterns ('photos/**/*.jpg') or @LIST (a file naming one of these a line)")
    predict.add_argument("--list", action="append", default=[], metavar="FILE", help="a file naming one image, "
                         "folder or pattern a line (relative to its folder); may be repeated")
    predict.add_argument("--model", help="model file saved by train or DeepGazeI.save "
                         "(default: weights/deepgaze1.h5)")
    predict.add_argument("--network", metavar="FOLDER", help="deploy.prototxt + caffemodel folder "
                         "(default: $DEEPGAZE_DATA/weights/bvlc_alexnet, then weights/bvlc_alexnet)")
    predict.add_argument("--centerbias", default="uniform", metavar=f"uniform|{'|'.join(DATASET_FOLDERS)}|FILE",
                         help="prior: uniform (default; for shuffled AUC), the centre bias of a dataset in "
                              "DEEPGAZE_DATA (fitted once, then kept), or a template file (.npz)")
    predict.add_argument("--out", default=".", help="output folder (default: current folder)")
    predict.add_argument("--hdf5", metavar="FILE", help="write all log-densities into one HDF5 file, a dataset "
                         "per image named by its file name (pysaliency's HDF5Model reads it), instead of .npy files")
    predict.add_argument("--figures", action=argparse.BooleanOptionalAction, help="draw <name>_density.png "
                         "(default: for up to 10 images)")
    predict.add_argument("--fixations", metavar="CSV", help="fixations to draw: columns x, y (pixels) and "
                         "optionally image (file name)")
    predict.add_argument("--workers", type=cli.whole_number(0), default=0, help="local dask worker processes, "
                         "one thread each (default 0: this process)")
    predict.add_argument("--scheduler", metavar="ADDRESS", help="a running dask scheduler (tcp://host:port) whose "
                         "workers see the same paths")
    predict.set_defaults(run=_predict)
    evaluate = commands.add_parser("evaluate", help="any saliency model's maps scored as the paper scores models")
    evaluate.add_argument("maps", metavar="MAPS", help="folder of maps, one per stimulus, named after it "
                          "(<name>.png|.jpg|.npy|.mat; PNG 8 or 16 bit)")
    evaluate.add_argument("--dataset", choices=list(DATASET_FOLDERS), default="osie")
    evaluate.add_argument("--data-dir", help="data directory (default: DEEPGAZE_DATA)")
    evaluate.add_argument("--resize", action="store_true", help="resize maps of another size than their stimulus "
                          "bilinearly (default: an error)")
    evaluate.add_argument("--subjects", action="store_true", help="information gain leave-one-subject-out (one fit "
                          "per subject) instead of one fit on all subjects")
    evaluate.add_argument("--mit", action="store_true", help="also the MIT benchmark's AUC-Judd and shuffled AUC")
    evaluate.add_argument("--no-cache", action="store_true", help="read the maps again (default: kept on cells in "
                          "the cache while the files are unchanged)")
    evaluate.add_argument("--out", default=".", help="output folder (default: current folder)")
    evaluate.add_argument("--publish", action="store_true", help="write to experiments/results/<dataset>/ (the "
                          "committed results) instead of --out")
    evaluate.set_defaults(run=_evaluate)
    saliency = commands.add_parser("saliency", help="an earlier saliency model's maps of images or of a dataset")
    saliency.add_argument("model", metavar="MODEL", choices=sorted(MODELS), help=f"one of {', '.join(sorted(MODELS))}")
    saliency.add_argument("images", nargs="*", metavar="IMAGE")
    saliency.add_argument("--dataset", choices=list(DATASET_FOLDERS), help="every stimulus of a dataset in the data "
                          "directory, one map each, named as evaluate reads them")
    saliency.add_argument("--data-dir", help="data directory (default: DEEPGAZE_DATA)")
    saliency.add_argument("--out", help="output folder (default: the current folder for images, ./MODEL for a dataset)")
    saliency.add_argument("--no-cache", action="store_true", help="compute every map (default: cached per image)")
    saliency.set_defaults(run=_saliency)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code.

    A user error (a bad option, a missing or unreadable file, a bad value, a failed download) prints one line
    ``error: ...`` and returns 1, never a traceback (:mod:`repro.cli`).
    """
    def command(arguments):
        args = build_parser().parse_args(arguments)
        return args.run(args)
    return cli.run(command, argv)


if __name__ == "__main__":
    sys.exit(main())
