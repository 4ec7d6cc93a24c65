"""bfloat16 feature maps (repro.bfloat16): the C ops against float64 sums of the expanded maps, on real features."""
import numpy as np
import pytest

from repro.backend import T, theano
from repro.bfloat16 import Projection, WeightedSum, compact, expand, weighted_sum
from repro.datasets import load_osie
from repro.features import FeatureExtractor
from repro.model import DeepGazeI, Stacker, is_compact

RNG = np.random.RandomState(0)


@pytest.fixture(scope="module")
def real_maps(osie_dir, alexnet_full):
    """conv1 and conv5 maps ``(C, h, w)`` of two OSIE images, stacked ``(C, 2, h, w)`` and compact; their geometry."""
    stimuli, _ = load_osie(osie_dir, keep_first=False)
    extractor = FeatureExtractor(alexnet_full)
    per_image = [extractor.features(stimuli[n], ["conv1", "conv5"]) for n in (0, 1)]
    return [compact(s) for s in Stacker(reuse=False)(per_image)], extractor.geometry(["conv1", "conv5"])


def _ops(mode=None):
    """Compiled ``(w, maps, g) -> (weighted sum, its gradient w.r.t. w for the cost <sum, g>)``."""
    w, maps, g = T.fvector(), T.tensor4(dtype="uint16"), T.tensor3()
    total = weighted_sum(w, maps)
    return theano.function([w, maps, g], [total, T.grad((total * g).sum(), w)], mode=mode)


def _reference(w, maps, g):
    """float64 sums of the expanded maps."""
    values = expand(maps).astype(np.float64)
    return np.tensordot(w.astype(np.float64), values, axes=1), np.tensordot(values, g.astype(np.float64), axes=3)


def test_c_ops_equal_float64_sums_of_the_expanded_real_maps(real_maps):
    run = _ops()
    assert any(isinstance(node.op, WeightedSum) for node in run.maker.fgraph.toposort())
    assert any(isinstance(node.op, Projection) for node in run.maker.fgraph.toposort())
    for maps in real_maps[0]:                               # conv1 (96 channels), conv5 (256)
        w = RNG.randn(maps.shape[0]).astype(np.float32)
        g = RNG.randn(*maps.shape[1:]).astype(np.float32)
        total, grad = run(w, maps, g)
        want_total, want_grad = _reference(w, maps, g)
        assert total.dtype == grad.dtype == np.float32 and total.shape == maps.shape[1:]
        np.testing.assert_allclose(total, want_total, rtol=1e-5, atol=1e-5 * np.abs(want_total).max())
        np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-5 * np.abs(want_grad).max())


def test_c_code_and_python_perform_agree_on_odd_shapes_and_views():
    c_run, py_run = _ops(), _ops(theano.compile.Mode(linker="py", optimizer="fast_run"))
    for shape in [(5, 3, 7, 9), (1, 1, 1, 1), (3, 2, 45, 47), (0, 2, 1, 1)]:   # blocks of 2048, lanes of 16: tails
        maps = compact(RNG.rand(*shape).astype(np.float32))
        w, g = RNG.randn(shape[0]).astype(np.float32), RNG.randn(*shape[1:]).astype(np.float32)
        for ours, theirs in zip(c_run(w, maps, g), py_run(w, maps, g)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        if shape[0]:
            np.testing.assert_allclose(c_run(w, maps, g)[0], _reference(w, maps, g)[0], rtol=1e-5, atol=1e-6)
    wide = compact(RNG.rand(2, 6, 4, 5).astype(np.float32))[:, ::2]           # not contiguous: read as its values
    w, g = RNG.randn(2).astype(np.float32), RNG.randn(3, 4, 5).astype(np.float32)
    np.testing.assert_allclose(c_run(w, wide, g)[1], _reference(w, np.ascontiguousarray(wide), g)[1], rtol=1e-5)


def test_bad_shapes_and_types_are_named():
    run = _ops()
    maps = compact(RNG.rand(4, 2, 3, 3).astype(np.float32))
    with pytest.raises(ValueError, match="3 weights for 4 channels"):
        run(np.ones(3, np.float32), maps, np.ones((2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        run(np.ones(4, np.float32), maps, np.ones((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="uint16 maps"):
        WeightedSum()(T.fvector(), T.tensor4())
    with pytest.raises(ValueError, match="mix"):
        is_compact([maps, expand(maps)])


@pytest.mark.slow
def test_the_readout_of_compact_stacks_is_that_of_their_expanded_maps(real_maps):
    """Saliency, log-likelihood and gradient from uint16 stacks equal those from the same values as float32."""
    stacks, geometry = real_maps
    channels = [m.shape[0] for m in stacks]
    model = DeepGazeI(["conv1", "conv5"], channels, RNG.rand(sum(channels)) + 0.5, geometry,
                      w=RNG.randn(sum(channels)) * 0.05, sigma=2.0, alpha=0.6)
    grid = model.grid((600, 800), stacks)
    log_prior = np.stack([np.log(grid.pixels / grid.pixels.sum())] * 2)
    counts = np.stack([grid.counts(RNG.rand(20) * 800, RNG.rand(20) * 600) for _ in range(2)])
    floats = [expand(m) for m in stacks]
    np.testing.assert_allclose(model.saliency(stacks, grid), model.saliency(floats, grid), rtol=1e-4, atol=1e-4)
    value, grad = model.loglik_and_grad(stacks, grid, log_prior, counts)
    want, want_grad = model.loglik_and_grad(floats, grid, log_prior, counts)
    assert value == pytest.approx(want, rel=1e-6)
    for key in grad:
        np.testing.assert_allclose(grad[key], want_grad[key], rtol=1e-3, atol=1e-4 * np.abs(want_grad["w"]).max())
