"""Metrics against the reference values of docs/metrics.md (from pysaliency's own test suite)."""
import numpy as np
import pytest
from scipy.special import logsumexp

from repro import metrics
from repro.density import DensityModel
from repro.datasets import Fixations

SHAPE = (40, 40)


@pytest.fixture
def fixations():
    return Fixations(x=[0, 1, 2, 2, 2, 1, 5, 3], y=[10, 11, 12, 12, 12, 21, 25, 33], n=[0, 0, 0, 0, 0, 1, 1, 1])


def gaussian_map(shape=SHAPE):
    """s(x, y) = exp(-r^2 / (2 sqrt(W^2 + H^2))) around (W/2, H/2), as in docs/metrics.md."""
    height, width = shape
    rows, cols = np.mgrid[:height, :width]
    r_squared = (cols - 0.5 * width) ** 2 + (rows - 0.5 * height) ** 2
    return np.exp(-0.5 * r_squared / np.sqrt(width ** 2 + height ** 2))


@pytest.fixture
def maps():
    return [gaussian_map(), gaussian_map()]


@pytest.fixture
def gold_maps(fixations):
    return [metrics.fixation_map(SHAPE, fixations.x[fixations.n == n], fixations.y[fixations.n == n], sigma=10)
            for n in range(2)]


def test_log_likelihoods(maps, fixations):
    log_densities = [np.log(m) - logsumexp(np.log(m)) for m in maps]
    expected = [-10.276835, -9.764182, -9.286885, -9.286885, -9.286885, -9.057075, -8.067126, -9.905604]
    np.testing.assert_allclose(metrics.log_likelihoods(log_densities, fixations), expected, atol=1e-6)


def test_information_gain_over_itself_and_uniform(maps, fixations):
    log_densities = [np.log(m) - logsumexp(np.log(m)) for m in maps]
    ll = metrics.log_likelihoods(log_densities, fixations)
    uniform = metrics.log_uniform(fixations, [SHAPE, SHAPE])
    assert metrics.information_gain(ll, ll) == 0
    expected = np.mean(ll + np.log(1600)) / np.log(2)
    assert metrics.information_gain(ll, uniform) == pytest.approx(expected)
    per_image = np.mean([np.mean(ll[:5] + np.log(1600)), np.mean(ll[5:] + np.log(1600))]) / np.log(2)
    assert metrics.information_gain(ll, uniform, fixations, per="image") == pytest.approx(per_image)


def test_explained_information_and_pooled_sums(maps, fixations):
    """Explained information is IG(model) / IG(gold) over one baseline; folds pooled by their sums weigh every
    fixation the same, which is the explained information of all their fixations together."""
    ll = metrics.log_likelihoods([np.log(m) - logsumexp(np.log(m)) for m in maps], fixations)
    uniform = metrics.log_uniform(fixations, [SHAPE, SHAPE])
    gold = ll + np.linspace(0.5, 1.5, len(ll))
    ratio = np.sum(ll - uniform) / np.sum(gold - uniform)
    assert metrics.explained_information(ll, gold, uniform) == pytest.approx(ratio, rel=1e-12)
    per_image = [np.mean(ll[i] - uniform[i]) / np.mean(gold[i] - uniform[i]) for i in (slice(0, 5), slice(5, 8))]
    assert metrics.explained_information(ll, gold, uniform, fixations, per="image") == pytest.approx(
        np.mean([np.mean(ll[i] - uniform[i]) for i in (slice(0, 5), slice(5, 8))])
        / np.mean([np.mean(gold[i] - uniform[i]) for i in (slice(0, 5), slice(5, 8))]), rel=1e-12)
    assert not np.isclose(np.mean(per_image), ratio)                 # the two averages do differ here
    folds = [metrics.InformationSums.of(ll[i], uniform[i], gold[i]) for i in (slice(0, 3), slice(3, 8))]
    pooled = sum(folds, metrics.InformationSums())
    assert pooled.n == len(ll) and pooled.explained_information == pytest.approx(ratio, rel=1e-12)
    assert pooled.information_gain == pytest.approx(metrics.information_gain(ll, uniform), rel=1e-12)
    assert metrics.InformationSums(**pooled.as_dict()) == pooled
    with pytest.raises(ValueError, match="model log-likelihoods but"):
        metrics.InformationSums.of(ll, uniform[:3])


