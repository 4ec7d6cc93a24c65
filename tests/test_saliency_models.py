"""The earlier saliency models (repro.saliency_models): behaviour their papers predict on stimuli made here, the one
interface, the cache, the command line, and agreement with OpenCV's independent spectral residual."""
import logging

import cv2
import h5py
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from repro.__main__ import main
from repro.postprocessing import map_cells
from repro.saliency_models import MODELS, ImageSignature, IttiKoch, MapStore, SpectralResidual, get_model
from repro.saliency_models.base import check_image
from repro.saliency_models.itti_koch import normalise


def search_array(kind, rows=5, cols=7, cell=64, odd=(2, 5)):
    """A search array: ``rows x cols`` identical items on a grey background, the one at ``odd`` differing in colour
    (a red disc among blue ones of about the same luminance) or in orientation (a horizontal bar among vertical ones).

    Returns the ``(rows * cell, cols * cell, 3)`` uint8 image and the odd item's centre ``(row, column)`` in pixels.
    """
    image = np.full((rows * cell, cols * cell, 3), 128, np.uint8)
    yy, xx = np.mgrid[:cell, :cell] - (cell - 1) / 2
    for r in range(rows):
        for c in range(cols):
            is_odd = (r, c) == odd
            patch = image[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]
            if kind == "colour":
                patch[np.hypot(yy, xx) < cell / 4] = (220, 40, 40) if is_odd else (40, 80, 220)
            else:
                long, short = cell * 0.3, cell * 0.06
                half_height, half_width = (short, long) if is_odd else (long, short)
                patch[(abs(yy) < half_height) & (abs(xx) < half_width)] = 0
    return image, ((odd[0] + 0.5) * cell, (odd[1] + 0.5) * cell)


def cell_means(values, rows, cols):
    """Mean of a map over each item's cell: ``(rows, cols)``."""
    return values.reshape(rows, values.shape[0] // rows, cols, values.shape[1] // cols).mean(axis=(1, 3))


def natural_like(shape=(120, 170), seed=0):
    """A made-up photograph-like image: smoothed noise with a 1/f-ish spectrum in colour, uint8."""
    rng = np.random.default_rng(seed)
    layers = sum(gaussian_filter(rng.normal(size=shape + (3,)), (s, s, 0)) * s for s in (1, 3, 9))
    layers = (layers - layers.min()) / np.ptp(layers)
    return (255 * layers).astype(np.uint8)


# --------------------------------------------------------------------------- the interface

@pytest.mark.parametrize("name", sorted(MODELS))
def test_maps_have_the_image_shape_are_finite_and_deterministic(name):
    model = MODELS[name]
    for image in (natural_like(), natural_like((97, 131), seed=1), natural_like((200, 60), seed=2)):
        first, second = model(image), model(image.copy())
        assert first.shape == image.shape[:2] and first.dtype == np.float64
        assert np.isfinite(first).all() and np.ptp(first) > 0
        assert np.array_equal(first, second)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_uniform_image_gives_a_uniform_map(name):
    for value in (0, 90, 255):
        values = MODELS[name](np.full((150, 210, 3), value, np.uint8))
        assert np.ptp(values) <= 1e-9 * max(abs(values).max(), 1e-300)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_say_what_they_are(name):
    model = get_model(name)
    assert model.name == name and model.citation and "doi:" in model.citation
    assert isinstance(model.parameters, dict) and model.parameters
    assert type(model)(**model.parameters).cache_key == model.cache_key
    key, value = next((k, v) for k, v in model.parameters.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool))     # its first number, changed
    changed = {key: type(value)(value * 2 if value else 1)}
    assert type(model)(**{**model.parameters, **changed}).cache_key != model.cache_key


