"""Prediction on new images: the model API and ``python -m repro predict``."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.__main__ import main
from repro.datasets import load_image
from repro.density import DensityModel
from repro.features import FeatureExtractor
from repro.model import DeepGazeI


@pytest.fixture()
def saved_model(alexnet_full, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    extractor = FeatureExtractor(alexnet_full)
    model = DeepGazeI(["conv5"], [256], np.full(256, 0.05), extractor.geometry(["conv5"]),
                      w=np.random.RandomState(0).randn(256), sigma=2.0,
                      alpha=1.0, metadata={"network": extractor.metadata})
    model.save(tmp_path / "model.h5")
    return model, extractor, tmp_path / "model.h5"


def test_predict_command_writes_the_models_log_density_and_a_picture(saved_model, osie_dir, weights_source,
                                                                      tmp_path):
    model, extractor, path = saved_model
    image_file = osie_dir / "stimuli" / "1003.jpg"
    assert main(["predict", str(image_file), "--model", str(path), "--network",
                 str(weights_source / "bvlc_alexnet"), "--out", str(tmp_path / "out")]) == 0
    log_density = np.load(tmp_path / "out" / "1003_logdensity.npy")
    image = load_image(image_file)
    assert log_density.shape == image.shape[:2]
    assert np.exp(log_density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-4)
    np.testing.assert_allclose(log_density, model.density(extractor).log_density_of(image), rtol=1e-6)
    with Image.open(tmp_path / "out" / "1003_density.png") as picture:
        assert picture.size[0] == 1200 and picture.mode in ("RGB", "RGBA")     # two panels, 12 inches at 100 dpi
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1003_density.png", "1003_logdensity.npy"]


def test_prediction_refuses_another_network(saved_model, osie_dir, weights_source, tmp_path, capsys):
    model, _, _ = saved_model
    model.metadata["network"]["caffemodel_sha1"] = "0" * 40
    model.save(tmp_path / "other.h5")
    assert main(["predict", str(osie_dir / "stimuli" / "1003.jpg"), "--model", str(tmp_path / "other.h5"),
                 "--network", str(weights_source / "bvlc_alexnet"), "--out", str(tmp_path / "out")]) == 1
    assert "not the network the model was trained with" in capsys.readouterr().err


def test_log_density_checks_the_prior_shape(saved_model, osie_dir):
    model, extractor, _ = saved_model

    class WrongSize(DensityModel):
        def log_density_of(self, image):
            return np.zeros((10, 10))

    with pytest.raises(ValueError, match=r"gave a log-density of shape \(10, 10\), the image is \(600, 800\)"):
        model.density(extractor, WrongSize()).log_density_of(load_image(osie_dir / "stimuli" / "1003.jpg"))


def test_highest_density_levels_enclose_the_asked_mass():
    from repro.predict import highest_density_levels
    rng = np.random.RandomState(0)
    log_density = rng.randn(40, 50) * 2
    log_density -= np.log(np.exp(log_density).sum())
    p = np.exp(log_density)
    for q, level in zip((0.25, 0.5, 0.75), highest_density_levels(log_density)):
        inside = log_density >= level
        assert q <= p[inside].sum() < q + p[inside].min() + 1e-12      # just reaches q: the smallest such region
        assert p[inside].min() >= p[~inside].max()                     # and the densest pixels
    ordered = np.sort(log_density.ravel())[::-1]                       # the levels a full sort gives
    assert highest_density_levels(log_density) == [ordered[np.searchsorted(np.cumsum(np.exp(ordered)), q)]
                                                   for q in (0.25, 0.5, 0.75)]


def test_density_figure_shows_the_regions_and_the_log_density():
    """The figure (PIL): the image with the borders of the 25/50/75 % regions in their three colours and the
    fixations | the log-density in inferno colours, brightest where the density is highest; a flat map draws no
    borders."""
    from repro.predict import _colours, density_figure
    rows, cols = np.mgrid[0:600, 0:800]
    log_density = -((rows - 300) ** 2 + (cols - 200) ** 2) / (2 * 80.0 ** 2)     # a blob left of the centre
    log_density -= np.log(np.exp(log_density).sum())
    image = np.full((600, 800, 3), 128, np.uint8)
    picture = density_figure(image, log_density, fixations=np.array([[600.0, 100.0]]), title="a blob")
    assert picture.mode == "RGB" and picture.size[0] == 1200 and 450 < picture.size[1] < 600
    pixels = np.asarray(picture).reshape(-1, 3)
    borders = _colours("autumn")[(np.linspace(0, 0.8, 3) * 255).round().astype(int)]
    for colour in borders:
        assert (pixels == colour).all(axis=1).sum() > 200                  # each region's border (and legend line)
    assert ((pixels == (0, 255, 255)).all(axis=1)).sum() > 5                # the fixation
    brightest = (np.asarray(picture) == _colours("inferno")[255]).all(axis=2)
    assert brightest.any() and 650 < np.nonzero(brightest)[1].mean() < 750    # at the blob: a quarter into the right
                                                                              # panel (its columns 567-1104)
    flat = np.asarray(density_figure(image, np.full((600, 800), -np.log(480000.0)))).reshape(-1, 3)
    assert all((flat == colour).all(axis=1).sum() < 60 for colour in borders)     # only the legend's lines


def test_train_then_predict_with_the_default_model(osie_dir, weights_source, data_dir, tmp_path, monkeypatch, capsys):
    """``train`` writes weights/deepgaze1.h5 with its network recorded; ``predict`` reads it by default and
    draws the given fixations."""
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("DEEPGAZE_DATA", str(data_dir))
    assert main(["train", "--images", "3"]) == 0
    out = capsys.readouterr().out
    assert "test images (" in out and "shuffled AUC" in out and "wall time" in out
    model = DeepGazeI.load(tmp_path / "weights" / "deepgaze1.h5")
    assert model.metadata["network"]["prototxt"] == "deploy.prototxt" and model.metadata["network"]["padding"] == "full"
    assert len(model.metadata["split"]["train"]) == 3 and model.metadata["subjects"] == "all"
    (tmp_path / "fixations.csv").write_text("image,x,y\n1003.jpg,100,200\n1003.jpg,400,300\nother,5,5\n")
    assert main(["predict", str(osie_dir / "stimuli" / "1003.jpg"), "--network", str(weights_source / "bvlc_alexnet"),
                 "--fixations", str(tmp_path / "fixations.csv"), "--out", str(tmp_path / "out")]) == 0
    log_density = np.load(tmp_path / "out" / "1003_logdensity.npy")
    expected = model.density(FeatureExtractor(model_network(weights_source)))
    np.testing.assert_allclose(log_density, expected.log_density_of(load_image(osie_dir / "stimuli" / "1003.jpg")),
                               rtol=1e-6)
    assert (tmp_path / "out" / "1003_density.png").stat().st_size > 10_000


def model_network(weights_source):
    from repro.network import Network
    folder = weights_source / "bvlc_alexnet"
    return Network(folder / "deploy.prototxt", sorted(folder.glob("*.caffemodel"))[-1], padding="full",
                   last_layer="pool5")


def test_predict_without_a_model_says_how_to_get_one(tmp_path, osie_dir, monkeypatch, capsys):
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    assert main(["predict", str(osie_dir / "stimuli" / "1003.jpg")]) == 1
    err = capsys.readouterr().err
    assert f"no model at {tmp_path / 'weights' / 'deepgaze1.h5'}" in err and "python -m repro train" in err


def test_a_datasets_centre_bias_template_is_fitted_once_then_read(data_dir, tmp_path, monkeypatch, capsys):
    from repro.centerbias import fit_center_bias
    from repro.datasets import load_dataset
    from repro.predict import center_bias_template
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path / "cache"))
    template = center_bias_template("mit1003", data_dir)
    assert "fitting the centre bias of mit1003 once" in capsys.readouterr().err
    path, = (tmp_path / "cache" / "centerbias").glob("mit1003-*.npz")
    stamp = path.stat().st_mtime_ns
    again = center_bias_template("mit1003", data_dir)
    assert path.stat().st_mtime_ns == stamp and "fitting" not in capsys.readouterr().err
    stimuli, fixations = load_dataset("mit1003", data_dir, keep_first=False)
    image = np.zeros((480, 640, 3), np.uint8)
    expected = fit_center_bias(stimuli.sizes, fixations, frame=(100, 100)).log_density_of(image)
    np.testing.assert_allclose(again.log_density_of(image), expected, rtol=1e-10)
    assert center_bias_template(str(path)).eps == template.eps and center_bias_template("uniform") is None


def test_predict_and_the_experiments_find_the_same_alexnet(tmp_path, monkeypatch):
    """One lookup (repro.paths.find_weights): the data directory's copy, then weights/; a given folder only."""
    from argparse import Namespace

    from repro import experiments as ex
    from repro.paths import find_weights

    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    for folder in (tmp_path / "data" / "weights" / "bvlc_alexnet", tmp_path / "weights" / "bvlc_alexnet"):
        folder.mkdir(parents=True)
        for name in ("deploy.prototxt", "a.v1.caffemodel", "a.v2.caffemodel"):
            (folder / name).write_text(name)
    data = tmp_path / "data"
    found = find_weights("bvlc_alexnet", data=data)
    assert found == (data / "weights" / "bvlc_alexnet" / "deploy.prototxt",
                     data / "weights" / "bvlc_alexnet" / "a.v2.caffemodel")
    options = ex.options_of(Namespace(dataset="demo", data_dir=str(data), weights=None, quick=True, seed=0))
    assert options["weights"] == str(found[0].parent.resolve())
    assert find_weights("bvlc_alexnet")[0].parent == tmp_path / "weights" / "bvlc_alexnet"
    (data / "weights" / "bvlc_alexnet" / "a.v1.caffemodel").unlink()
    (data / "weights" / "bvlc_alexnet" / "a.v2.caffemodel").unlink()
    assert find_weights("bvlc_alexnet", data=data)[0].parent == tmp_path / "weights" / "bvlc_alexnet"
    with pytest.raises(FileNotFoundError, match="no deploy.prototxt and \\*.caffemodel there"):
        find_weights("bvlc_alexnet", data / "weights" / "bvlc_alexnet")