def test_metrics_take_a_density_model_a_function_or_indexed_maps(maps, fixations):
    log_densities = [np.log(m) - logsumexp(np.log(m)) for m in maps]
    expected = metrics.log_likelihoods(log_densities, fixations)

    class Maps(DensityModel):
        def log_density(self, n):
            return log_densities[n]

    for given in (Maps(), log_densities.__getitem__, dict(enumerate(log_densities)), np.stack(log_densities)):
        np.testing.assert_array_equal(metrics.log_likelihoods(given, fixations), expected)
    with pytest.raises(TypeError, match="expected a density model"):
        metrics.log_likelihoods(3.0, fixations)


def test_auc_uniform(maps, fixations):
    assert metrics.auc(maps, fixations) == pytest.approx(0.2403125, abs=1e-6)
    per_fixation = metrics.auc_per_fixation(maps, fixations)
    np.testing.assert_allclose([per_fixation[:5].mean(), per_fixation[5:].mean()], [0.196625, 0.313125], atol=1e-6)


def test_auc_constant_map_is_one_half(fixations):
    constant = [np.ones(SHAPE)] * 2
    np.testing.assert_allclose(metrics.auc_per_fixation(constant, fixations), 0.5)
    np.testing.assert_allclose(metrics.shuffled_auc_per_fixation(constant, fixations, [SHAPE, SHAPE]), 0.5)


def test_shuffled_auc(maps, fixations):
    values = metrics.shuffled_auc_per_fixation(maps, fixations, [SHAPE, SHAPE])
    np.testing.assert_allclose(values, [0, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1, 1, 0.2], atol=1e-6)


def test_shuffled_auc_rescales_other_images():
    fixations = Fixations(x=[3, 10], y=[1, 5], n=[0, 1])
    # image 1 is twice as large: its fixation (10, 5) lands at (5, 2) in image 0
    saliency_0 = np.zeros((4, 8))
    saliency_0[2, 5] = 1.0
    values = metrics.shuffled_auc_per_fixation([saliency_0, np.zeros((8, 16))], fixations, [(4, 8), (8, 16)])
    assert values[0] == 0.0   # the negative sits on the only salient pixel
    assert values[1] == 0.5   # constant map on image 1


def test_auc_judd(maps, fixations):
    assert metrics.auc_judd(maps, fixations, jitter=False) == pytest.approx(0.44504278856188684, abs=1e-6)


def test_nss(maps, fixations):
    assert metrics.nss(maps, fixations) == pytest.approx(-0.721682239593952, abs=1e-6)
    assert metrics.nss(maps, fixations, per="image") == pytest.approx(-0.706711609374163, abs=1e-6)


def test_cc(maps, gold_maps):
    assert metrics.per_image(metrics.cc, maps, gold_maps, [0, 1]).mean() == pytest.approx(-0.1542654, abs=1e-6)
    assert metrics.cc(np.ones(SHAPE), gold_maps[0]) == 0


def test_sim(maps, gold_maps):
    constant = [np.ones(SHAPE)] * 2
    assert metrics.per_image(metrics.sim, maps, constant, [0, 1]).mean() == pytest.approx(0.54392, abs=1e-6)
    assert metrics.per_image(metrics.sim, maps, gold_maps, [0, 1]).mean() == pytest.approx(0.315899, abs=1e-6)


def test_kl_divergence(maps, gold_maps):
    constant = [np.ones(SHAPE)] * 2
    kl = metrics.per_image(metrics.kl_divergence, maps, constant, [0, 1]).mean()
    assert kl == pytest.approx(0.8396272788909165, abs=1e-6)
    kl = metrics.per_image(metrics.kl_divergence, maps, gold_maps, [0, 1]).mean()
    assert kl == pytest.approx(2.029283206727416, abs=1e-6)
    assert metrics.kl_divergence(maps[0], maps[0]) == pytest.approx(0, abs=1e-12)


def test_mit_kl_divergence_definition(maps, gold_maps):
    p1, p2 = maps[0] / maps[0].sum(), gold_maps[0] / gold_maps[0].sum()
    expected = np.sum(p2 * np.log(metrics.MIT_EPS + p2 / (p1 + metrics.MIT_EPS)))
    assert metrics.mit_kl_divergence(maps[0], gold_maps[0]) == pytest.approx(expected, rel=1e-12)
    assert metrics.mit_kl_divergence(maps[0], maps[0]) == pytest.approx(0, abs=1e-9)