def test_bad_images_and_names_are_refused_with_what_they_are():
    with pytest.raises(ValueError, match=r"uint8 RGB image, got shape \(10, 10\)"):
        check_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="dtype float64"):
        MODELS["spectral_residual"](np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match="unknown saliency model 'itti'; choose one of [a-z_, ]*itti_koch"):
        get_model("itti")
    with pytest.raises(ValueError, match="colour 'hsv'"):
        ImageSignature(colour="hsv")
    with pytest.raises(ValueError, match="map_scale 3"):
        IttiKoch(map_scale=3)


# --------------------------------------------------------------------------- what the papers predict

@pytest.mark.parametrize("name", ["image_signature", "itti_koch"])
@pytest.mark.parametrize("kind", ["colour", "orientation"])
def test_maximum_on_the_odd_item(name, kind):
    """Hou, Harel & Koch: the identical distractors are spectrally sparse (the background), the odd item spatially
    sparse (the foreground the signature's reconstruction highlights). Itti, Koch & Niebur: the odd item's colour or
    orientation contrast is a single peak in its feature maps, which N(.) promotes, while the distractors' many equal
    peaks (and the intensity maps', the same for every item) are suppressed."""
    for odd in ((2, 5), (0, 1), (4, 3)):
        image, (y, x) = search_array(kind, odd=odd)
        values = MODELS[name](image)
        peak = np.unravel_index(values.argmax(), values.shape)
        assert np.hypot(peak[0] - y, peak[1] - x) < 64 / 4, (odd, peak)
        cells = cell_means(values, 5, 7)
        margin = {"image_signature": 2.0, "itti_koch": 1.2}[name]       # measured: at least 3.7 and 1.3
        assert cells[odd] > margin * np.delete(cells.ravel(), odd[0] * 7 + odd[1]).max()


def test_normalisation_promotes_one_peak_and_suppresses_many():
    """Itti, Koch & Niebur's N(.): a map with one strong peak keeps it (times (1 - m)^2 with m the other, weak maxima),
    a map with many equal peaks is multiplied by about 0; the result is on [0, 1]."""
    yy, xx = np.mgrid[:60, :80]
    bump = lambda y, x: np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8.0)      # noqa: E731
    lone = 5 * bump(30, 40) + 0.5 * bump(10, 10) + 0.5 * bump(50, 70)
    assert normalise(lone).max() == pytest.approx((1 - 0.1) ** 2, rel=1e-3)
    many = sum(bump(y, x) for y in (10, 30, 50) for x in (10, 30, 50, 70))
    assert normalise(many).max() < 1e-3
    assert not normalise(np.zeros((5, 5))).any()


def test_spectral_residual_finds_a_lone_item():
    """A single dark disc on a uniform background, away from the borders: the map's maximum lies on it. (Measured
    limits of the method, not tested: a hard-edged axis-parallel bar puts the maximum beside it, where the zeros of
    its spectrum make the residual large, and a disc near a corner loses its maximum to the wrapped-around border.)"""
    yy, xx = np.mgrid[:240, :320]
    for y, x, radius in ((155, 80, 12), (60, 250, 16), (120, 160, 10)):
        image = np.full((240, 320, 3), 128, np.uint8)
        image[np.hypot(yy - y, xx - x) < radius] = 0
        values = SpectralResidual()(image)
        peak = np.unravel_index(values.argmax(), values.shape)
        assert np.hypot(peak[0] - y, peak[1] - x) < radius, (y, x, peak)


@pytest.mark.xfail(strict=True, reason="measured: at the paper's parameters (64 px wide, sigma 8) the spectral residual "
                   "does not single out the odd bar of this array (its cell ranks 5th of 35; OpenCV's implementation, "
                   "64 x 64 and hardly blurred, ranks it 1st here); over 10 layouts of bars tried, ours ranked the odd "
                   "cell first once, OpenCV's 4 times. The paper shows orientation pop-out on its own patterns")
def test_spectral_residual_odd_orientation_pop_out():
    image, _ = search_array("orientation")
    cells = cell_means(SpectralResidual()(image), 5, 7)
    assert np.unravel_index(cells.argmax(), cells.shape) == (2, 5)


