"""The one place that configures and imports Theano.

Theano 1.0.5 reads its configuration once, from ``THEANO_FLAGS``, when it is
first imported. This module sets the project's defaults before that import:

* ``floatX=float32`` (Caffe's weights are float32),
* ``blas.ldflags``: link Theano's C ops (``CorrMM``'s GEMM above all) against the
  OpenBLAS of the ``scipy-openblas32`` wheel (:func:`blas_ldflags`). NumPy 1.23.5
  bundles OpenBLAS 0.3.20, which does not recognise recent CPUs and runs a slow
  generic kernel; the newer wheel picks the CPU's AVX-512/AVX2 kernels itself
  (AlexNet 2.7x faster here; ``benchmarks/results/network.md``). Without
  that wheel the value is empty, which makes Theano call NumPy's BLAS through its
  C-API (with no value at all Theano 1.0.5 fails on modern NumPy looking for
  ``numpy.distutils.__config__.blas_opt_info``). OpenBLAS uses one thread per
  core; where other work shares the cores, ``OPENBLAS_NUM_THREADS=1`` (a user
  option, not set here) is faster, as a multi-threaded GEMM waits for its
  slowest thread,
* ``base_compiledir`` under the project cache (:func:`repro.paths.cache_dir`),
* ``gcc.cxxflags=-g0``: Theano compiles its C modules with ``-g``; the later ``-g0`` drops the
  debug information, which nothing here reads, and with it a sixth of the compiler's time
  (a first run of the demo compiles about 110 modules; ``benchmarks/results/demo.md``).

Any of these that the user already gave in ``THEANO_FLAGS`` wins. Every other
module gets Theano from here::

    from repro.backend import theano, T
"""
import importlib.util
import logging
import os
import re
import sys

from .paths import cache_dir

#: The project's Theano defaults; user THEANO_FLAGS take precedence key by key.
DEFAULT_FLAGS = {
    "floatX": "float32",
    "blas.ldflags": None,     # filled in lazily: blas_ldflags()
    "base_compiledir": None,  # filled in lazily: cache_dir("theano")
    "gcc.cxxflags": "-g0",
}

#: The BLAS routines Theano's C code calls (``s``: float32, ``d``: float64).
_BLAS_ROUTINES = [prefix + name for prefix in "sd" for name in ("gemm_", "gemv_", "ger_", "dot_", "axpy_",
                                                                "scal_", "copy_")]
#: Thread control CorrMM calls when Theano's ``openmp`` flag is on.
_OPENBLAS_EXTRAS = ["openblas_set_num_threads", "openblas_get_num_threads"]


def blas_ldflags():
    """Theano ``blas.ldflags`` for the ``scipy-openblas32`` wheel, or ``''`` without it.

    The wheel's library exports every symbol with a ``scipy_`` prefix
    (``scipy_sgemm_``), so next to ``-L``/``-l`` the flags rename the routines
    Theano's C code calls with ``-D`` macros (Theano passes such flags on to
    the compiler).

    Returns
    -------
    str
    """
    if importlib.util.find_spec("scipy_openblas32") is None:
        return ""
    import scipy_openblas32

    if re.search(r"[\s,'\"]", scipy_openblas32.get_lib_dir()):
        return ""  # THEANO_FLAGS and Theano's ldflags parser cannot carry such a path
    flags = [f"-L{scipy_openblas32.get_lib_dir()}", f"-l{scipy_openblas32.get_library()}"]
    flags += [f"-D{name}=scipy_{name}" for name in _BLAS_ROUTINES + _OPENBLAS_EXTRAS]
    return " ".join(flags)


def _parse_flags(text):
    """``'a=1,b=2'`` -> ``{'a': '1', 'b': '2'}`` (Theano's own THEANO_FLAGS syntax)."""
    flags = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        flags[key.strip()] = value.strip()
    return flags


def theano_flags(user_flags=None):
    """Return the THEANO_FLAGS string the project runs Theano with.

    Parameters
    ----------
    user_flags : str, optional
        The user's flags (default: the ``THEANO_FLAGS`` environment variable).
        Keys given there are kept as they are; the project's defaults fill in the rest.

    Returns
    -------
    str
    """
    user = _parse_flags(os.environ.get("THEANO_FLAGS", "") if user_flags is None else user_flags)
    lazy = {"base_compiledir": lambda: str(cache_dir("theano")), "blas.ldflags": blas_ldflags}
    merged = {}
    for key, value in DEFAULT_FLAGS.items():
        if key not in user:
            merged[key] = lazy[key]() if key in lazy else value
    merged.update(user)
    return ",".join(f"{key}={value}" for key, value in merged.items())


def _import_theano():
    if "theano" not in sys.modules:
        os.environ["THEANO_FLAGS"] = theano_flags()
        if _parse_flags(os.environ["THEANO_FLAGS"]).get("blas.ldflags") == "":
            # Expected with the empty ldflags: not worth a warning on every import.
            logging.getLogger("theano.tensor.blas").setLevel(logging.ERROR)
    import theano as _theano
    return _theano


theano = _import_theano()
import theano.tensor as T  # noqa: E402  (after configuration, on purpose)

floatX = theano.config.floatX

__all__ = ["theano", "T", "floatX", "theano_flags", "blas_ldflags"]
