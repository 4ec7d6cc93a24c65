"""AIM (repro.saliency_models.aim): the basis it learns (deterministic, independent components, cached and relearned
when damaged), its self-information by hand, and what Bruce & Tsotsos predict: pop-out of an odd item, and maps
that predict where people look in OSIE images."""
import logging

import numpy as np
import pytest
from scipy.stats import kurtosis

from repro.saliency_models import AIM, MODELS
from repro.saliency_models.aim import (basis_path, coefficients, fast_ica, learn_basis, load_basis, pca_whitening,
                                       self_information, training_patches)
from test_saliency_models import cell_means, search_array


# --------------------------------------------------------------------------- the basis

def test_basis_is_learned_deterministically():
    first, second = learn_basis(7, 0.95, 4000, 0), learn_basis(7, 0.95, 4000, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert first[0].shape[1] == first[1].shape[0] == 7 * 7 * 3
    assert not np.array_equal(learn_basis(7, 0.95, 4000, 1)[0], first[0])


def test_fast_ica_unmixes_a_known_mixture():
    """Three independent non-Gaussian sources (Laplacian, uniform, binary) mixed linearly and whitened: the unmixing
    matrix times the whitened mixing matrix is a signed permutation."""
    rng = np.random.default_rng(3)
    sources = np.stack([rng.laplace(size=20000), rng.uniform(-1, 1, 20000), rng.choice([-1.0, 1.0], 20000)], axis=1)
    sources = (sources - sources.mean(axis=0)) / sources.std(axis=0)
    mixed = sources @ np.array([[1.0, 0.5, 0.2], [0.3, 1.0, 0.6], [0.4, 0.1, 1.0]]).T
    mean, whitening = pca_whitening(mixed, 1.0)
    unmixing = fast_ica((mixed - mean) @ whitening.T, seed=0)
    recovered = (mixed - mean) @ whitening.T @ unmixing.T
    match = np.abs(np.corrcoef(recovered.T, sources.T)[:3, 3:])
    assert np.allclose(np.sort(match, axis=1)[:, -1], 1, atol=0.02) and np.sort(match, axis=1)[:, -2].max() < 0.05


def test_learned_components_are_sparse_and_decorrelated_on_new_patches():
    """The model's basis (21 x 21 RGB, 95 % of the variance) on 10,000 patches it was not learned from: the
    coefficients have unit variance and are decorrelated, and far from Gaussian (excess kurtosis 0), more so than the
    principal components they are mixed from. Measured: |r| <= 0.064, median kurtosis 16.4 against PCA's 10.6."""
    filters, mean = AIM().basis
    assert filters.shape == (20, 21 * 21 * 3)
    patches = training_patches(21, 10000, seed=1)
    values = (patches - mean) @ filters.T
    assert np.allclose(values.var(axis=0), 1, atol=0.2)
    assert np.abs(np.corrcoef(values.T) - np.eye(len(filters))).max() < 0.15
    pca_mean, whitening = pca_whitening(patches, 0.95)
    principal = (patches - pca_mean) @ whitening.T
    assert np.median(kurtosis(values, axis=0)) > max(5.0, 1.3 * np.median(kurtosis(principal, axis=0)))


def test_basis_is_cached_and_a_damaged_file_is_learned_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path))
    filters, mean = load_basis(7, 0.9, 2000, 0)
    path = basis_path(7, 0.9, 2000, 0)
    assert path.parent == tmp_path / "aim" and path.is_file()
    np.savez(path, filters=2 * filters, mean=mean)               # a planted basis: read back, not learned
    assert np.array_equal(load_basis(7, 0.9, 2000, 0)[0], 2 * filters)
    for damage in (lambda: path.write_bytes(b"not a zip file"),
                   lambda: np.savez(path, filters=filters[:, :5], mean=mean)):
        damage()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert np.array_equal(load_basis(7, 0.9, 2000, 0)[0], filters)
        assert str(path) in caplog.text and "learning it again" in caplog.text
        with np.load(path) as stored:                            # and written again, whole
            assert np.array_equal(stored["filters"], filters)
    assert basis_path(7, 0.9, 2000, 1) != path
    assert not [p for p in path.parent.iterdir() if p.suffix == ".part"]