# --------------------------------------------------------------------------- agreement with OpenCV

def opencv_spectral_residual(image):
    """OpenCV-contrib's StaticSaliencySpectralResidual of an RGB image: ``(H, W)`` float32."""
    found, values = cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency(
        np.ascontiguousarray(image[:, :, ::-1]))
    assert found
    return values


def osie_images(osie_dir, count, step):
    from repro.datasets import load_image
    files = sorted((osie_dir / "stimuli").glob("*.jpg"))[::step][:count]
    assert len(files) == count
    return [load_image(path) for path in files]


def test_spectral_residual_core_agrees_with_opencv_given_opencvs_input_and_blur(osie_dir):
    """The spectral residual itself (log spectrum minus its 3 x 3 average, original phase, squared) agrees with
    OpenCV's when given what OpenCV works on: its grey image squeezed to 64 x 64 by ``cv2.resize`` (bilinear, no
    anti-aliasing) and its blur (a 5 x 5 Gaussian kernel of sigma 8, i.e. nearly a 5 x 5 box). Measured on 20 OSIE
    images: correlation 0.970 on average, 0.949 the lowest (what remains: OpenCV's 3 x 3 average reflects at the
    spectrum's edges where ours wraps, float32, and its output resizing)."""
    model = SpectralResidual(sigma=0)
    correlations = []
    for image in osie_images(osie_dir, 20, 35):
        grey = cv2.cvtColor(np.ascontiguousarray(image[:, :, ::-1]), cv2.COLOR_BGR2GRAY) / 255.0
        small = model.small_map(cv2.resize(grey, (64, 64), interpolation=cv2.INTER_LINEAR))
        values = gaussian_filter(small, 8, truncate=0.25)                       # 5 x 5 kernel, as OpenCV's
        mine = cv2.resize(values, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        correlations.append(np.corrcoef(mine.ravel(), opencv_spectral_residual(image).ravel())[0, 1])
    assert np.mean(correlations) > 0.95 and min(correlations) > 0.9, np.round(correlations, 3)


def test_spectral_residual_as_the_paper_agrees_with_opencv_only_partly(osie_dir):
    """Our model as the paper describes it against OpenCV's defaults: correlation 0.53 on average over 20 OSIE images
    (0.23 the lowest). The differences are of parameters, not of the method (see the test above): OpenCV squeezes
    every image to 64 x 64 (the paper keeps 64 pixels of width, and so do we: 64 x 48 for OSIE), resizes without
    anti-aliasing (800 -> 64 pixels aliases), and truncates its Gaussian of sigma 8 to 5 x 5 pixels, hardly a blur,
    where the paper's sigma 8 blurs over an eighth of the map."""
    correlations = [np.corrcoef(SpectralResidual()(image).ravel(), opencv_spectral_residual(image).ravel())[0, 1]
                    for image in osie_images(osie_dir, 20, 35)]
    assert 0.4 < np.mean(correlations) < 0.7, np.round(correlations, 3)
    assert min(correlations) > 0.1


# --------------------------------------------------------------------------- the cache

def test_cache_round_trip_and_damaged_entries_are_computed_again(tmp_path, caplog):
    model = ImageSignature()
    store = MapStore(model, tmp_path)
    image = natural_like()
    values = store.map(image)
    path = store.path(image)
    assert path.is_file() and np.array_equal(values, model(image))
    with h5py.File(path, "r") as f:
        assert f.attrs["image"] == path.stem and f.attrs["model"] == "image_signature"
    with h5py.File(path, "r+") as f:                  # a planted value: read back from the file, not computed
        f["map"][0, 0] = -7.0
    assert store.map(image)[0, 0] == -7.0
    with h5py.File(path, "w") as f:                   # another shape: a wrong entry, computed again and rewritten
        f["map"] = np.zeros((3, 4))
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(store.map(image), values)
    assert "(3, 4)" in caplog.text and str(path) in caplog.text
    path.write_bytes(b"not hdf5")
    assert np.array_equal(store.map(image), values)
    with h5py.File(path, "r") as f:
        assert f["map"].shape == image.shape[:2]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


def test_cached_cells_are_the_maps_cells_and_damaged_ones_are_computed_again(tmp_path, caplog):
    model = SpectralResidual()
    store = MapStore(model, tmp_path)
    image = natural_like((97, 131))
    expected = map_cells(model(image))
    first = store.cells(image)
    assert np.array_equal(first.means, expected.means) and (first.low, first.high) == (expected.low, expected.high)
    path, = (tmp_path / "cells -9 8").glob("*.h5")
    with h5py.File(path, "r+") as f:                  # a planted value: read back from the file, not computed
        f["means"][0, 0] = -7.0
    assert store.cells(image).means[0, 0] == -7.0
    assert not store.path(image).exists()            # the full map is not kept
    other = store.cells(image, grid=(0.0, 4.0))       # another grid: its own file, its own cells
    assert other.means.shape == map_cells(model(image), (0.0, 4.0)).means.shape != first.means.shape
    path.write_bytes(b"not hdf5")
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(store.cells(image).means, expected.means)
    assert "damaged" in caplog.text and str(path) in caplog.text
    assert not [p for p in path.parent.iterdir() if p.suffix == ".part"]


def test_cache_folders_are_keyed_by_model_and_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path))
    paper, other = MapStore(ImageSignature()), MapStore(ImageSignature(sigma=0.1))
    assert paper.folder.parent == tmp_path / "saliency" / "image_signature"
    assert paper.folder != other.folder


