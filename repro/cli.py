"""What every command line of the project shares (``python -m repro`` and the scripts in ``experiments/``).

The contract: a user error (a missing or unreadable file, a bad value, a failed download, an unreachable
scheduler) prints one line ``error: ...`` to stderr and exits with status 1: no traceback, no usage text.
Options are checked when they are parsed (:class:`Parser`, :func:`whole_number`, :func:`seed`).
"""
import argparse
import sys

__all__ = ["USER_ERRORS", "SEEDS", "Parser", "whole_number", "check_seed", "seed", "run"]

#: What a user's input can raise (``CaffeError``, ``DownloadError``, ``ConnectionError`` and ``TimeoutError`` are
#: among them): printed as one line.
USER_ERRORS = (OSError, ValueError, KeyError)

#: The seeds NumPy's generators take: 0 ... 2**32 - 1.
SEEDS = range(2 ** 32)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors keep the contract: one line ``error: ...``, exit status 1."""

    def error(self, message):
        self.exit(1, f"error: {self.prog}: {message}\n")


def whole_number(minimum=0):
    """An option type: a whole number ``>= minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def check_seed(value):
    """``value`` as a seed of NumPy's generators (a whole number in :data:`SEEDS`), or ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in SEEDS:
        raise ValueError(f"seed {value!r}: expected a whole number from 0 to {SEEDS[-1]}")
    return value


def seed(text):
    """An option type: a seed (:func:`check_seed`)."""
    try:
        return check_seed(int(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err) if "seed" in str(err) else f"seed {text!r} is not a whole "
                                                                               f"number") from None


def run(main, argv=None):
    """Run ``main(argv)``; a user error (:data:`USER_ERRORS`) is printed as one line ``error: ...`` and gives 1.

    Returns
    -------
    int
        The exit status: ``main``'s if it returns an int, else 0; 1 after a user error.
    """
    try:
        status = main(argv)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