# -- collections of images (issue 28) ---------------------------------------------------------------------------

@pytest.fixture()
def small_images(osie_dir, tmp_path):
    """Four small crops of OSIE images (120 x 160 px) in a folder, as JPEG and PNG, and an unrelated file."""
    folder = tmp_path / "images"
    folder.mkdir()
    for n, name in enumerate(["a.jpg", "b.png", "c.jpg", "d.JPG"]):
        image = load_image(osie_dir / "stimuli" / f"100{n + 1}.jpg")[100:220, 200:360]
        Image.fromarray(image).save(folder / name, format="PNG" if name.endswith("png") else "JPEG", quality=95)
    (folder / "notes.txt").write_text("not an image")
    return folder


def predict(path, weights_source, source, *more):
    """``python -m repro predict SOURCE MORE...`` with the model at ``path`` and the real AlexNet; its exit status."""
    network = weights_source / "bvlc_alexnet"
    return main(["predict", str(source), *map(str, more), "--model", str(path), "--network", str(network)])


def dead_pid():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture()
def serial_run(saved_model, small_images, weights_source, tmp_path):
    """The model file and the folder of the .npy outputs of a serial run on ``small_images``, without figures."""
    _, _, path = saved_model
    assert predict(path, weights_source, small_images, "--no-figures", "--out", tmp_path / "serial") == 0
    return path, tmp_path / "serial"


