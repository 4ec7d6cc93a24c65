"""Centre bias: leave-one-image-out shortcut against explicit maps, fitting, and OSIE."""
import numpy as np
import pytest
from scipy.special import logsumexp

from repro import metrics
from repro.centerbias import CenterBias, fit_center_bias, loo_kde_values
from repro.datasets import Fixations, load_osie
from repro.resampling import Geometry, resize_operator

SIZES = np.array([(30, 40), (30, 40), (20, 50), (30, 40), (20, 50)])


def synthetic_fixations(count=400, seed=0):
    """Fixations scattered around the image centres of SIZES, with some duplicates."""
    rng = np.random.RandomState(seed)
    n = rng.randint(0, len(SIZES), count)
    height, width = SIZES[n, 0], SIZES[n, 1]
    x = np.clip(width * (0.5 + 0.15 * rng.randn(count)), 0, width - 0.01)
    y = np.clip(height * (0.5 + 0.15 * rng.randn(count)), 0, height - 0.01)
    x[:20], y[:20], n[:20] = 7.5, 3.25, 0
    return Fixations(x=x, y=y, n=n, subject=rng.randint(0, 4, count))


def test_loo_shortcut_equals_explicit_maps():
    fixations = synthetic_fixations()
    center_bias = CenterBias(SIZES, fixations, bandwidth=0.05, eps=0.01)
    fast = center_bias.log_likelihoods()
    explicit = metrics.log_likelihoods(center_bias, fixations)
    np.testing.assert_allclose(fast, explicit, rtol=1e-10)


def test_log_density_is_normalised_and_leaves_the_image_out():
    fixations = synthetic_fixations()
    center_bias = CenterBias(SIZES, fixations, bandwidth=0.05, eps=1e-3)
    for n in range(len(SIZES)):
        assert logsumexp(center_bias.log_density(n=n)) == pytest.approx(0, abs=1e-12)
    assert logsumexp(center_bias.log_density_of(np.zeros((17, 23, 3), np.uint8))) == pytest.approx(0, abs=1e-12)
    # a dataset image at half resolution: leave-one-out at another size
    half = center_bias.log_density(n=0, shape=(15, 20))
    assert half.shape == (15, 20) and logsumexp(half) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match=r"expected an image \(H, W, 3\).*shape \(2,\)"):
        center_bias.log_density_of((17, 23))                 # a shape is not an image
    # moving image 0's fixations changes every density but image 0's own
    moved = fixations.filter(np.arange(len(fixations)))
    moved.x[moved.n == 0] = 0.0
    other = CenterBias(SIZES, moved, bandwidth=0.05, eps=1e-3)
    np.testing.assert_allclose(other.log_density(n=0), center_bias.log_density(n=0))
    assert not np.allclose(other.log_density(n=1), center_bias.log_density(n=1))


def test_pixel_density_is_scipys_blur_of_the_other_images_histogram(monkeypatch):
    """The density of image n (its fixations left out) against scipy's blur of the explicit histogram, keeping the
    blur operators of one shape only, so that images of other shapes replace them in turn."""
    from scipy.ndimage import gaussian_filter

    import repro.centerbias as centerbias

    monkeypatch.setattr(centerbias, "KEPT_SHAPES", 1)
    fixations = synthetic_fixations()
    center_bias = CenterBias(SIZES, fixations, bandwidth=0.05, eps=0.0)
    for n in [0, 2, 1, 2, 4, 0]:
        shape = tuple(SIZES[n])
        others = fixations.filter(fixations.n != n)
        rows, cols = centerbias._pixels_at(others, SIZES, shape)
        histogram = np.zeros(shape)
        np.add.at(histogram, (rows, cols), 1.0)
        blurred = gaussian_filter(histogram, (0.05 * shape[0], 0.05 * shape[1]), mode="reflect")
        np.testing.assert_allclose(np.exp(center_bias.log_density(n)), blurred / blurred.sum(), rtol=1e-9,
                                   atol=1e-15)
    assert len(center_bias._pixels) == 1


def test_fit_is_a_maximum_of_the_loo_likelihood():
    fixations = synthetic_fixations(seed=1)
    fitted = fit_center_bias(SIZES, fixations)
    best = fitted.log_likelihoods().sum()
    for factor in (0.7, 1.4):
        assert CenterBias(SIZES, fixations, fitted.bandwidth * factor, fitted.eps).log_likelihoods().sum() < best
    for eps in (0.5 * fitted.eps + 1e-4, min(1, 2 * fitted.eps + 1e-3)):
        assert CenterBias(SIZES, fixations, fitted.bandwidth, eps).log_likelihoods().sum() < best


def test_kde_values_sum_to_one_over_the_image():
    """Probing every pixel of an image that has no fixations of its own: the densities sum to 1."""
    fixations = synthetic_fixations(count=100)
    fixations = fixations.filter(fixations.n != 2)
    height, width = SIZES[2]
    rows, cols = np.mgrid[:height, :width]
    probes = Fixations(x=cols.ravel() + 0.5, y=rows.ravel() + 0.5, n=np.full(rows.size, 2))
    values = loo_kde_values(Fixations.concatenate([fixations, probes]), SIZES, 0.05)
    assert values[len(fixations):].sum() == pytest.approx(1.0, rel=1e-9)


