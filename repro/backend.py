"""The one place that configures and imports Theano.

Theano 1.0.5 reads its configuration once, from ``THEANO_FLAGS``, when it is
first imported. This module sets the project's defaults before that import:

* ``floatX=float32`` (Caffe's weights are float32),
* ``blas.ldflags=`` (an empty value makes Theano call NumPy's own BLAS through
  its C-API; without any value Theano 1.0.5 fails on modern NumPy looking for
  ``numpy.distutils.__config__.blas_opt_info``),
* ``base_compiledir`` under the project cache (:func:`repro.paths.cache_dir`).

Any of these that the user already gave in ``THEANO_FLAGS`` wins. Every other
module gets Theano from here::

    from repro.backend import theano, T
"""
import logging
import os
import sys

from .paths import cache_dir

#: The project's Theano defaults; user THEANO_FLAGS take precedence key by key.
DEFAULT_FLAGS = {
    "floatX": "float32",
    "blas.ldflags": "",
    "base_compiledir": None,  # filled in lazily: cache_dir("theano")
}


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
    merged = {}
    for key, value in DEFAULT_FLAGS.items():
        if key not in user:
            merged[key] = str(cache_dir("theano")) if key == "base_compiledir" else value
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

__all__ = ["theano", "T", "floatX", "theano_flags"]