def test_fixation_outside_image_is_an_error(maps):
    for x, y in [(40.5, 3), (-0.5, 3), (3, np.nan)]:
        with pytest.raises(ValueError, match=r"image 0: 1 fixation\(s\) missing or outside their image"):
            metrics.log_likelihoods(maps, Fixations(x=[x], y=[y], n=[0]))


@pytest.mark.parametrize("kind", ["ties", "continuous", "peaked"])
def test_auc_family_equals_brute_force(kind):
    """The binned counting is exact: compare with the definitions written out directly."""
    rng = np.random.RandomState({"ties": 0, "continuous": 1, "peaked": 2}[kind])
    shapes = [(30, 50), (40, 20), (25, 25)]
    if kind == "ties":
        maps = [rng.randint(0, 6, shape).astype(float) for shape in shapes]
    elif kind == "continuous":
        maps = [rng.randn(*shape) for shape in shapes]
    else:
        maps = [np.exp(20 * rng.rand(*shape)) for shape in shapes]
    n = rng.randint(0, 3, 200)
    sizes = np.array(shapes)
    fixations = Fixations(x=rng.rand(200) * sizes[n, 1], y=rng.rand(200) * sizes[n, 0], n=n)
    values = [maps[k][int(y), int(x)] for x, y, k in zip(fixations.x, fixations.y, fixations.n)]

    expected = [np.mean(maps[k] < v) + 0.5 * np.mean(maps[k] == v) for v, k in zip(values, fixations.n)]
    np.testing.assert_allclose(metrics.auc_per_fixation(maps, fixations), expected, rtol=1e-12)

    expected = []
    for v, k in zip(values, fixations.n):
        others = fixations.n != k
        rows = (fixations.y[others] * (sizes[k, 0] / sizes[fixations.n[others], 0])).astype(int)
        cols = (fixations.x[others] * (sizes[k, 1] / sizes[fixations.n[others], 1])).astype(int)
        negatives = maps[k][rows, cols]
        expected.append(np.mean(negatives < v) + 0.5 * np.mean(negatives == v))
    np.testing.assert_allclose(metrics.shuffled_auc_per_fixation(maps, fixations, sizes), expected, rtol=1e-12)

    expected = []
    for k in range(3):
        chosen = fixations.n == k
        positives = maps[k][fixations.y_int[chosen], fixations.x_int[chosen]]
        fixated = np.zeros(shapes[k], bool)
        fixated[fixations.y_int[chosen], fixations.x_int[chosen]] = True
        negatives = maps[k][~fixated]
        thresholds = np.sort(np.r_[max(positives.max(), negatives.max()) + 1, positives,
                                   min(positives.min(), negatives.min())])[::-1]
        hits = [0] + [np.mean(positives >= t) for t in thresholds]
        false_alarms = [0] + [np.mean(negatives >= t) for t in thresholds]
        expected.append(np.trapz(hits, false_alarms))
    np.testing.assert_allclose(metrics.auc_judd(maps, fixations, per_image=True), expected, rtol=1e-12)


def test_cell_maps_score_as_their_pixel_maps():
    """A map constant on cells gives the same log-likelihoods, AUC and shuffled AUC as its pixel array."""
    rng = np.random.RandomState(5)
    row_cell, col_cell = np.repeat(np.arange(4), [3, 5, 5, 2]), np.repeat(np.arange(3), [4, 4, 1])
    maps = [metrics.CellMap(np.round(rng.randn(4, 3), 1), row_cell, col_cell) for _ in range(3)]
    fixations = Fixations(x=rng.rand(60) * 9, y=rng.rand(60) * 15, n=rng.randint(0, 3, 60))
    arrays = [np.asarray(m) for m in maps]
    assert arrays[0].shape == (15, 9) and arrays[0][14, 8] == maps[0].values[3, 2]
    np.testing.assert_array_equal(metrics.log_likelihoods(maps, fixations), metrics.log_likelihoods(arrays, fixations))
    np.testing.assert_allclose(metrics.auc_per_fixation(maps, fixations), metrics.auc_per_fixation(arrays, fixations),
                               rtol=1e-12)
    sizes = np.tile([15, 9], (3, 1))
    np.testing.assert_allclose(metrics.shuffled_auc_per_fixation(maps, fixations, sizes),
                               metrics.shuffled_auc_per_fixation(arrays, fixations, sizes), rtol=1e-12)
    assert metrics.nss(maps, fixations) == pytest.approx(metrics.nss(arrays, fixations))
