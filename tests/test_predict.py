"""Prediction on new images: the model API and ``python -m repro predict``."""
import numpy as np
import pytest
from PIL import Image

from repro.__main__ import main
from repro.datasets import load_image
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


def test_predict_command_writes_the_models_log_density_and_an_overlay(saved_model, osie_dir, weights_source,
                                                                      tmp_path):
    model, extractor, path = saved_model
    image_file = osie_dir / "stimuli" / "1003.jpg"
    assert main(["predict", str(image_file), "--model", str(path), "--network",
                 str(weights_source / "bvlc_alexnet"), "--out", str(tmp_path / "out")]) == 0
    log_density = np.load(tmp_path / "out" / "1003_logdensity.npy")
    image = load_image(image_file)
    assert log_density.shape == image.shape[:2]
    assert np.exp(log_density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-4)
    np.testing.assert_allclose(log_density, model.log_density(image, extractor), rtol=1e-6)
    with Image.open(tmp_path / "out" / "1003_overlay.png") as overlay:
        assert overlay.size == (image.shape[1], image.shape[0])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1003_logdensity.npy", "1003_overlay.png"]


def test_prediction_refuses_another_network(saved_model, osie_dir, weights_source, tmp_path, capsys):
    model, _, _ = saved_model
    model.metadata["network"]["caffemodel_sha1"] = "0" * 40
    model.save(tmp_path / "other.h5")
    assert main(["predict", str(osie_dir / "stimuli" / "1003.jpg"), "--model", str(tmp_path / "other.h5"),
                 "--network", str(weights_source / "bvlc_alexnet"), "--out", str(tmp_path / "out")]) == 1
    assert "not the network the model was trained with" in capsys.readouterr().err


def test_log_density_checks_the_prior_shape(saved_model, osie_dir):
    model, extractor, _ = saved_model
    with pytest.raises(ValueError, match="log_centerbias has shape"):
        model.log_density(load_image(osie_dir / "stimuli" / "1003.jpg"), extractor, np.zeros((10, 10)))
