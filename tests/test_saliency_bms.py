"""Boolean map saliency (repro.saliency_models.bms): what Zhang & Sclaroff's model predicts on stimuli made here, its
distinctive parts (surroundedness, the square morphology, the L2-normalised attention maps, their mean) by hand and
against independent references, and its maps on real OSIE images against the observers' fixations."""
import numpy as np
import pytest
from scipy.ndimage import binary_fill_holes, gaussian_filter, maximum_filter, minimum_filter

from repro.saliency_models import BMS, MODELS
from repro.saliency_models.bms import activation, attention_map, feature_channels, square_morphology
from test_saliency_models import cell_means, search_array


def random_mask(shape, seed, smooth=2.0):
    """A blobby random Boolean map ``shape``: smoothed noise above 0."""
    return gaussian_filter(np.random.default_rng(seed).normal(size=shape), smooth) > 0


def test_registered_with_the_authors_defaults():
    model = MODELS["bms"]
    assert isinstance(model, BMS)
    assert {k: model.parameters[k] for k in ("width", "step", "opening", "dilation", "final_dilation", "sigma")} == \
        {"width": 600, "step": 8.0, "opening": 5, "dilation": 7, "final_dilation": 9, "sigma": 9.0}
    with pytest.raises(ValueError, match="colour 'hsv'"):
        BMS(colour="hsv")
    with pytest.raises(ValueError, match="opening 0"):
        BMS(opening=0)


# --------------------------------------------------------------------------- surroundedness, by hand

def test_activation_of_a_ring_by_hand():
    """A ring of B with a hole holding one B pixel: the ring, its hole and the pixel in it are surrounded (they do not
    touch the border); the ground around the ring touches it and is not, nor is the B pixel on the border."""
    boolean = np.zeros((7, 9), bool)
    boolean[1:6, 1:6] = True
    boolean[2:5, 2:5] = False
    boolean[3, 3] = True
    boolean[3, 8] = True                                  # touches the border
    expected = np.zeros((7, 9), bool)
    expected[1:6, 1:6] = True
    assert np.array_equal(activation(boolean), expected)
    assert np.array_equal(activation(~boolean), expected)      # B and its complement play the same part


def test_activation_is_4_connected():
    """A B pixel touching a border pixel of B only by a corner is a region of its own (4-connectivity): surrounded."""
    boolean = np.zeros((4, 4), bool)
    boolean[0, 0] = boolean[1, 1] = True
    expected = np.zeros((4, 4), bool)
    expected[1, 1] = True
    assert np.array_equal(activation(boolean), expected)


@pytest.mark.parametrize("seed", range(4))
def test_activation_agrees_with_hole_filling(seed):
    """Independent reference: the surrounded part of not-B is what filling B's holes adds (4-connected flood from the
    border, scipy.ndimage.binary_fill_holes), and likewise for B."""
    boolean = random_mask((53 + seed, 71), seed)
    expected = (binary_fill_holes(boolean) & ~boolean) | (binary_fill_holes(~boolean) & boolean)
    assert expected.any() and not expected.all()
    assert np.array_equal(activation(boolean), expected)


@pytest.mark.parametrize("width", [1, 3, 5, 7, 9])
def test_square_morphology_is_the_max_and_min_filter(width):
    boolean = random_mask((40, 57), width, smooth=1.0)
    assert np.array_equal(square_morphology(boolean, width, True), maximum_filter(boolean, width, mode="nearest"))
    assert np.array_equal(square_morphology(boolean, width, False), minimum_filter(boolean, width, mode="nearest"))


def test_attention_map_is_dilated_and_l2_normalised():
    boolean = np.zeros((20, 30), bool)
    boolean[8, 12] = True
    active, value = attention_map(boolean, 1, 3)                # one surrounded pixel, dilated to 3 x 3
    assert active.sum() == 9 and active[7:10, 11:14].all() and value == pytest.approx(1 / 3)
    assert np.sum((active * value) ** 2) == pytest.approx(1.0)
    active, _ = attention_map(boolean, 5, 3)                    # the opening removes a speck narrower than 5
    assert not active.any()
    half = np.zeros((20, 30), bool)
    half[:, :15] = True                                         # both halves touch the border: nothing surrounded
    assert not attention_map(half, 5, 7)[0].any()


