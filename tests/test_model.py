"""The DeepGaze I readout graph (repro.model), checked against independent computations."""
import h5py
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import logsumexp

from repro.model import DeepGazeI, Stacker
from repro.resampling import Geometry

RNG = np.random.RandomState(0)
FEATURES = [RNG.rand(4, 13, 17).astype("float32"), RNG.rand(3, 7, 9).astype("float32")]
LOG_CB = np.log(RNG.dirichlet(np.ones(50 * 60)).reshape(50, 60)).astype("float32")
#: Two layers with units every 4 and 8 px, a grid every 2 px (25 x 30 cells on the 50 x 60 image).
GEOMETRY = Geometry(((1.0, 4.0), (-2.0, 8.0)), (1.0, 2.0))
#: Every layer and the grid at the pixel centres: the readout at pixel resolution.
PIXELS = Geometry(((0.5, 1.0),), (0.5, 1.0))


def test_receptive_field_placement_puts_a_unit_where_it_looks():
    """A single active unit (row 2, column 3) of a 5 x 7 map whose units sit at -20 + 20 i pixels."""
    features = [np.zeros((1, 5, 7), "float32")]
    features[0][0, 2, 3] = 1
    flat = np.zeros((60, 80), "float32")
    model = DeepGazeI(["conv"], [1], [1.0], Geometry(((-20.0, 20.0),), (0.0, 4.0)), w=[8.0], sigma=0.3, alpha=0)
    density = model.log_density_from_features(features, flat)
    peak = np.unravel_index(np.argmax(density), flat.shape)
    assert 18 <= peak[0] < 22 and 38 <= peak[1] < 42           # the 4 x 4 px cell centred on (20, 40)
    with pytest.raises(ValueError, match="Geometry"):
        DeepGazeI(["conv"], [1], [1.0], [(0.0, 1.0)])


def test_density_at_pixel_resolution_is_softmax_of_weighted_features_plus_centre_bias():
    """Grid = pixels and a vanishing blur: the graph must be log_softmax(w . r + alpha c)."""
    features = [RNG.rand(5, 50, 60).astype("float32")]
    scales = RNG.rand(5) + 0.5
    w = RNG.randn(5)
    model = DeepGazeI(["conv"], [5], scales, PIXELS, w=w, sigma=1e-3, alpha=0.8)
    output = np.tensordot(w * scales, features[0], axes=1) + 0.8 * LOG_CB
    np.testing.assert_allclose(model.log_density_from_features(features, LOG_CB), output - logsumexp(output),
                               atol=2e-5)