# --------------------------------------------------------------------------- the parts, by hand

def test_self_information_by_hand():
    """Two coefficients over four pixels, two bins: the first is 0, 0, 0, 1 (p = 3/4 three times, 1/4 once), the
    second is constant (one bin, p = 1, no information), the third differs by rounding only (likewise)."""
    values = np.array([[0.0, 0.0, 0.0, 1.0], [5.0] * 4, [2.0, 2.0 + 1e-9, 2.0, 2.0]]).reshape(3, 1, 4)
    expected = -np.log([0.75, 0.75, 0.75, 0.25])
    assert np.allclose(self_information(values, bins=2), expected[None], rtol=1e-12)
    assert not self_information(np.full((4, 3, 5), 0.7), bins=256).any()


def test_coefficients_are_the_filters_applied_to_each_patch():
    """The FFT correlation gives, at every pixel, the filters times the patch around it minus the mean patch (the
    image mirrored at its borders), also for an even patch size."""
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(13, 17, 3))
    for patch in (5, 4):
        filters, mean = rng.normal(size=(3, patch * patch * 3)), rng.uniform(size=patch * patch * 3)
        values = coefficients(image, filters, mean)
        assert values.shape == (3, 13, 17)
        half = patch // 2
        padded = np.pad(image, ((half, patch - 1 - half),) * 2 + ((0, 0),), mode="symmetric")
        for y, x in ((0, 0), (6, 9), (12, 16), (3, 15)):
            expected = filters @ (padded[y:y + patch, x:x + patch].ravel() - mean)
            assert np.allclose(values[:, y, x], expected, rtol=1e-10, atol=1e-10)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="aim: scale 0, patch 21"):
        AIM(scale=0)
    assert MODELS["aim"].parameters == AIM().parameters


# --------------------------------------------------------------------------- what the paper predicts

@pytest.mark.parametrize("kind, margin", [("colour", 5.0), ("orientation", 2.0)])
def test_maximum_on_the_odd_item(kind, margin):
    """Bruce & Tsotsos: the odd item's coefficients (a red disc among blue ones; a horizontal bar among vertical
    ones) are rare in the image, so their self-information is the largest. The map's maximum lies on the item (its
    rim: within 20 pixels of its centre, measured 1 to 7), and the item's cell stands out above the least salient
    cell by ``margin`` times as much as any other cell (measured: at least 7.2 for colour, 2.7 for orientation, with
    the authors' 1000 bins and blur of 8 pixels)."""
    for odd in ((2, 5), (0, 1), (4, 3)):
        image, (y, x) = search_array(kind, odd=odd)
        values = MODELS["aim"](image)
        peak = np.unravel_index(values.argmax(), values.shape)
        assert np.hypot(peak[0] - y, peak[1] - x) < 20, (odd, peak)
        cells = cell_means(values, 5, 7) - cell_means(values, 5, 7).min()
        assert cells[odd] > margin * np.delete(cells.ravel(), odd[0] * 7 + odd[1]).max()


def test_maps_predict_fixations_on_osie(data_dir):
    """On three OSIE images the map is higher where people looked: normalised scanpath saliency (the map standardised
    over the image, read at the fixations) measured 1.01, 0.96, 1.17; it also agrees with the image signature's map
    (correlation 0.57, 0.74, 0.79 measured)."""
    from repro.datasets import load_dataset
    stimuli, fixations = load_dataset("osie", data_dir, keep_first=False)
    for n in (10, 300, 600):
        values = MODELS["aim"](stimuli[n])
        at = fixations.n == n
        standard = (values - values.mean()) / values.std()
        nss = standard[fixations.y[at].astype(int), fixations.x[at].astype(int)].mean()
        agreement = np.corrcoef(values.ravel(), MODELS["image_signature"](stimuli[n]).ravel())[0, 1]
        assert nss > 0.5 and agreement > 0.1, (n, nss, agreement)
