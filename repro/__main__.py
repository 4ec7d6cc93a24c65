"""Command line: ``python -m repro COMMAND`` (also installed as ``deepgaze1-repro``).

Commands
--------
info
    Versions, Theano configuration and the folders the package uses.
download NAME [--to FOLDER] [--fixations TABLE]
    Fetch an official BVLC network (``bvlc_alexnet``, ``bvlc_reference_caffenet``): caffemodel
    (SHA-1 checked) and deploy.prototxt, into ``weights/NAME`` by default; or a dataset (``osie``,
    ``mit1003``, every file checked, see :mod:`repro.download`) into the data directory.
"""
import argparse
import sys


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
    from . import caffe, download, paths

    if args.name in download.DATASETS:
        data_dir = args.to or paths.data_dir(required=False)
        if data_dir is None:
            raise FileNotFoundError("where to? set DEEPGAZE_DATA to your data directory or pass --to FOLDER")
        folder = download.download_dataset(args.name, data_dir, fixations=args.fixations)
        note = download.DATASETS[args.name].note
        if note and not (folder / "fixations.csv.gz").is_file():
            print(f"note: {note}", file=sys.stderr)
    else:
        if args.fixations:
            raise ValueError("--fixations is for the dataset mit1003")
        folder = caffe.download(args.name, args.to)
    print(f"{args.name}: {folder}")
    return 0


def _predict(args):
    from .predict import predict_files

    centerbias = None
    if args.centerbias != "uniform":
        from . import datasets, paths
        from .centerbias import fit_center_bias
        stimuli, fixations = datasets.load_dataset(args.centerbias, paths.data_dir(), keep_first=False)
        centerbias = fit_center_bias(stimuli.sizes, fixations)
    written = predict_files(args.images, args.model, args.network, centerbias, args.out)
    for path in written:
        print(path)
    return 0


def build_parser():
    """Return the argument parser of ``python -m repro``."""
    parser = argparse.ArgumentParser(prog="python -m repro", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions, Theano configuration and folders").set_defaults(run=_info)
    download = commands.add_parser("download", help="fetch official BVLC Caffe networks or datasets (checksummed)")
    download.add_argument("name", choices=["bvlc_alexnet", "bvlc_reference_caffenet", "osie", "mit1003"])
    download.add_argument("--to", metavar="FOLDER", help="destination (default: weights/NAME for networks, the "
                          "data directory DEEPGAZE_DATA for datasets, which go to FOLDER/NAME)")
    download.add_argument("--fixations", metavar="TABLE", help="mit1003: a fixation table (CSV, columns of "
                          "repro.datasets.MIT1003_COLUMNS) to copy beside the images")
    download.set_defaults(run=_download)
    predict = commands.add_parser("predict", help="fixation densities of images under a trained model")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--model", required=True, help="model file saved by DeepGazeI.save")
    predict.add_argument("--network", metavar="FOLDER", help="deploy.prototxt + caffemodel folder "
                         "(default: weights/bvlc_alexnet, then $DEEPGAZE_DATA/weights/bvlc_alexnet)")
    predict.add_argument("--centerbias", choices=["uniform", "osie", "mit1003"], default="uniform",
                         help="prior: uniform (default; for shuffled AUC) or the centre bias of a dataset "
                              "in DEEPGAZE_DATA")
    predict.add_argument("--out", default=".", help="output folder (default: current folder)")
    predict.set_defaults(run=_predict)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code.

    A user error (a missing or unreadable file, a bad value, a failed download) prints one line
    ``error: ...`` and returns 1, never a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, KeyError) as err:      # CaffeError and ConnectionError are among them
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
