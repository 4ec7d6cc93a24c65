"""DeepGaze I through pysaliency gives this package's numbers (the optional pysaliency extra)."""
import numpy as np
import pytest

pysaliency = pytest.importorskip("pysaliency", reason="the optional extra: pip install -e '.[interop]'")

from repro import metrics                                          # noqa: E402
from repro.datasets import load_osie                               # noqa: E402
from repro.features import FeatureExtractor, FeatureStore          # noqa: E402
from repro.interop import DeepGazeIModel, to_pysaliency            # noqa: E402
from repro.model import DeepGazeI                                  # noqa: E402


def test_information_gain_and_auc_through_pysaliency_equal_ours(alexnet_full, osie_dir, tmp_path):
    stimuli, fixations = load_osie(osie_dir, keep_first=False)
    images = [0, 1, 2]
    stimuli, fixations = stimuli.subset(images), fixations.remap_images(images)
    extractor = FeatureExtractor(alexnet_full)
    model = DeepGazeI(["conv5"], [256], np.full(256, 0.05, np.float32), extractor.geometry(["conv5"]),
                      w=np.random.RandomState(0).randn(256), sigma=2.0, alpha=1.0,
                      metadata={"network": extractor.metadata})
    store = FeatureStore(extractor, tmp_path)
    ours = [model.density(store).log_density_of(stimuli[n]) for n in range(len(images))]
    ll = metrics.log_likelihoods(ours, fixations)
    ig = metrics.information_gain(ll, metrics.log_uniform(fixations, stimuli.sizes))
    auc = metrics.auc(ours, fixations)

    ps_stimuli, ps_fixations = to_pysaliency(stimuli, fixations)
    wrapped = DeepGazeIModel(model, store, caching=False)
    assert wrapped.information_gain(ps_stimuli, ps_fixations, pysaliency.UniformModel()) == pytest.approx(ig, rel=1e-6)
    assert pysaliency.DensitySaliencyMapModel(wrapped).AUC(ps_stimuli, ps_fixations) == pytest.approx(auc, abs=1e-9)
