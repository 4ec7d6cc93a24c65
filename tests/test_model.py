"""The DeepGaze I readout graph (repro.model), checked against independent computations."""
import numpy as np
import pytest
from scipy.special import logsumexp
from skimage.transform import resize

from repro.centerbias import resize_operator
from repro.features import interpolation_matrix, resize_matrix
from repro.model import DeepGazeI

RNG = np.random.RandomState(0)
FEATURES = [RNG.rand(4, 13, 17).astype("float32"), RNG.rand(3, 7, 9).astype("float32")]
LOG_CB = np.log(RNG.dirichlet(np.ones(50 * 60)).reshape(50, 60)).astype("float32")


@pytest.mark.parametrize("n_out, n_in", [(40, 13), (13, 40), (17, 17), (5, 1)])
def test_resize_matrix_is_scikit_image_bilinear_resize(n_out, n_in):
    signal = RNG.rand(n_in, 3)
    expected = resize(signal, (n_out, 3), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(resize_matrix(n_out, n_in) @ signal, expected, atol=1e-6)


def test_interpolation_matrix_is_np_interp_and_contains_the_stretch():
    source, target = np.sort(RNG.rand(6)) * 10, RNG.rand(20) * 14 - 2
    values = RNG.rand(6)
    np.testing.assert_allclose(interpolation_matrix(target, source) @ values, np.interp(target, source, values),
                               atol=1e-6)
    # stretching 13 samples over 40 = sample j placed at (j + 0.5) * 40 / 13 - 0.5 output pixels
    np.testing.assert_allclose(interpolation_matrix(np.arange(40), (np.arange(13) + 0.5) * 40 / 13 - 0.5),
                               resize_operator(40, 13), atol=1e-6)
    with pytest.raises(ValueError, match="increase"):
        interpolation_matrix(target, source[::-1])


def test_receptive_field_geometry_puts_a_unit_where_it_looks():
    """A single active unit (row 2, column 3) of a 5 x 7 map whose units sit at -20 + 20 i pixels."""
    features = [np.zeros((1, 5, 7), "float32")]
    features[0][0, 2, 3] = 1
    flat = np.zeros((60, 80), "float32")
    aligned = DeepGazeI(["conv"], [1], [1.0], w=[8.0], sigma=0.3, alpha=0, geometry=[(-20.0, 20.0)])
    peak = np.unravel_index(np.argmax(aligned.log_density_from_features(features, flat)), flat.shape)
    assert peak == (20, 40) or peak == (19, 39)                # pixel centres 19.5 / 20.5 are equally near 20
    stretched = DeepGazeI(["conv"], [1], [1.0], w=[8.0], sigma=0.3, alpha=0)
    peak = np.unravel_index(np.argmax(stretched.log_density_from_features(features, flat)), flat.shape)
    assert abs(peak[0] - 2.5 * 60 / 5) <= 1 and abs(peak[1] - 3.5 * 80 / 7) <= 1     # cell centres, stretched
    with pytest.raises(ValueError, match="geometry"):
        DeepGazeI(["conv"], [1], [1.0], geometry=[(0.0, 0.0)])


def test_density_is_softmax_of_weighted_features_plus_centre_bias():
    """One layer at image size and a vanishing blur: the graph must be log_softmax(w . r + alpha c)."""
    features = [RNG.rand(5, 50, 60).astype("float32")]
    scales = RNG.rand(5) + 0.5
    w = RNG.randn(5)
    model = DeepGazeI(["conv"], [5], scales, w=w, sigma=1e-3, alpha=0.8)
    output = np.tensordot(w * scales, features[0], axes=1) + 0.8 * LOG_CB
    expected = output - logsumexp(output)
    np.testing.assert_allclose(model.log_density_from_features(features, LOG_CB), expected, atol=2e-5)


def test_density_sums_to_one_and_constant_saliency_leaves_the_prior():
    model = DeepGazeI(["a", "b"], [4, 3], np.ones(7), w=RNG.randn(7), sigma=1.5, alpha=0.7)
    log_density = model.log_density_from_features(FEATURES, LOG_CB)
    assert log_density.shape == (50, 60)
    assert np.exp(log_density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-5)

    constant = [np.ones_like(f) for f in FEATURES]      # a constant map survives rescaling and blur
    prior_only = model.log_density_from_features(constant, LOG_CB)
    expected = 0.7 * LOG_CB - logsumexp(0.7 * LOG_CB)
    np.testing.assert_allclose(prior_only, expected, atol=2e-5)


def test_blur_smooths_the_saliency():
    peaked = [np.zeros((1, 21, 21), "float32")]
    peaked[0][0, 10, 10] = 1
    uniform_prior = np.zeros((21, 21), "float32")
    sharp = DeepGazeI(["a"], [1], [1.0], w=[5.0], sigma=0.01, alpha=0).log_density_from_features(peaked, uniform_prior)
    wide = DeepGazeI(["a"], [1], [1.0], w=[5.0], sigma=3.0, alpha=0).log_density_from_features(peaked, uniform_prior)
    assert sharp.argmax() == wide.argmax() == 10 * 21 + 10
    assert np.exp(sharp).max() > np.exp(wide).max()
    assert wide[10, 13] > sharp[10, 13]


def test_gradient_matches_finite_differences():
    model = DeepGazeI(["a", "b"], [4, 3], np.ones(7), w=RNG.randn(7), sigma=1.5, alpha=0.7)
    fixations = RNG.randint(0, 50 * 60, size=30)
    value, grad = model.loglik_and_grad(FEATURES, LOG_CB, fixations)
    assert value == pytest.approx(model.log_density_from_features(FEATURES, LOG_CB).ravel()[fixations].sum(),
                                  rel=1e-5)
    theta = model.parameters
    for key, index, eps in [("w", 2, 0.05), ("log_sigma", (), 0.05), ("alpha", (), 0.05)]:
        up, down = model.parameters, model.parameters
        up[key][index] += eps
        down[key][index] -= eps
        numeric = (model.loglik_and_grad(FEATURES, LOG_CB, fixations, up)[0]
                   - model.loglik_and_grad(FEATURES, LOG_CB, fixations, down)[0]) / (2 * eps)
        assert grad[key][index] == pytest.approx(numeric, rel=2e-2, abs=2e-2), key
    assert model.parameters["w"] == pytest.approx(theta["w"])


def test_penalty_gradient_and_zero_weights():
    model = DeepGazeI(["a"], [3], np.ones(3), w=[0.5, -2.0, 1.0], regularization=0.1)
    value, grad = model.penalty_and_grad()
    assert value == pytest.approx(0.1 * 3.5 / np.sqrt(5.25))
    eps = 1e-6
    for k in range(3):
        theta = model.parameters
        theta["w"][k] += eps
        assert grad[k] == pytest.approx((model.penalty_and_grad(theta)[0] - value) / eps, rel=1e-4)
    with pytest.raises(FloatingPointError):
        model.penalty_and_grad({"w": np.zeros(3)})


def test_save_load_round_trip_and_bad_files(tmp_path):
    model = DeepGazeI(["conv5"], [3], [1.0, 2.0, 3.0], w=[0.1, -0.2, 0.3], sigma=2.5, alpha=0.4,
                      metadata={"dataset": "osie", "split": "train"}, geometry=[(-113.0, 32.0)])
    model.save(tmp_path / "m.h5")
    back = DeepGazeI.load(tmp_path / "m.h5")
    assert (back.layers, back.channels, back.sigma, back.alpha, back.metadata, back.geometry) == \
           (model.layers, model.channels, 2.5, 0.4, model.metadata, ((-113.0, 32.0),))
    np.testing.assert_array_equal(back.w, model.w)
    np.testing.assert_array_equal(back.feature_scales, model.feature_scales)
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]        # no temporary file left

    (tmp_path / "other.h5").write_bytes(b"")
    with pytest.raises(OSError):
        DeepGazeI.load(tmp_path / "other.h5")
    with pytest.raises(ValueError, match="channel"):
        model.log_density_from_features([np.ones((4, 5, 5), "float32")], np.zeros((5, 5), "float32"))
