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
import hashlib
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


def _version_ops_without_props(linker_class):
    """Let Theano keep the C modules of ops whose ``__props__`` is empty across processes.

    Theano 1.0.5's ``CLinker.cmodule_key_`` puts every op's ``__props__`` among the versions of a C module's key,
    and any empty entry there makes the key *unversioned*: such a module is compiled again in every process and
    thrown away at its end. An empty ``__props__`` only says that all instances of the op are equal, not that its
    C code is unversioned; Theano's ``ScalarFromTensor``, ``Alloc`` and ``Dot22`` (in every network and readout
    graph here) and :class:`repro.bfloat16.WeightedSum` have one, and gcc compiled their four modules anew on every
    start of ``predict`` (4 s). This wrapper computes the key as Theano does and, when it came out unversioned,
    versions it after all if every op's ``c_code_cache_version_apply`` and every type's version is non-empty (the
    versions Theano checks otherwise; a change of any of them still changes the key).
    """
    original = linker_class.cmodule_key_
    if getattr(original, "versions_empty_props", False):
        return

    def cmodule_key_(self, fgraph, no_recycling, *args, **kwargs):
        key = original(self, fgraph, no_recycling, *args, **kwargs)
        if key is None or key[0]:
            return key
        version = []
        for node in self.schedule(fgraph):
            if hasattr(node.op, "c_code_cache_version_apply"):
                version.append(node.op.c_code_cache_version_apply(node))
            version.extend(v.type.c_code_cache_version() for v in node.inputs + node.outputs)
        if not version or not all(version):
            return key
        return ("empty __props__ versioned", *version), key[1]

    cmodule_key_.versions_empty_props = True
    linker_class.cmodule_key_ = cmodule_key_


def _stable_c_file_versions(cop_class):
    """Version Theano's ``COp`` (ops whose C code is read from files: ``DimShuffle``) the same in every process.

    Theano 1.0.5 versions them by Python's ``hash()`` of their C sources, which string hashing randomises per
    process: the key of their C module differs in every process, so the module is compiled again (1.5 s of a
    warm ``predict``) and the compile cache grows by one module per run. The SHA-1 of the same sources is stable.
    """
    if getattr(cop_class.c_code_cache_version, "stable", False):
        return

    def c_code_cache_version(self):
        digest = hashlib.sha1("\0".join(self.func_codes).encode()).hexdigest()
        version = (int(digest[:15], 16),)
        if hasattr(self, "params_type"):
            version += (self.params_type.c_code_cache_version(),)
        return version

    c_code_cache_version.stable = True
    cop_class.c_code_cache_version = c_code_cache_version


def stored_function(name, key, sources, build):
    """A compiled Theano function, kept between processes: unpickled from
    ``<cache>/functions/<name>-<digest>.pkl`` if an earlier process built it, else ``build()`` (then stored).

    Theano keeps only the C modules between processes; setting up a function again still optimises its graph
    (2-3 s for AlexNet's trunk, most of a warm ``predict``'s start). A pickled function holds the optimised
    graph, its shared variables' values (the network's weights) and the keys of its C modules, and is linked to
    them on loading, without optimising again. The digest covers ``key`` (what the graph is built from: weights'
    SHA-1, layers, ...), the files ``sources`` (the modules that build the graph), Theano's version and
    configuration and NumPy's version; a file that cannot be read is built and written again.

    Parameters
    ----------
    name : str
    key : anything with a stable ``repr``
    sources : list of str or Path
    build : callable
        ``() -> theano function``.
    """
    import pickle

    import numpy

    from .paths import atomic_path

    digest = hashlib.sha1(repr((key, theano.__version__, numpy.__version__, sys.version_info[:2],
                                theano.configparser.get_config_hash())).encode())
    for source in sources:
        digest.update(open(source, "rb").read())
    path = cache_dir("functions") / f"{name}-{digest.hexdigest()}.pkl"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _PICKLE_RECURSION))       # a graph pickles recursively, node by node
    try:
        if path.is_file():
            try:
                with open(path, "rb") as handle:
                    function = pickle.load(handle)
                os.utime(path)                              # recently used: kept by _prune_stored
                return function
            except Exception as err:               # noqa: BLE001  (damaged, or from another installation)
                logging.getLogger(__name__).warning("%s: stored Theano function not readable (%s: %s); compiling "
                                                    "it again", path, type(err).__name__, err)
        function = build()
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                pickle.dump(function, handle, protocol=pickle.HIGHEST_PROTOCOL)
            _prune_stored(path.parent, name)
        except Exception as err:                   # noqa: BLE001  (an op that does not pickle: compiled each time)
            logging.getLogger(__name__).warning("%s: Theano function not stored (%s: %s)", path, type(err).__name__,
                                                err)
        return function
    finally:
        sys.setrecursionlimit(limit)


#: The recursion limit while a compiled function is pickled or unpickled (AlexNet's 15 layers need some 4000).
_PICKLE_RECURSION = 20000
#: Stored functions kept per name, the most recently used (a network's holds its weights: 10 MB for AlexNet).
STORED_FUNCTIONS = 16


def _prune_stored(folder, name):
    """Delete all but the :data:`STORED_FUNCTIONS` most recently used stored functions of ``name``."""
    files = sorted(folder.glob(f"{name}-*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[STORED_FUNCTIONS:]:
        old.unlink(missing_ok=True)


def _remember_compiler_checks():
    """Run Theano's checks of the compiler once per machine, not once per process.

    Before its first C module, every process runs ``g++ -march=native -E -v``, compiles and runs a program
    with the flags found (``try_march_flag``) and one testing the BLAS's ``gemv`` (``check_force_gemv_init``):
    0.7 s of each warm ``predict``. Their results (the ``-march`` flags, which are part of every module's key,
    and a yes or no) are kept in ``<compiledir>/repro-compiler-checks.json`` with what they depend on (the
    compiler and its flags, the BLAS flags, the CPU's name and flags); when those differ, Theano checks again.
    """
    import json

    from theano.gof.cmodule import GCC_compiler
    from theano.tensor import blas_c

    try:
        cpu = [line for line in open("/proc/cpuinfo").read().splitlines()
               if line.startswith(("model name", "flags"))][:2]
    except OSError:
        return
    identity = [theano.config.cxx, theano.config.gcc.cxxflags, theano.config.blas.ldflags, cpu]
    path = os.path.join(theano.config.compiledir, "repro-compiler-checks.json")
    try:
        with open(path) as handle:
            stored = json.load(handle)
    except (OSError, ValueError):
        stored = {}
    if stored.get("identity") == identity and GCC_compiler.march_flags is None:
        GCC_compiler.march_flags = list(stored["march_flags"])
        blas_c.check_force_gemv_init._force_init_beta = bool(stored["force_gemv_init"])
        return
    GCC_compiler.compile_args()                      # Theano's own checks, this once
    record = {"identity": identity, "march_flags": GCC_compiler.march_flags,
              "force_gemv_init": bool(blas_c.check_force_gemv_init())}
    from .paths import atomic_path

    try:
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            json.dump(record, handle)
    except OSError:
        pass


theano = _import_theano()
import theano.tensor as T  # noqa: E402  (after configuration, on purpose)
from theano.gof import COp  # noqa: E402
from theano.gof.cc import CLinker  # noqa: E402

_version_ops_without_props(CLinker)
_stable_c_file_versions(COp)
if theano.config.cxx:
    _remember_compiler_checks()

floatX = theano.config.floatX

__all__ = ["theano", "T", "floatX", "theano_flags", "blas_ldflags", "stored_function", "STORED_FUNCTIONS"]
