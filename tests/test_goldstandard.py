"""Gold standard: pysaliency's KDE reference value, the leave-one-subject-out shortcut, fitting, OSIE."""
import numpy as np
import pytest
from scipy.special import logsumexp

from repro import metrics
from repro.centerbias import CenterBias, fit_center_bias
from repro.datasets import Fixations, load_osie, osie_split
from repro.goldstandard import GoldStandard, fit_gold_standard, fit_mixture_weights, kde_log_density


def test_kde_gold_reference_value():
    """docs/metrics.md, second case: per-image KDE of the image's own fixations, bandwidth 0.1."""
    fixations = Fixations(x=[15, 20, 25, 10, 30, 30, 20, 10], y=[13, 21, 10, 15, 35, 22, 5, 18],
                          n=[0, 0, 0, 0, 0, 1, 1, 1])
    shape = (40, 40)
    maps = [kde_log_density(shape, fixations.x[fixations.n == n] / 40, fixations.y[fixations.n == n] / 40, 0.1,
                            eps=1e-20) for n in range(2)]
    assert logsumexp(maps[0]) == pytest.approx(0, abs=1e-12)
    ll = metrics.log_likelihoods(maps, fixations)
    ig = metrics.information_gain(ll, metrics.log_uniform(fixations, [shape, shape]), fixations, per="image")
    assert ig == pytest.approx(2.1912009255501252, abs=1e-6)


SIZES = np.array([(30, 40), (20, 50), (30, 40)])


def synthetic_fixations(count=300, seed=0):
    """Three subjects looking at two shared hot spots per image, plus noise."""
    rng = np.random.RandomState(seed)
    n = rng.randint(0, len(SIZES), count)
    spot = rng.rand(count) < 0.5
    rel_x = np.where(spot, 0.3, 0.7) + 0.05 * rng.randn(count)
    rel_y = np.where(spot, 0.4, 0.6) + 0.05 * rng.randn(count)
    x = np.clip(rel_x * SIZES[n, 1], 0, SIZES[n, 1] - 0.01)
    y = np.clip(rel_y * SIZES[n, 0], 0, SIZES[n, 0] - 0.01)
    subject = rng.randint(0, 3, count)
    subject[n == 2] = 0          # a single observer on image 2: no other subjects to learn from
    return Fixations(x=x, y=y, n=n, subject=subject)


def test_loo_shortcut_equals_explicit_maps():
    fixations = synthetic_fixations()
    center_bias = CenterBias(SIZES, fixations, 0.1, 0.01)
    gold = GoldStandard(SIZES, fixations, center_bias, bandwidth=0.04, weights=[0.7, 0.2, 0.1])
    fast = gold.log_likelihoods()
    explicit = np.empty(len(fixations))
    for n in range(len(SIZES)):
        for s in range(3):
            chosen = (fixations.n == n) & (fixations.subject == s)
            log_density = gold.log_density(n, s)
            assert logsumexp(log_density) == pytest.approx(0, abs=1e-12)
            explicit[chosen] = log_density[fixations.y_int[chosen], fixations.x_int[chosen]]
    np.testing.assert_allclose(fast, explicit, rtol=1e-10)
    # without a subject: the density of a new observer, from every subject's fixations on the image
    everyone = gold.log_density(0)
    assert logsumexp(everyone) == pytest.approx(0, abs=1e-12)
    alone = GoldStandard(SIZES, fixations.filter(fixations.subject != 9), center_bias, 0.04, [0.7, 0.2, 0.1])
    np.testing.assert_allclose(everyone, alone.log_density(0, subject=9), rtol=1e-12)      # nobody left out
    assert not np.allclose(everyone, gold.log_density(0, 0))


def test_mixture_weights_em_recovers_known_weights():
    """Samples from a known mixture of three distributions over 10 outcomes."""
    rng = np.random.RandomState(0)
    components = rng.dirichlet(np.ones(10) * 0.3, size=3)          # (3, 10)
    truth = np.array([0.6, 0.3, 0.1])
    samples = rng.choice(10, size=50000, p=truth @ components)
    weights, mean_ll = fit_mixture_weights(components[:, samples].T)
    np.testing.assert_allclose(weights, truth, atol=0.02)
    assert weights.sum() == pytest.approx(1)
    assert mean_ll >= np.mean(np.log(components[:, samples].T @ truth))


def test_fit_beats_the_center_bias_and_is_a_maximum():
    fixations = synthetic_fixations()
    center_bias = fit_center_bias(SIZES, fixations)
    gold = fit_gold_standard(SIZES, fixations, center_bias)
    ll = gold.log_likelihoods()
    assert metrics.information_gain(ll, center_bias.log_likelihoods()) > 0
    for factor in (0.7, 1.4):
        other = GoldStandard(SIZES, fixations, center_bias, gold.bandwidth * factor, gold.weights)
        assert other.log_likelihoods().sum() < ll.sum()


@pytest.fixture(scope="module")
def osie(osie_dir):
    return load_osie(osie_dir, keep_first=True)


def test_osie_explainable_information(osie):
    """On half of OSIE (for time); the full numbers are in benchmarks/results/osie_baselines.md."""
    stimuli, fixations = osie
    train, _ = osie_split(stimuli)
    stimuli, fixations = stimuli.subset(train), fixations.remap_images(train)
    center_bias = CenterBias(stimuli.sizes, fixations, bandwidth=0.0273, eps=1e-15)
    center_bias_ll = center_bias.log_likelihoods()
    gold = fit_gold_standard(stimuli.sizes, fixations, center_bias, bandwidth_bounds=(0.005, 0.1))
    assert 0.01 < gold.bandwidth < 0.04
    assert gold.weights[0] > 0.5
    ig = metrics.information_gain(gold.log_likelihoods(center_bias_ll), center_bias_ll)
    assert 1.0 < ig < 3.0
