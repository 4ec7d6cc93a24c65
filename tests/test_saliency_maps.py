"""Folders of saliency maps (repro.saliency_maps): every format read from real files the test writes, every bad
folder or map named, and the cache on cells reused while the files are unchanged."""
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from conftest import ROOT
from repro import saliency_maps as sm
from repro.datasets import Stimuli
from repro.postprocessing import map_cells

SHAPE = (24, 32)


def stimuli(n=3, shape=SHAPE):
    images = [np.full(shape + (3,), 100 + i, np.uint8) for i in range(n)]
    return Stimuli(images=images, ids=[f"im{i}" for i in range(n)])


def ramp(shape=SHAPE, scale=1.0):
    return scale * np.add.outer(np.arange(shape[0]), np.arange(shape[1])) / float(sum(shape))


def write(path, values):
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, values)
    elif suffix == ".txt":
        path.write_text("notes")
    elif suffix == ".mat":
        savemat(path, {"salmap": values})
    else:
        Image.fromarray(values).save(path)


@pytest.mark.parametrize("name, values", [
    ("im0.png", (ramp(scale=255)).astype(np.uint8)),
    ("im0.png", (ramp(scale=65535)).astype(np.uint16)),
    ("im0.jpg.npy", ramp()),
    ("im0.npy", ramp().astype(np.float32)),
    ("im0.mat", ramp()),
])
def test_each_format_reads_the_values_written(tmp_path, name, values):
    write(tmp_path / name, values)
    np.testing.assert_allclose(sm.read_map(tmp_path / name), values.astype(np.float64))


def test_jpeg_grey_and_equal_channel_colour_maps(tmp_path):
    grey = ramp(scale=255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=100)
    assert np.abs(sm.read_map(tmp_path / "grey.jpg") - grey).max() <= 3                  # JPEG is lossy
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(sm.read_map(tmp_path / "rgb.png"), grey)
    colour = np.repeat(grey[:, :, None], 3, axis=2)
    colour[0, 0, 1] += 1
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"colour.png: a colour image"):
        sm.read_map(tmp_path / "colour.png")


def test_matlab_v73_file(tmp_path):
    with h5py.File(tmp_path / "im0.mat", "w") as f:          # MATLAB v7.3 writes HDF5, arrays transposed
        f["S"] = ramp().T
    np.testing.assert_allclose(sm.read_map(tmp_path / "im0.mat"), ramp())


def test_matlab_file_with_several_maps_is_named(tmp_path):
    savemat(tmp_path / "im0.mat", {"a": ramp(), "b": ramp()})
    with pytest.raises(ValueError, match=r"im0.mat: expected one 2-d numeric variable, found \['a', 'b'\]"):
        sm.read_map(tmp_path / "im0.mat")


@pytest.mark.parametrize("files, message", [
    (["im0.npy", "im1.npy"], r"no map for 1 of the 3 stimuli \(im2\)"),
    (["im0.npy", "im1.npy", "im2.npy", "im3.npy"], r"1 files are no map of a stimulus \(im3.npy\)"),
    (["im0.npy", "im1.npy", "im2.npy", "notes.txt"], r"no map of a stimulus \(notes.txt\)"),
    (["im0.npy", "im0.png", "im1.npy", "im2.npy"], r"two maps for stimulus im0: im0.npy and im0.png"),
])
def test_folder_problems_are_named(tmp_path, files, message):
    for name in files:
        write(tmp_path / name, ramp(scale=255).astype(np.uint8) if name.endswith(".png") else ramp())
    with pytest.raises(ValueError, match=message):
        sm.map_files(tmp_path, stimuli())


def test_hidden_files_are_ignored_and_names_match_ids_or_file_names(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"im{i}.npy", ramp())
    (tmp_path / ".DS_Store").write_bytes(b"x")
    assert [p.name for p in sm.map_files(tmp_path, stimuli())] == ["im0.npy", "im1.npy", "im2.npy"]


@pytest.mark.parametrize("values, message", [
    (ramp((20, 32)), r"bad.npy: map of \(height, width\) \(20, 32\), its stimulus is \(24, 32\)"),
    (np.full(SHAPE, 0.5), r"bad.npy: constant map \(every value is 0.5\)"),
    (np.where(ramp() > 0.5, np.inf, ramp()), r"bad.npy: \d+ non-finite values \(the first, inf, at \(row, column\)"),
])
def test_bad_maps_are_named(tmp_path, values, message):
    np.save(tmp_path / "bad.npy", values)
    with pytest.raises(ValueError, match=message):
        sm.checked_map(sm.read_map(tmp_path / "bad.npy"), tmp_path / "bad.npy", SHAPE)


def test_resize_is_bilinear_and_optional(tmp_path):
    small = ramp((12, 16))
    resized = sm.checked_map(small, "small.npy", SHAPE, resize=True)
    assert resized.shape == SHAPE
    # a linear ramp stays a linear ramp inside (edges are held)
    assert np.allclose(np.diff(resized[5:-5, 5:-5], axis=1), np.diff(resized[5:-5, 5:-5], axis=1)[0, 0])


def test_load_maps_caches_on_cells_and_notices_changed_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "maps"
    folder.mkdir()
    for i in range(3):
        np.save(folder / f"im{i}.npy", ramp(scale=i + 1.0))
    first = sm.load_maps(folder, stimuli(), progress=False)
    cached = list((tmp_path / "cache" / "maps").glob("*.h5"))
    assert len(cached) == 1
    again = sm.load_maps(folder, stimuli(), progress=False)
    for a, b, i in zip(first, again, range(3)):
        expected = map_cells(ramp(scale=i + 1.0))
        np.testing.assert_allclose(a.means, expected.means)
        np.testing.assert_allclose(b.means, expected.means)
        assert (b.low, b.high) == (expected.low, expected.high)
    np.save(folder / "im1.npy", ramp(scale=7.0))                       # a changed file: read again
    changed = sm.load_maps(folder, stimuli(), progress=False)
    assert changed[1].high == pytest.approx(7.0 * ramp().max())
    assert len(list((tmp_path / "cache" / "maps").glob("*.h5"))) == 2
    cached[0].write_bytes(b"damaged")                                   # a damaged cache: read the maps again
    np.save(folder / "im1.npy", ramp(scale=2.0))
    assert sm.load_maps(folder, stimuli(), progress=False)[1].high == pytest.approx(2.0 * ramp().max())


def test_evaluate_command_names_a_missing_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "repro", "evaluate", str(tmp_path / "nowhere")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'}: no such folder of saliency maps"]