# --------------------------------------------------------------------------- the command line

def test_command_writes_one_map_per_image_and_refuses_plainly(tmp_path, capsys, monkeypatch):
    from PIL import Image
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path / "cache"))
    files = []
    for n, image in enumerate((natural_like(), natural_like((97, 131), seed=1))):
        files.append(tmp_path / f"picture{n}.png")
        Image.fromarray(image).save(files[-1])
    assert main(["saliency", "spectral_residual", *map(str, files), "--out", str(tmp_path / "maps")]) == 0
    for n, path in enumerate(files):
        written = np.load(tmp_path / "maps" / f"picture{n}.npy")
        assert np.array_equal(written, SpectralResidual()(np.asarray(Image.open(path))))
    capsys.readouterr()
    assert main(["saliency", "spectral_residual"]) == 1
    assert capsys.readouterr().err == "error: saliency: give images or --dataset NAME (one of the two)\n"
    with pytest.raises(SystemExit) as exited:                  # argparse's refusal, as every command's
        main(["saliency", "itti", str(files[0])])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "'itti'" in err and err.count("\n") == 1
    assert main(["saliency", "image_signature", str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err
    assert "missing.png" in err and err.count("\n") == 1


def test_dataset_maps_are_the_folder_evaluate_reads(data_dir, tmp_path, monkeypatch):
    """``saliency MODEL --dataset mit1003`` (the 100-image subset of the shared data) writes one map per stimulus,
    named as ``evaluate`` reads them: every stimulus has its map, of its size, and it is the model's map."""
    from repro.datasets import load_dataset
    from repro.saliency_maps import checked_map, map_files, read_map
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "spectral_residual"
    assert main(["saliency", "spectral_residual", "--dataset", "mit1003", "--data-dir", str(data_dir),
                 "--out", str(out)]) == 0
    stimuli, _ = load_dataset("mit1003", data_dir, keep_first=True)
    files = map_files(out, stimuli)
    for n in (0, len(stimuli) // 2, len(stimuli) - 1):
        values = checked_map(read_map(files[n]), files[n], stimuli.sizes[n])
        assert np.array_equal(values, SpectralResidual()(stimuli[n]))
    assert len(list((tmp_path / "cache" / "saliency" / "spectral_residual").rglob("*.h5"))) == len(stimuli)
