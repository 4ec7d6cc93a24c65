"""Torralba's bottom-up saliency (repro.saliency_models.torralba): the pop-out the paper's rarity predicts on search
arrays made here, its parts on cases computed by hand, and its maps of real OSIE images against the fixations."""
import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from test_saliency_models import cell_means, natural_like, search_array

from repro.saliency_models import MODELS, Torralba
from repro.saliency_models.torralba import log_gabor_bank, mahalanobis_squared


@pytest.mark.parametrize("kind", ["colour", "orientation"])
def test_maximum_on_the_odd_item(kind):
    """The distractors' features are common in the image (probable), the odd item's rare: a red disc's features lie
    in another direction of colour than the blue discs', a horizontal bar's in other orientation bands than the
    vertical bars'. The maximum lies on the odd item (its edge: the features are band-pass), and its cell's mean
    exceeds every other cell's many times (measured: at least 1e27 for colour, 386 for orientation)."""
    for odd in ((2, 5), (0, 1), (4, 3), (0, 0)):
        image, (y, x) = search_array(kind, odd=odd)
        values = MODELS["torralba"](image)
        peak = np.unravel_index(values.argmax(), values.shape)
        assert np.hypot(peak[0] - y, peak[1] - x) < 64 * 0.3, (odd, peak)      # disc radius 16, bar half-length 19
        cells = cell_means(values, 5, 7)
        assert cells[odd] > 100 * np.delete(cells.ravel(), odd[0] * 7 + odd[1]).max()


def test_filters_on_the_fft_grid_by_hand():
    """On a 64 x 64 grid (frequencies k / 64): a filter peaks (1) at its frequency and orientation, is one octave wide
    and 180 / 6 = 30 degrees wide at half height, so that one octave up or 30 degrees round it is at (1/2)^4 = 1/16;
    it is zero at frequency 0 and (nearly) on the opposite side of the spectrum (a quadrature pair)."""
    bank = log_gabor_bank((64, 64), orientations=6, scales=2, finest=0.25)
    assert bank.shape == (12, 64, 64)
    coarse_0, coarse_30 = bank[6], bank[7]                     # 0.125 cycles/pixel, orientations 0 and 30 degrees
    assert coarse_0[0, 8] == pytest.approx(1.0)                # (fy, fx) = (0, 8/64): on the peak
    assert coarse_0[0, 16] == pytest.approx(1 / 16)            # an octave up
    assert coarse_30[0, 8] == pytest.approx(1 / 16)            # 30 degrees off its orientation
    assert bank[0][0, 16] == pytest.approx(1.0) and bank[0][0, 8] == pytest.approx(1 / 16)     # the finest scale
    assert coarse_0[0, -8] < 1e-20 and not bank[:, 0, 0].any()
    assert bank[3][16, 0] == pytest.approx(1.0)                # 90 degrees: frequency along y


def test_mahalanobis_distance_by_hand_and_its_invariance():
    """``d^2`` of ``[0, 0, 0, 4]``: mean 1, variance 3, so 1/3 thrice and 3. Points on the axes at (+-1, 0), (0, +-2):
    covariance diag(1/2, 2), every ``d^2`` is 2. And ``d^2`` does not change when the features are mixed by any
    invertible matrix (why any linear colour space gives the same map)."""
    assert mahalanobis_squared(np.array([[0.0], [0], [0], [4]]), 0) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 3])
    axes = np.array([[1.0, 0], [-1, 0], [0, 2], [0, -2]])
    assert mahalanobis_squared(axes, 0) == pytest.approx([2, 2, 2, 2])
    rng = np.random.default_rng(0)
    features = rng.standard_t(3, size=(500, 6))
    mixed = features @ rng.normal(size=(6, 6))
    assert mahalanobis_squared(mixed, 0) == pytest.approx(mahalanobis_squared(features, 0), rel=1e-8)
    assert mahalanobis_squared(features, 1e-6) == pytest.approx(mahalanobis_squared(features, 0), rel=1e-5)


def test_map_is_the_inverse_probability_to_the_power_gamma():
    """``S = p^-gamma`` divided by its maximum: ``log S = gamma (d^2 - max d^2) / 2``, so doubling ``gamma`` doubles
    ``log S`` and keeps the order of the pixels (at the reduced size; bilinear upsampling interpolates the values); the
    maximum is 1."""
    channels = natural_like() / 255.0
    paper, doubled = Torralba().small_map(channels), Torralba(gamma=0.1).small_map(channels)
    assert paper.max() == 1.0 and paper.min() > 0
    assert np.log(doubled) == pytest.approx(2 * np.log(paper), rel=1e-9, abs=1e-12)
    assert np.array_equal(np.argsort(paper.ravel(), kind="stable"), np.argsort(doubled.ravel(), kind="stable"))


def test_real_images_rank_the_fixated_places_high(osie_dir):
    """On three OSIE images (1001, 1071, 1141): the map's rank at the fixations (an AUC against all pixels, 0.5 for
    chance) and the rank correlation with the fixation density (Gaussian of 20 pixels). Measured: AUC 0.64, 0.89,
    0.69 (image signature 0.70, 0.91, 0.72; Itti & Koch 0.76, 0.86, 0.78); Spearman 0.38, 0.72, 0.35. (Pearson's
    correlation of the map itself is near 0, 0.01 to 0.09: with ``gamma = 0.05`` the map is a few steep peaks.)"""
    from repro.datasets import load_osie
    from repro.metrics import fixation_map
    stimuli, fixations = load_osie(osie_dir, keep_first=False)
    aucs, correlations = [], []
    for n in (0, 70, 140):
        image, chosen = stimuli[n], fixations.n == n
        x, y = fixations.x[chosen], fixations.y[chosen]
        values = MODELS["torralba"](image)
        ranks = rankdata(values.ravel()).reshape(values.shape) / values.size
        aucs.append(ranks[y.astype(int), x.astype(int)].mean())
        density = fixation_map(image.shape[:2], x, y, sigma=20)
        correlations.append(spearmanr(values.ravel()[::7], density.ravel()[::7])[0])
    assert min(aucs) > 0.6 and np.mean(aucs) > 0.7, np.round(aucs, 3)
    assert min(correlations) > 0.25, np.round(correlations, 3)
