"""Graph-based visual saliency (repro.saliency_models.gbvs): its two Markov chains against their definitions, small
cases by hand, the pop-outs the paper's model predicts on stimuli made here, and its maps of real OSIE images. (The
interface, determinism and uniform images are tested for every model in test_saliency_models.py.)"""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from repro.saliency_models import GBVS, IttiKoch
from repro.saliency_models.gbvs import activation, concentration, distance_weights, map_size
from test_saliency_models import cell_means, search_array


def equilibrium(weights):
    """The stationary distribution of the chain whose transition probabilities are ``weights`` ``(N, N)`` with rows
    normalised to 1: the eigenvector of eigenvalue 1 of the transposed transition matrix, summing to 1."""
    values, vectors = np.linalg.eig((weights / weights.sum(axis=1, keepdims=True)).T)
    vector = np.real(vectors[:, np.argmin(abs(values - 1))])
    return vector / vector.sum()


def test_activation_is_the_equilibrium_of_the_dissimilarity_chain():
    """The paper's chain ``w1 = |log(M_i / M_j)| F_ij``, built edge by edge and solved as an eigenproblem, has the
    equilibrium that :func:`activation` gives in closed form (the weighted degrees)."""
    rng = np.random.default_rng(3)
    values, floor = rng.uniform(0.0, 2.0, size=(5, 6)), 0.01
    weights = distance_weights(values.shape, 1.7)
    shifted = values.ravel() + floor * values.max()
    chain = np.array([[abs(np.log(a / b)) for b in shifted] for a in shifted]) * weights
    assert np.allclose(activation(values, weights, floor).ravel(), equilibrium(chain), rtol=1e-9, atol=1e-12)


def test_normalisation_is_the_equilibrium_of_the_mass_chain_and_concentrates_mass():
    """The chain ``w2(i -> j) = A_j F_ij`` solved as an eigenproblem equals :func:`concentration`; a strong peak among
    weak ones ends up with a larger share of the mass than it had."""
    rng = np.random.default_rng(4)
    mass = rng.uniform(0.0, 1.0, size=(4, 7))
    weights = distance_weights(mass.shape, 1.2)
    assert np.allclose(concentration(mass, weights).ravel(), equilibrium(mass.ravel()[None, :] * weights),
                       rtol=1e-9, atol=1e-12)
    peaked = np.full((6, 8), 1.0)
    peaked[3, 4] = 10.0
    peaked /= peaked.sum()
    assert concentration(peaked, distance_weights(peaked.shape, 1.0))[3, 4] > 1.5 * peaked[3, 4]


def test_a_small_case_by_hand():
    """A 1 x 3 map ``(1, 1, e)``, ``sigma = 1``: ``d`` is 0 between the ones and 1 to ``e``; the edges weigh
    ``F(0, 2) = exp(-2)`` and ``F(1, 2) = exp(-1/2)``; the degrees are ``(e^-2, e^-1/2, e^-2 + e^-1/2)``, so the
    equilibrium is those over their sum, ``2 (e^-2 + e^-1/2)`` (the odd cell holds exactly half)."""
    values = np.array([[1.0, 1.0, np.e]])
    weights = distance_weights(values.shape, 1.0)
    assert weights[0, 2] == pytest.approx(np.exp(-2)) and weights[1, 2] == pytest.approx(np.exp(-0.5))
    near, far = np.exp(-0.5), np.exp(-2)
    expected = np.array([far, near, far + near]) / (2 * (far + near))
    assert np.allclose(activation(values, weights, 1e-12)[0], expected, rtol=1e-9)


def test_maps_without_contrast_have_no_activation():
    weights = distance_weights((3, 4), 1.0)
    for values in (np.zeros((3, 4)), np.full((3, 4), 0.35), 0.35 + 1e-17 * np.arange(12).reshape(3, 4)):
        assert not activation(values, weights, 0.01).any()
    assert not concentration(np.zeros((3, 4)), weights).any()


def test_map_size_and_parameters():
    assert map_size((600, 800), 32) == (24, 32)          # OSIE: the authors' 32 x 24 cells
    assert map_size((200, 60), 32) == (32, 10)
    assert map_size((10, 12), 32) == (10, 12)            # never larger than the image
    with pytest.raises(ValueError, match="map_cells 1"):
        GBVS(map_cells=1)


