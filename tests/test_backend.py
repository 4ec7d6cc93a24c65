"""The Theano backend: configuration, and a real conv2d graph with its gradient."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from repro import backend
from repro.backend import T, theano


def _theano_config_in_fresh_process(flags):
    code = ("from repro.backend import theano; c = theano.config; "
            "print(c.floatX, repr(c.blas.ldflags), c.base_compiledir, sep='\\n')")
    env = {k: v for k, v in os.environ.items() if k != "THEANO_FLAGS"}
    if flags is not None:
        env["THEANO_FLAGS"] = flags
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_project_defaults_are_in_force_without_user_flags(tmp_path):
    env_cache = os.environ.get("DEEPGAZE_CACHE")
    floatx, ldflags, compiledir = _theano_config_in_fresh_process(None)
    assert (floatx, ldflags) == ("float32", repr(backend.blas_ldflags()))
    assert compiledir.endswith("theano") and (env_cache is None or compiledir.startswith(env_cache))


def test_user_flags_win_key_by_key():
    flags = backend._parse_flags(backend.theano_flags("floatX=float64,blas.ldflags=-lblas"))
    assert flags["floatX"] == "float64"
    assert flags["blas.ldflags"] == "-lblas"
    assert "base_compiledir" in flags          # the project default fills in what the user left out
    assert flags["gcc.cxxflags"] == "-g0"
    assert backend._parse_flags(backend.theano_flags("gcc.cxxflags=-O1"))["gcc.cxxflags"] == "-O1"


def test_c_modules_are_compiled_without_debug_information(tmp_path):
    """The project's ``-g0`` comes after Theano's own ``-g`` on gcc's command line, so it wins: a module
    compiled in a fresh compile directory has no DWARF sections (with Theano's flags alone it has)."""
    code = ("from repro.backend import theano, T; x = T.vector(); "
            "theano.function([x], T.exp(x) * 3 + 1)([1.0]); print(theano.config.compiledir)")
    found = {}
    for name, flags in (("project", ""), ("theano", ",gcc.cxxflags=")):
        env = {**os.environ, "THEANO_FLAGS": f"base_compiledir={tmp_path / name}{flags}"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        modules = [p for p in Path(out.stdout.split()[-1]).glob("tmp*/*.so")]
        assert modules, f"no compiled module under {out.stdout}"
        found[name] = [b".debug_info" in p.read_bytes() for p in modules]
    assert not any(found["project"]) and all(found["theano"])


def test_user_theano_flags_reach_theano_in_a_fresh_process():
    floatx, ldflags, _ = _theano_config_in_fresh_process("floatX=float64")
    assert (floatx, ldflags) == ("float64", repr(backend.blas_ldflags()))  # user's key wins, defaults fill the rest
    floatx, ldflags, _ = _theano_config_in_fresh_process("blas.ldflags=")
    assert (floatx, ldflags) == ("float32", "''")          # NumPy's BLAS through its C-API, on request


def test_blas_ldflags_link_the_scipy_openblas_wheel_under_theanos_names():
    import scipy_openblas32

    flags = backend.blas_ldflags().split()
    assert f"-L{scipy_openblas32.get_lib_dir()}" in flags and "-lscipy_openblas" in flags
    assert {"-Dsgemm_=scipy_sgemm_", "-Dsgemv_=scipy_sgemv_", "-Ddgemm_=scipy_dgemm_"} <= set(flags)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc/self/maps")
def test_float32_and_float64_gemm_run_on_the_linked_openblas():
    rng = np.random.RandomState(0)
    for dtype in ("float32", "float64"):
        a, b, c = (rng.randn(*shape).astype(dtype) for shape in ((70, 50), (50, 60), (70, 60)))
        x, y, z = T.matrix(dtype=dtype), T.matrix(dtype=dtype), T.matrix(dtype=dtype)
        gemm = theano.function([x, y, z], 0.5 * z + 2 * T.dot(x, y))
        np.testing.assert_allclose(gemm(a, b, c), 0.5 * c + 2 * a @ b, rtol=1e-4, atol=1e-4)
    if backend.blas_ldflags():
        with open("/proc/self/maps") as maps:
            assert "libscipy_openblas" in maps.read()


def test_full_conv2d_matches_scipy_and_its_gradient_is_right():
    from theano.tensor.nnet import conv2d
    rng = np.random.RandomState(0)
    image = rng.randn(1, 2, 9, 7).astype("float32")
    kernels = rng.randn(3, 2, 3, 4).astype("float32")

    x = T.tensor4("x")
    w = theano.shared(kernels)
    out = conv2d(x, w, border_mode="full")                 # true convolution, zero-padded input
    cost = (out ** 2).sum()
    run = theano.function([x], [out, T.grad(cost, w)])
    value, gradient = run(image)

    expected = np.stack([sum(signal.convolve2d(image[0, c], kernels[k, c], mode="full") for c in range(2))
                         for k in range(3)])
    assert value.shape == (1, 3, 11, 10)
    np.testing.assert_allclose(value[0], expected, rtol=1e-4, atol=1e-4)

    # gradient against a central finite difference of the cost
    cost_of = theano.function([x], cost)
    eps, k = 1e-2, (1, 0, 2, 3)
    bumped = kernels.copy()
    bumped[k] += eps
    w.set_value(bumped)
    up = cost_of(image)
    bumped[k] -= 2 * eps
    w.set_value(bumped)
    down = cost_of(image)
    assert gradient[k] == pytest.approx((up - down) / (2 * eps), rel=1e-2)


def test_stored_functions_are_built_once_and_read_back_alike(tmp_path, monkeypatch, caplog):
    """A compiled function is pickled under <cache>/functions and read back by later calls (other processes) with
    the same key and sources; it computes the same; a damaged file is built again."""
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path))
    source = tmp_path / "graph.py"
    source.write_text("# the graph's source\n")
    x = T.matrix("x")
    weights = theano.shared(np.arange(6, dtype="float32").reshape(3, 2))
    built = []

    def build():
        built.append(1)
        return theano.function([x], T.dot(x, weights) + 1)

    first = backend.stored_function("test", ("k", 1), [source], build)
    again = backend.stored_function("test", ("k", 1), [source], build)
    value = np.ones((4, 3), np.float32)
    assert len(built) == 1 and again is not first
    np.testing.assert_array_equal(again(value), first(value))
    backend.stored_function("test", ("k", 2), [source], build)            # another key
    source.write_text("# the graph's source, changed\n")
    backend.stored_function("test", ("k", 1), [source], build)            # changed sources
    assert len(built) == 3
    path, = [p for p in (tmp_path / "functions").iterdir() if p.stat().st_mtime == max(
        q.stat().st_mtime for q in (tmp_path / "functions").iterdir())]
    path.write_bytes(b"damaged")
    rebuilt = backend.stored_function("test", ("k", 1), [source], build)
    assert len(built) == 4 and "not readable" in caplog.text
    np.testing.assert_array_equal(rebuilt(value), first(value))
    monkeypatch.setattr(backend, "STORED_FUNCTIONS", 2)                  # only the most recently used are kept
    backend.stored_function("test", ("k", 3), [source], build)
    assert len(list((tmp_path / "functions").iterdir())) == 2


def test_c_modules_of_ops_without_props_and_of_c_files_are_versioned():
    """Alloc (empty __props__) and DimShuffle (C code from files) get C modules kept between processes: their keys
    are versioned, and DimShuffle's version is the same in every process (not Python's randomised str hash)."""
    from theano.gof.cc import CLinker

    x = T.vector("x")
    f = theano.function([x], [T.alloc(np.float32(0), x.shape[0], 3), x.dimshuffle("x", 0)])
    for node in f.maker.fgraph.toposort():
        if type(node.op).__name__ in ("Alloc", "DimShuffle"):
            linker = CLinker().accept(theano.gof.FunctionGraph(*theano.gof.graph.clone(node.inputs, node.outputs)))
            assert linker.cmodule_key()[0], node
    code = ("from repro.backend import T; print(T.vector().dimshuffle('x', 0).owner.op.c_code_cache_version())")
    versions = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout for seed in (1, 2)}
    assert len(versions) == 1