def test_frame_variant_matches_plain_estimate_at_frame_size():
    fixations = synthetic_fixations()
    sizes = np.tile([30, 40], (len(SIZES), 1))
    fixations = fixations.filter(fixations.x < 40)
    fixations.y = np.minimum(fixations.y, 29.9)
    plain = CenterBias(sizes, fixations, 0.05, 0.01)
    framed = CenterBias(sizes, fixations, 0.05, 0.01, frame=(30, 40))
    np.testing.assert_allclose(framed.log_density(n=1), plain.log_density(n=1), rtol=1e-10)
    rescaled = framed.log_density_of(np.zeros((61, 83)))
    assert rescaled.shape == (61, 83) and logsumexp(rescaled) == pytest.approx(0, abs=1e-12)
    fixations = synthetic_fixations()
    fitted = fit_center_bias(SIZES, fixations, frame=(100, 100))
    assert 1e-3 < fitted.bandwidth < 0.3
    explicit = metrics.log_likelihoods(fitted, fixations)
    np.testing.assert_allclose(fitted.log_likelihoods(), explicit, rtol=1e-10)


@pytest.mark.parametrize("frame", [None, (100, 100)])
def test_cell_masses_are_the_pixel_density_summed_over_cells(frame):
    """The readout's centre bias in cells, computed without the pixel-resolution blur."""
    fixations = synthetic_fixations()
    center_bias = CenterBias(SIZES, fixations, bandwidth=0.05, eps=0.01, frame=frame)
    geometry = Geometry(((0.0, 4.0),), (-1.5, 3.0))
    for n in (0, 2, 3):
        grid = geometry.readout_grid(SIZES[n], [(5, 5)])
        expected = grid.log_cell_sums(center_bias.log_density(n))
        np.testing.assert_allclose(center_bias.log_cell_mass(n, grid), expected, rtol=1e-10, atol=1e-12)
        assert logsumexp(expected) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="image 2"):
        center_bias.log_cell_mass(2, geometry.readout_grid(SIZES[0], [(5, 5)]))


def test_resize_operator():
    np.testing.assert_allclose(resize_operator(7, 7), np.eye(7))
    up = resize_operator(6, 3)
    np.testing.assert_allclose(up.sum(axis=1), 1)
    np.testing.assert_allclose(up @ np.array([0.0, 1.0, 2.0]), [0, 0.25, 0.75, 1.25, 1.75, 2])


@pytest.fixture(scope="module")
def osie(osie_dir):
    return load_osie(osie_dir, keep_first=True)


def test_osie_center_bias(osie):
    stimuli, fixations = osie
    center_bias = fit_center_bias(stimuli.sizes, fixations)
    # pysaliency's MIT1003 fit is 0.0215 of the image size; OSIE lands near it
    assert 0.015 < center_bias.bandwidth < 0.04
    ig = metrics.information_gain(center_bias.log_likelihoods(), metrics.log_uniform(fixations, stimuli.sizes))
    assert 0.4 < ig < 0.8


def test_template_is_the_framed_centre_bias_at_any_size_and_survives_a_file(tmp_path):
    from repro.centerbias import CenterBiasTemplate
    rng = np.random.RandomState(3)
    sizes = [(60, 80), (90, 50), (70, 70)]
    n = rng.randint(0, 3, 300)
    h, w = np.asarray(sizes)[n].T
    fixations = Fixations(x=np.clip(rng.normal(w / 2, w / 6), 0, w - 1), y=np.clip(rng.normal(h / 2, h / 6), 0, h - 1),
                          n=n, subject=rng.randint(0, 4, 300))
    fitted = fit_center_bias(sizes, fixations, frame=(100, 100))
    template = CenterBiasTemplate.from_center_bias(fitted, source="synthetic")
    template.save(tmp_path / "cb.npz")
    loaded = CenterBiasTemplate.load(tmp_path / "cb.npz")
    for shape in [(37, 123), (600, 800), (100, 100)]:
        image = np.zeros(shape + (3,), np.uint8)
        np.testing.assert_allclose(loaded.log_density_of(image), fitted.log_density_of(image), rtol=1e-12)
        assert np.exp(loaded.log_density_of(image)).sum() == pytest.approx(1, abs=1e-12)
    with pytest.raises(TypeError, match="knows no dataset images"):
        loaded.log_density(0)
    assert (tmp_path / "cb.npz").stat().st_size < 100_000 and loaded.source == "synthetic"
    (tmp_path / "bad.npz").write_bytes(b"no template")
    with pytest.raises(ValueError, match="bad.npz: not a centre-bias template"):
        CenterBiasTemplate.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="only a centre bias fitted in a frame"):
        CenterBiasTemplate.from_center_bias(fit_center_bias(sizes, fixations))