def test_the_centre_is_favoured_by_construction():
    """Two identical items on an empty map, one at the centre and one at the border: the border cell has fewer
    neighbours within sigma, so less weight and less activation (the model's built-in centre bias)."""
    values = np.zeros((24, 32))
    values[12, 16] = values[12, 0] = 1.0
    spread = activation(values, distance_weights(values.shape, 0.15 * 28), 0.01)
    assert spread[12, 16] > 1.3 * spread[12, 0]


# --------------------------------------------------------------------------- what the paper predicts

def assert_maximum_on_the_odd_item(kind, odd, margin):
    """GBVS's map of a search array: its peak lies within a quarter item of the odd item's centre, and the odd item's
    cell mean exceeds ``margin`` times every other cell's."""
    image, (y, x) = search_array(kind, odd=odd)
    values = GBVS()(image)
    peak = np.unravel_index(values.argmax(), values.shape)
    assert np.hypot(peak[0] - y, peak[1] - x) < 64 / 4, peak
    cells = cell_means(values, 5, 7)
    assert cells[odd] > margin * np.delete(cells.ravel(), odd[0] * 7 + odd[1]).max()

@pytest.mark.parametrize("odd", [(2, 5), (0, 1), (4, 3)])
def test_maximum_on_the_odd_colour(odd):
    """The odd red disc is the only mass of its rectified red-green map, whose activation puts it there, while the blue
    distractors share the mass of theirs: the odd cell holds the map's maximum (measured: at least 2.8 times any
    other cell's mean, border positions included)."""
    assert_maximum_on_the_odd_item("colour", odd, margin=2.0)


@pytest.mark.parametrize("odd", [(2, 5), (1, 1), (3, 4), (2, 2), (1, 5), (3, 1)])
def test_maximum_on_the_odd_orientation_inside_the_array(odd):
    """The odd horizontal bar is the one strong response of the 90-degree Gabor maps (measured: its cell 1.11 to 1.42
    times any other; the peak within 11.3 pixels of its centre)."""
    assert_maximum_on_the_odd_item("orientation", odd, margin=1.05)


@pytest.mark.xfail(strict=True, reason="measured: an odd bar in the array's outer row or column is not the maximum "
                   "(its cell 0.75 to 0.90 of the best other one for (0, 1), (4, 3), (0, 6)). The paper's graphs give "
                   "border cells fewer neighbours, so less mass (test_the_centre_is_favoured_by_construction), and the "
                   "single orientation contrast does not outweigh that; an odd colour does")
def test_maximum_on_the_odd_orientation_at_the_border():
    for odd in ((0, 1), (4, 3), (0, 6)):
        cells = cell_means(GBVS()(search_array("orientation", odd=odd)[0]), 5, 7)
        assert np.unravel_index(cells.argmax(), cells.shape) == odd


# --------------------------------------------------------------------------- real images

def test_maps_of_osie_images_follow_fixations_and_agree_with_itti_koch(osie_dir):
    """OSIE 1001-1003: the correlation of GBVS's map with the fixation density (the fixations but each trial's first,
    blurred by 25 pixels) measured 0.09, 0.16 and 0.46 (a centred Gaussian alone: 0.39, 0.19, 0.46, so this shows
    sense, not merit), and with Itti & Koch's map 0.16, 0.48 and 0.63."""
    from repro.datasets.osie import load_osie
    stimuli, fixations = load_osie(osie_dir, keep_first=False)
    correlate = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]         # noqa: E731
    with_fixations, with_itti = [], []
    for n in range(3):
        image, chosen = stimuli[n], fixations.n == n
        assert stimuli.filenames[n].name == f"{1001 + n}.jpg"
        density = np.zeros(image.shape[:2])
        np.add.at(density, (np.round(fixations.y[chosen]).astype(int), np.round(fixations.x[chosen]).astype(int)), 1)
        values = GBVS()(image)
        with_fixations.append(correlate(values, gaussian_filter(density, 25)))
        with_itti.append(correlate(values, IttiKoch()(image)))
    assert min(with_fixations) > 0.05 and np.mean(with_fixations) > 0.15, np.round(with_fixations, 3)
    assert min(with_itti) > 0.1 and np.mean(with_itti) > 0.3, np.round(with_itti, 3)
