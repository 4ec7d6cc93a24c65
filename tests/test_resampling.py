"""Resampling operators and the readout grid (repro.resampling), against independent computations."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from skimage.transform import resize

from repro.resampling import Geometry, blur_operator, grid_axis, interpolation_matrix, resize_operator

RNG = np.random.RandomState(0)


@pytest.mark.parametrize("n_out, n_in", [(40, 13), (13, 40), (17, 17), (5, 1)])
def test_resize_operator_is_scikit_image_bilinear_resize(n_out, n_in):
    signal = RNG.rand(n_in, 3)
    expected = resize(signal, (n_out, 3), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(resize_operator(n_out, n_in) @ signal, expected, atol=1e-12)


def test_interpolation_matrix_is_np_interp_and_contains_the_resize():
    source, target = np.sort(RNG.rand(6)) * 10, RNG.rand(20) * 14 - 2
    values = RNG.rand(6)
    np.testing.assert_allclose(interpolation_matrix(target, source) @ values, np.interp(target, source, values),
                               atol=1e-12)
    # resizing 13 samples to 40 = sample j placed at (j + 0.5) * 40 / 13 - 0.5 output samples
    np.testing.assert_allclose(interpolation_matrix(np.arange(40), (np.arange(13) + 0.5) * 40 / 13 - 0.5),
                               resize_operator(40, 13), atol=1e-12)
    np.testing.assert_array_equal(interpolation_matrix([3.0, -1.0], [2.0]), [[1.0], [1.0]])
    with pytest.raises(ValueError, match="increase"):
        interpolation_matrix(target, source[::-1])


def test_blur_operator_is_gaussian_filter1d():
    signal = RNG.rand(30)
    np.testing.assert_allclose(blur_operator(30, 2.5) @ signal, gaussian_filter1d(signal, 2.5, mode="reflect"),
                               atol=1e-12)


def test_grid_axis_gives_every_pixel_its_nearest_unit():
    """AlexNet conv1 in full padding: units every 8 px from -9 px; an 800 px axis keeps units 1 ... 101."""
    centres, cell = grid_axis(800, -9.0, 8.0)
    assert len(centres) == 101 and centres[0] == -1.0 and centres[-1] == 799.0
    distance = np.abs(np.arange(800)[:, None] + 0.5 - centres[None, :])
    np.testing.assert_array_equal(cell, np.argmin(distance, axis=1))        # nearest (ties: the lower one)
    sizes = np.bincount(cell)
    assert sizes[0] == 3 and sizes[-1] == 5 and set(sizes[1:-1]) == {8}
    centres, cell = grid_axis(5, 0.5, 1.0)                                  # one cell per pixel
    np.testing.assert_array_equal(cell, np.arange(5))
    with pytest.raises(ValueError, match="step"):
        grid_axis(5, 0.0, 0.0)


def test_readout_grid_sums_spreads_and_counts():
    geometry = Geometry(((-20.0, 20.0),), (-3.0, 4.0))
    grid = geometry.readout_grid((30, 41), [(5, 7)])
    assert grid.shape == (8, 11) and grid.pixels.sum() == 30 * 41
    values = RNG.rand(30, 41)
    sums = grid.cell_sums(values)
    expected = np.zeros(grid.shape)
    np.add.at(expected, (grid.row_cell[:, None], grid.col_cell[None, :]), values)
    np.testing.assert_allclose(sums, expected, atol=1e-12)
    np.testing.assert_allclose(grid.log_cell_sums(np.log(values)), np.log(expected), atol=1e-12)
    np.testing.assert_array_equal(grid.to_pixels(sums)[7, 9], sums[grid.row_cell[7], grid.col_cell[9]])
    x, y = np.array([0.2, 40.9, 9.5]), np.array([0.0, 29.99, 9.5])
    counts = grid.counts(x, y)
    assert counts.sum() == 3 and counts[0, 0] == 1 and counts[-1, -1] == 1
    # the interpolation to the cell centres: unit i of the layer sits at -20 + 20 i
    assert grid.rows[0].shape == (8, 5)
    np.testing.assert_allclose(grid.rows[0] @ np.arange(5.0), np.clip((grid_axis(30, -3.0, 4.0)[0] + 20) / 20, 0, 4),
                               atol=1e-6)


def test_geometry_rejects_bad_steps_and_round_trips():
    with pytest.raises(ValueError, match="step"):
        Geometry(((0.0, 0.0),), (0.5, 1.0))
    geometry = Geometry(((-113.0, 32.0),), (-9.0, 8.0))
    assert Geometry.from_json(geometry.to_json()) == geometry