def test_coarse_grid_density_is_the_cell_mass_spread_over_its_pixels():
    """Compared with an independent numpy readout: interpolate to cell centres, blur, prior in cells, softmax."""
    model = DeepGazeI(["a", "b"], [4, 3], RNG.rand(7) + 0.5, GEOMETRY, w=RNG.randn(7), sigma=1.5, alpha=0.7)
    density = model.log_density_from_features(FEATURES, LOG_CB)
    assert density.shape == (50, 60)
    assert np.exp(density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-5)

    centres = 1.0 + 2.0 * np.arange(25), 1.0 + 2.0 * np.arange(30)    # cell centres (pixels)
    saliency = np.zeros((25, 30))
    effective = model.w * model.feature_scales
    for maps, weights, (first, step) in zip(FEATURES, (effective[:4], effective[4:]), GEOMETRY.units):
        layer_sum = np.tensordot(weights, maps, axes=1)
        rows, cols = first + step * np.arange(maps.shape[1]), first + step * np.arange(maps.shape[2])
        along_x = np.stack([np.interp(centres[1], cols, row) for row in layer_sum])
        saliency += np.stack([np.interp(centres[0], rows, column) for column in along_x.T], axis=1)
    i = np.arange(25.0)
    blur_y = np.exp(-(i[:, None] - i[None]) ** 2 / (2 * 1.5 ** 2))
    j = np.arange(30.0)
    blur_x = np.exp(-(j[:, None] - j[None]) ** 2 / (2 * 1.5 ** 2))
    blurred = (blur_y / blur_y.sum(1, keepdims=True)) @ saliency @ (blur_x / blur_x.sum(1, keepdims=True)).T
    prior = np.log(np.exp(LOG_CB.astype(np.float64)).reshape(25, 2, 30, 2).sum(axis=(1, 3)))
    output = blurred + 0.7 * prior
    expected = np.repeat(np.repeat(output - logsumexp(output) - np.log(4), 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(density, expected, atol=3e-5)


def test_constant_saliency_leaves_the_prior_in_each_cell():
    model = DeepGazeI(["a", "b"], [4, 3], np.ones(7), GEOMETRY, w=RNG.randn(7), sigma=1.5, alpha=1.0)
    constant = [np.ones_like(f) for f in FEATURES]           # a constant map survives interpolation and blur
    density = model.log_density_from_features(constant, LOG_CB)
    cells = np.exp(LOG_CB.astype(np.float64)).reshape(25, 2, 30, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(np.exp(density[::2, ::2]) * 4, cells, rtol=1e-4)


def test_blur_smooths_the_saliency():
    peaked = [np.zeros((1, 21, 21), "float32")]
    peaked[0][0, 10, 10] = 1
    uniform_prior = np.zeros((21, 21), "float32")
    sharp = DeepGazeI(["a"], [1], [1.0], PIXELS, w=[5.0], sigma=0.01, alpha=0).log_density_from_features(
        peaked, uniform_prior)
    wide = DeepGazeI(["a"], [1], [1.0], PIXELS, w=[5.0], sigma=3.0, alpha=0).log_density_from_features(
        peaked, uniform_prior)
    assert sharp.argmax() == wide.argmax() == 10 * 21 + 10
    assert np.exp(sharp).max() > np.exp(wide).max()
    assert wide[10, 13] > sharp[10, 13]
    # sigma is in grid cells: a renormalised Gaussian blur of the saliency at pixel resolution
    expected = gaussian_filter(5.0 * peaked[0][0].astype(np.float64), 3.0, mode="constant", truncate=20)
    expected /= gaussian_filter(np.ones((21, 21)), 3.0, mode="constant", truncate=20)
    np.testing.assert_allclose(wide, expected - logsumexp(expected), atol=2e-5)


def test_loglik_is_the_pixel_log_density_at_the_fixations_and_its_gradient_matches_finite_differences():
    model = DeepGazeI(["a", "b"], [4, 3], np.ones(7), GEOMETRY, w=RNG.randn(7), sigma=1.5, alpha=0.7)
    x, y = RNG.rand(30) * 60, RNG.rand(30) * 50
    grid = model.grid(LOG_CB.shape, FEATURES)
    prior = grid.log_cell_sums(LOG_CB)[None]
    counts = grid.counts(x, y)[None]
    value, grad = model.loglik_and_grad(Stacker(reuse=False)([FEATURES]), grid, prior, counts)
    density = model.log_density_from_features(FEATURES, LOG_CB)
    assert value == pytest.approx(density[y.astype(int), x.astype(int)].sum(), rel=1e-5)
    theta = model.parameters
    for key, index, eps in [("w", 2, 0.05), ("log_sigma", (), 0.05), ("alpha", (), 0.05)]:
        up, down = model.parameters, model.parameters
        up[key][index] += eps
        down[key][index] -= eps
        numeric = (model.loglik_and_grad(Stacker(reuse=False)([FEATURES]), grid, prior, counts, up)[0]
                   - model.loglik_and_grad(Stacker(reuse=False)([FEATURES]), grid, prior, counts, down)[0]) / (2 * eps)
        assert grad[key][index] == pytest.approx(numeric, rel=2e-2, abs=2e-2), key
    assert model.parameters["w"] == pytest.approx(theta["w"])


def test_a_stack_of_images_equals_the_images_one_by_one():
    model = DeepGazeI(["a", "b"], [4, 3], np.ones(7), GEOMETRY, w=RNG.randn(7), sigma=1.5, alpha=0.7)
    other = [RNG.rand(*f.shape).astype("float32") for f in FEATURES]
    grid = model.grid(LOG_CB.shape, FEATURES)
    priors = np.stack([grid.log_cell_sums(LOG_CB), np.log(grid.pixels)])
    both = model.log_mass(Stacker(reuse=False)([FEATURES, other]), grid, priors)
    for maps, prior, mass in zip([FEATURES, other], priors, both):
        np.testing.assert_allclose(model.log_mass(Stacker(reuse=False)([maps]), grid, prior[None])[0], mass, atol=1e-6)


def test_save_load_round_trip_and_bad_files(tmp_path):
    model = DeepGazeI(["conv5"], [3], [1.0, 2.0, 3.0], Geometry(((-113.0, 32.0),), (-9.0, 8.0)),
                      w=[0.1, -0.2, 0.3], sigma=2.5, alpha=0.4, metadata={"dataset": "osie", "split": "train"})
    model.save(tmp_path / "m.h5")
    back = DeepGazeI.load(tmp_path / "m.h5")
    assert (back.layers, back.channels, back.sigma, back.alpha, back.metadata, back.geometry) == \
           (model.layers, model.channels, 2.5, 0.4, model.metadata, model.geometry)
    np.testing.assert_array_equal(back.w, model.w)
    np.testing.assert_array_equal(back.feature_scales, model.feature_scales)
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]        # no temporary file left

    (tmp_path / "other.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"other\.h5: not a readable DeepGaze I model file"):
        DeepGazeI.load(tmp_path / "other.h5")
    with pytest.raises(FileNotFoundError):
        DeepGazeI.load(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["format"] = "deepgaze1-repro readout 1"
    with pytest.raises(ValueError, match="retrain"):
        DeepGazeI.load(tmp_path / "old.h5")
    with pytest.raises(ValueError, match="channel"):
        model.log_density_from_features([np.ones((4, 5, 5), "float32")], np.zeros((5, 5), "float32"))