@pytest.mark.slow
def test_predicting_a_folder_again_skips_what_is_done_and_completes_what_is_not(saved_model, small_images,
                                                                                  weights_source, tmp_path, capsys):
    model, extractor, path = saved_model
    out = tmp_path / "out"
    assert predict(path, weights_source, small_images, "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "4 images: 4 to predict, 0 done already (skipped); figures on (up to 10 images" in captured.err
    assert "4 images predicted" in captured.out
    stems = ["a", "b", "c", "d"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{s}_logdensity.npy" for s in stems] +
                                                           [f"{s}_density.png" for s in stems])
    density = model.density(extractor)
    for stem, name in zip(stems, ["a.jpg", "b.png", "c.jpg", "d.JPG"]):
        log_density = np.load(out / f"{stem}_logdensity.npy")
        assert log_density.shape == (120, 160) and log_density.dtype == np.float64
        np.testing.assert_array_equal(log_density, density.log_density_of(load_image(small_images / name)))
    first = outputs(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    assert predict(path, weights_source, small_images, "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "0 to predict, 4 done already (skipped)" in captured.err and "4 skipped" in captured.out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    # a killed run: one output missing, another's temporary file left by a dead process
    (out / "c_logdensity.npy").unlink()
    (out / "d_density.png").unlink()
    leftover = out / f".c_logdensity.npy.{dead_pid()}.x1y2.part"
    leftover.write_bytes(b"half")
    assert predict(path, weights_source, small_images, "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "2 to predict, 2 done already (skipped)" in captured.err and "2 images predicted" in captured.out
    assert not leftover.exists() and outputs(out).keys() == first.keys()
    for name in ("a_logdensity.npy", "b_logdensity.npy", "c_logdensity.npy", "d_logdensity.npy"):
        assert outputs(out)[name] == first[name]


def test_sources_are_files_folders_patterns_and_lists(small_images, tmp_path):
    from repro.predict import gather_images
    listed = tmp_path / "list.txt"
    listed.write_text(f"# my images\nimages/b.png\n\n{small_images / 'a.jpg'}\nimages/*.jpg\n")
    names = lambda paths: [p.name for p in paths]                                   # noqa: E731
    assert names(gather_images([str(small_images)])) == ["a.jpg", "b.png", "c.jpg", "d.JPG"]
    assert names(gather_images([f"{small_images}/*.jpg"])) == ["a.jpg", "c.jpg"]
    assert names(gather_images([f"{tmp_path}/**/*.png"])) == ["b.png"]
    assert names(gather_images([f"@{listed}"])) == ["b.png", "a.jpg", "c.jpg"]     # each once, in the order given
    assert names(gather_images([str(small_images / "c.jpg")], lists=[listed])) == ["c.jpg", "b.png", "a.jpg"]
    with pytest.raises(FileNotFoundError, match="nothing.jpg: no such image, folder or pattern"):
        gather_images([str(small_images / "nothing.jpg")])
    with pytest.raises(FileNotFoundError, match=r"\*.gif: pattern without images"):
        gather_images([f"{small_images}/*.gif"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: folder without images"):
        gather_images([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="missing.txt: no such list file"):
        gather_images([f"@{tmp_path / 'missing.txt'}"])


def test_images_of_the_same_name_are_an_error_before_anything_is_computed(small_images, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes((small_images / "b.png").read_bytes())
    assert main(["predict", str(small_images), str(other), "--model", str(tmp_path / "no-model.h5"),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {small_images / 'a.jpg'} and {other / 'a.png'} would write the same output files")
    assert not (tmp_path / "out").exists()


def test_a_bad_image_stops_the_run_naming_it_and_keeps_what_was_written(saved_model, small_images, weights_source,
                                                                        tmp_path, capsys):
    _, _, path = saved_model
    (small_images / "b2.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert predict(path, weights_source, f"{small_images}/[ab]*", "--out", str(out)) == 1
    assert f"{small_images / 'b2.jpg'}" in capsys.readouterr().err.splitlines()[-1]
    assert sorted(p.name for p in out.iterdir()) == ["a_density.png", "a_logdensity.npy", "b_density.png",
                                                     "b_logdensity.npy"]


@pytest.mark.slow
def test_one_hdf5_file_holds_the_npy_outputs_and_is_resumed(serial_run, small_images, weights_source, tmp_path,
                                                            capsys):
    import h5py
    path, out = serial_run
    store = tmp_path / "predictions.h5"
    assert predict(path, weights_source, small_images, "--hdf5", str(store), "--out", str(out)) == 0
    assert "figures on (up to 10 images" in capsys.readouterr().err
    names = ["a.jpg", "b.png", "c.jpg", "d.JPG"]
    with h5py.File(store, "r") as f:
        assert sorted(f) == names and f.attrs["model"] == "model.h5" and f.attrs["prior"] == "uniform"
        for name in names:
            expected = np.load(out / f"{Path(name).stem}_logdensity.npy")
            assert f[name].dtype == expected.dtype and f[name].attrs["complete"]
            np.testing.assert_array_equal(f[name][()], expected)
            assert f[name].attrs["source"] == str(small_images / name)
    with h5py.File(store, "a") as f:                          # a run killed while writing c.jpg
        del f["c.jpg"]
        f.create_dataset("c.jpg", data=np.zeros((120, 160), np.float32))
    assert predict(path, weights_source, small_images, "--hdf5", str(store), "--out", str(out)) == 0
    assert "1 to predict, 3 done already (skipped)" in capsys.readouterr().err
    with h5py.File(store, "r") as f:
        np.testing.assert_array_equal(f["c.jpg"][()], np.load(out / "c_logdensity.npy"))

    pysaliency = pytest.importorskip("pysaliency")
    files = [str(small_images / name) for name in names]
    as_model = pysaliency.HDF5Model(pysaliency.FileStimuli(files), str(store))
    np.testing.assert_array_equal(as_model.log_density(load_image(files[1])), np.load(out / "b_logdensity.npy"))


def test_an_hdf5_file_of_another_model_is_not_added_to(saved_model, small_images, weights_source, tmp_path, capsys):
    import h5py
    _, _, path = saved_model
    with h5py.File(tmp_path / "predictions.h5", "w") as f:
        f.attrs.update({"format": "deepgaze1-repro log-densities: one dataset per image file name",
                        "model": "other.h5", "model_sha256": "0" * 64, "network": "x", "prior": "uniform"})
    assert predict(path, weights_source, small_images / "a.jpg", "--hdf5", tmp_path / "predictions.h5") == 1
    assert "holds log-densities of another model, network or prior" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_of_a_dask_cluster_write_what_a_serial_run_writes(serial_run, small_images, weights_source, tmp_path,
                                                                   capsys):
    import dask
    import h5py
    from distributed import LocalCluster

    from repro.cluster import same_blas_threads
    path, serial = serial_run
    parallel = tmp_path / "parallel"
    assert predict(path, weights_source, small_images, "--no-figures", "--out", parallel, "--workers", "2") == 0
    assert "4 images predicted" in capsys.readouterr().out
    assert outputs(parallel) == outputs(serial)                                  # bit for bit
    # a cluster of its own (--scheduler), its worker with this process's BLAS threads: with dask's default of one,
    # the trunk's float32 sums differ in their last bits (1e-6 relative) from a run with two
    with dask.config.set({"distributed.nanny.pre-spawn-environ": same_blas_threads()}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert predict(path, weights_source, small_images, "--no-figures", "--hdf5", tmp_path / "p.h5",
                       "--scheduler", cluster.scheduler_address) == 0
    with h5py.File(tmp_path / "p.h5", "r") as f:
        for name in f:
            np.testing.assert_array_equal(f[name][()], np.load(serial / f"{Path(name).stem}_logdensity.npy"))