@pytest.mark.parametrize("colour", ["lab", "whitened_lab"])
def test_mean_attention_of_a_black_square_by_hand(colour):
    """A 10 x 10 black square on white: every one of the 32 thresholds of L (0, 8, ..., 248) cuts it out of its
    ground (L codes 0 and 255); a and b are constant (no Boolean map); the opening (5) keeps the square, the dilation
    (3) makes it 12 x 12, each attention map is 1/12 there. The mean over 3 channels x 32 thresholds: 1/36."""
    image = np.full((60, 80, 3), 255, np.uint8)
    image[20:30, 30:40] = 0
    channels = feature_channels(image, colour)
    assert channels.shape == (3, 60, 80)
    values = BMS(opening=5, dilation=3).mean_attention(channels)
    expected = np.zeros((60, 80))
    expected[19:31, 29:41] = 1 / 36
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)


def test_uniform_channels_make_no_boolean_maps():
    """A grey image's a and b are constant in 8-bit codes (skimage's thousandths on grey are rounded away), and
    whitening keeps them 0: only L varies."""
    grey = np.repeat(np.linspace(0, 255, 50).astype(np.uint8)[None, :, None], 3, axis=2).repeat(20, axis=0)
    for colour in ("lab", "whitened_lab"):
        channels = feature_channels(grey, colour)
        assert np.ptp(channels[0]) > 200 and np.ptp(channels[1]) == 0 and np.ptp(channels[2]) == 0


# --------------------------------------------------------------------------- what the paper predicts

@pytest.mark.parametrize("colour", ["whitened_lab", "lab"])
def test_maximum_on_the_odd_colour(colour):
    """The red disc alone is cut out of its ground by the thresholds between the blue discs' and its own values of
    a (or of the whitened channels): those Boolean maps have one small surrounded region, whose L2-normalised
    attention map is large, where the maps shared by all 35 discs spread their unit norm over all of them."""
    for odd in ((2, 5), (0, 1), (4, 3)):
        image, (y, x) = search_array("colour", odd=odd)
        values = BMS(colour=colour)(image)
        peak = np.unravel_index(values.argmax(), values.shape)
        assert np.hypot(peak[0] - y, peak[1] - x) < 64 / 4, (odd, peak)
        cells = cell_means(values, 5, 7)
        margin = {"whitened_lab": 4.0, "lab": 2.0}[colour]        # measured: at least 9.4 and 3.4
        assert cells[odd] > margin * np.delete(cells.ravel(), odd[0] * 7 + odd[1]).max()


@pytest.mark.xfail(strict=True, reason="BMS is blind to orientation: a horizontal bar and a vertical one of the same "
                   "size and colour give the same Boolean maps up to a rotation, with the same surrounded area, so the "
                   "same attention; measured, the odd bar's cell ranks 33rd to 35th of 35 on three layouts")
def test_odd_orientation_pop_out():
    image, _ = search_array("orientation")
    cells = cell_means(MODELS["bms"](image), 5, 7)
    assert np.unravel_index(cells.argmax(), cells.shape) == (2, 5)


# --------------------------------------------------------------------------- real images

def test_maps_follow_the_fixations_on_osie(osie_dir):
    """On three OSIE images (800 x 600), the map correlates with the observers' fixation density (fixations after the
    first, unique pixels, Gaussian of 25 px): measured 0.467, 0.651, 0.529, where image signature's maps give 0.407,
    0.620, 0.395 (over six images BMS was at least as high on every one)."""
    from repro.datasets.osie import load_osie
    from repro.metrics import fixation_map
    stimuli, fixations = load_osie(osie_dir, keep_first=False)
    ours, signature = [], []
    for n in (0, 100, 699):
        image = stimuli[n]
        chosen = fixations.n == n
        density = fixation_map(image.shape[:2], fixations.x[chosen], fixations.y[chosen], sigma=25).ravel()
        ours.append(np.corrcoef(MODELS["bms"](image).ravel(), density)[0, 1])
        signature.append(np.corrcoef(MODELS["image_signature"](image).ravel(), density)[0, 1])
    assert min(ours) > 0.35 and np.mean(ours) > np.mean(signature), (np.round(ours, 3), np.round(signature, 3))
