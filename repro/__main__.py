"""Command line: ``python -m repro COMMAND`` (also installed as ``deepgaze1-repro``).

Commands
--------
info
    Versions, Theano configuration and the folders the package uses.
download NAME [--to FOLDER]
    Fetch an official BVLC network (``bvlc_alexnet``, ``bvlc_reference_caffenet``):
    caffemodel (SHA-1 checked) and deploy.prototxt, into ``weights/NAME`` by default.
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
    from . import caffe

    folder = caffe.download(args.name, args.to)
    print(f"{args.name}: {folder}")
    return 0


def _predict(args):
    from .predict import predict_files

    centerbias = None
    if args.centerbias != "uniform":
        from . import datasets, paths
        from .centerbias import fit_center_bias
        loader = {"osie": datasets.load_osie, "mit1003": datasets.load_mit1003}[args.centerbias]
        folder = paths.data_dir() / {"osie": "osie", "mit1003": "mit1003-subset"}[args.centerbias]
        stimuli, fixations = loader(folder, keep_first=False)
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
    download = commands.add_parser("download", help="fetch official BVLC Caffe networks (checksummed)")
    download.add_argument("name", choices=["bvlc_alexnet", "bvlc_reference_caffenet"])
    download.add_argument("--to", metavar="FOLDER", help="destination (default: weights/NAME)")
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
