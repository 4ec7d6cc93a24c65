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

    try:
        folder = caffe.download(args.name, args.to)
    except (ConnectionError, caffe.CaffeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: {folder}")
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
    return parser


def main(argv=None):
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
