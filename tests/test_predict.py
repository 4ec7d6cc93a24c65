"""Prediction on new images: the model API and ``python -m repro predict``."""
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
