"""Training DeepGaze I with SFO (repro.training): a planted model on conv5 features, of real AlexNet on OSIE images
and, with no data at all, of the random-weight AlexNet on the embedded demonstration photographs."""
import numpy as np
import pytest

from repro import metrics
from repro.bfloat16 import compact, expand
from repro.datasets import Fixations, load_osie
from repro.datasets.demo import demo_stimuli
from repro.planted import random_alexnet
from repro.features import FeatureExtractor, FeatureStore, feature_scales
from repro.density import DensityFunction, DensityModel
from repro.model import DeepGazeI, Stacker
from repro.resampling import Geometry
from repro.training import (ImageData, fit, log_densities, log_likelihoods, minibatches, objective, prepare_images,
                            sparsity_penalty)
from repro.crossvalidation import subject_cross_validation

#: Per source: images (the first two thirds train, the rest test), fixations sampled on each, planted features
#: and the size of their weights, and the share of the planted model's information gain on the test images that
#: training must recover. The random network's conv5 features vary less across an image than real ones, and
#: its 8 training images of 256 px hold 8 times fewer cells than OSIE's 16: a stronger, sparser planted readout
#: keeps the demo's test meaningful (over 2 bit/fix) and its 256 weights do not fit its cells as closely.
#: ``compact_nats``: how far bfloat16 features may move a log-likelihood (their rounding, times the weights).
PLANTED = {"osie": dict(images=24, per_image=400, active=12, scale=0.3, recovered=0.95, compact_nats=5e-3),
           "demo": dict(images=12, per_image=400, active=8, scale=2.0, recovered=0.9, compact_nats=2e-2)}

def gaussian_log_prior(shape, width=0.25):
    """A smooth centre bias: log of a normalised Gaussian around the image centre."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    log_p = -((rows / shape[0] - 0.5) ** 2 + (cols / shape[1] - 0.5) ** 2) / (2 * width ** 2)
    return (log_p - np.log(np.exp(log_p).sum())).astype(np.float32)


def sample_fixations(log_density, count, rng):
    """``count`` fixations drawn from a pixel log-density: a pixel, then a uniform point inside it."""
    flat = rng.choice(log_density.size, size=count, p=np.exp(log_density.ravel().astype(np.float64))
                      / np.exp(log_density.astype(np.float64)).sum())
    rows, cols = np.unravel_index(flat, log_density.shape)
    return cols + rng.rand(count), rows + rng.rand(count)


def network_and_stimuli(source, request):
    """The network and images of ``source``: real AlexNet on OSIE (skipped without the data), or the random-weight
    AlexNet on the demonstration photographs (always there)."""
    if source == "demo":
        return random_alexnet(seed=0), demo_stimuli()
    stimuli, _ = load_osie(request.getfixturevalue("osie_dir"), keep_first=False)
    return request.getfixturevalue("alexnet_full"), stimuli.subset(np.arange(PLANTED["osie"]["images"]))


@pytest.fixture(scope="module", params=["osie", "demo"])
def planted(request, tmp_path_factory):
    """A planted conv5 readout and its images with fixations sampled from it (:data:`PLANTED`)."""
    network, stimuli = network_and_stimuli(request.param, request)
    settings = PLANTED[request.param]
    store = FeatureStore(FeatureExtractor(network), tmp_path_factory.mktemp("features"))
    features = [store.features(stimuli[n], ["conv5"]) for n in range(len(stimuli))]
    geometry = store.extractor.geometry(["conv5"])
    n_train = len(stimuli) * 2 // 3
    scales = feature_scales(((stimuli[n].shape[:2], maps) for n, maps in enumerate(features[:n_train])), geometry)
    rng = np.random.RandomState(0)
    w = np.zeros(256)
    w[rng.choice(256, settings["active"], replace=False)] = rng.randn(settings["active"]) * settings["scale"]
    truth = DeepGazeI(["conv5"], [256], scales, geometry, w=w, sigma=6.0, alpha=0.8)
    images, fixations = [], []
    for n, maps in enumerate(features):
        prior = gaussian_log_prior(stimuli[n].shape[:2])
        x, y = sample_fixations(truth.log_density_from_features(maps, prior), settings["per_image"], rng)
        grid = truth.grid(prior.shape, maps)
        images.append(ImageData(maps, grid, grid.log_cell_sums(prior), x, y))
        fixations.append(Fixations(x, y, np.full(len(x), n)))
    return truth, images, Fixations.concatenate(fixations), stimuli, store


def information_gain_over_prior(model, images):
    prior = np.concatenate([gaussian_log_prior(im.grid.image_shape)[im.y.astype(int), im.x.astype(int)]
                            for im in images])
    return metrics.information_gain(log_likelihoods(model, images), prior)


def test_training_recovers_the_planted_model(planted, request):
    truth, images, _, _, _ = planted
    recovered = PLANTED[request.node.callspec.params["planted"]]["recovered"]
    train, test = images[:len(images) * 2 // 3], images[len(images) * 2 // 3:]
    model = DeepGazeI(["conv5"], [256], truth.feature_scales, truth.geometry, sigma=3.0, alpha=0.5)
    history = fit(model, train, regularization=1e-3, n_batches=4, num_passes=25, seed=0, progress=False)

    planted_ig, fitted_ig = information_gain_over_prior(truth, test), information_gain_over_prior(model, test)
    assert planted_ig > 0.3                       # the planted features carry real information
    assert fitted_ig >= recovered * planted_ig, (fitted_ig, planted_ig)
    assert history["objective"][-1] < history["objective"][0]


def test_fit_is_deterministic_given_the_seed(planted):
    truth, images, _, _, _ = planted
    results = []
    for _ in range(2):
        model = DeepGazeI(["conv5"], [256], truth.feature_scales, truth.geometry, sigma=3.0, alpha=0.5)
        fit(model, images[:4], n_batches=2, num_passes=2, seed=3, progress=False)
        results.append(model.parameters)
    np.testing.assert_array_equal(results[0]["w"], results[1]["w"])
    assert results[0]["alpha"] == results[1]["alpha"]


@pytest.mark.parametrize("in_memory", [True, False])
def test_prepare_images_groups_fixations_and_priors(planted, in_memory):
    _, images, fixations, stimuli, store = planted
    prepared = prepare_images(store, stimuli, fixations, ["conv5"],
                              log_centerbias=lambda n: gaussian_log_prior(stimuli[n].shape[:2]),
                              images=[2, 0], in_memory=in_memory, progress=False)
    for got, n in zip(prepared, [2, 0]):
        assert callable(got.source) != in_memory          # on disk: read back whenever it is used
        np.testing.assert_array_equal(got.cells, images[n].cells)
        np.testing.assert_array_equal(got.counts, images[n].counts)
        np.testing.assert_array_equal(got.features[0], images[n].features[0])
        np.testing.assert_array_equal(got.log_prior, images[n].log_prior)


class GaussianPrior(DensityModel):
    """:func:`gaussian_log_prior` as a density model of new images."""

    def log_density_of(self, image):
        return gaussian_log_prior(image.shape[:2])


def test_readout_density_of_dataset_and_new_images_equals_the_model_on_prepared_images(planted):
    truth, images, fixations, stimuli, store = planted
    prior = DensityFunction(lambda n: gaussian_log_prior(stimuli[n].shape[:2]))
    density = truth.density(store, prior, stimuli)
    np.testing.assert_allclose(density.log_density(1), log_densities(truth, images[1:2])[0], atol=1e-6)
    uniform = truth.density(store, stimuli=stimuli).log_density(1)
    assert uniform.shape == stimuli[1].shape[:2] and not np.allclose(uniform, density.log_density(1))
    # the same image as a new image, with the same prior as a model of new images
    np.testing.assert_allclose(truth.density(store, GaussianPrior()).log_density_of(stimuli[1]),
                               density.log_density(1), atol=1e-6)
    with pytest.raises(TypeError, match="without stimuli"):
        truth.density(store).log_density(1)


def test_minibatches_partition_the_images():
    batches = minibatches(10, 3, seed=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert [len(b) for b in batches] == [4, 3, 3]


@pytest.mark.parametrize("x, y", [(5.0, 1.0), (-0.5, 1.0), (1.0, np.nan), (4.99, 4.0)])
def test_fixations_outside_the_image_are_rejected(x, y):
    grid = Geometry(((0.5, 1.0),), (0.5, 1.0)).readout_grid((4, 5), [(4, 5)])
    with pytest.raises(ValueError, match="outside"):
        ImageData([np.ones((1, 4, 5), np.float32)], grid, np.zeros((4, 5)), np.array([x]), np.array([y]))


def test_subject_cross_validation_scores_every_fixation_in_its_role(planted):
    truth, images, fixations, stimuli, store = planted
    subject = np.random.RandomState(2).randint(0, 2, len(fixations))
    fixations = Fixations(fixations.x, fixations.y, fixations.n, subject=subject).for_images(range(6))
    prior = DensityFunction(lambda n: gaussian_log_prior(stimuli[n].shape[:2]))
    baseline_ll = metrics.log_likelihoods(prior, fixations)
    gold_ll = metrics.log_likelihoods(truth.density(store, prior, stimuli), fixations)    # the true density
    result = subject_cross_validation(store, stimuli, fixations, [0, 1, 2, 3], [4, 5], ["conv5"], prior,
                                      baseline_ll, gold_ll, num_passes=3, n_batches=2, progress=False)
    assert result["subjects"] == [0, 1]
    assert [m.metadata["held_out_subject"] for m in result["models"]] == [0, 1]
    on_train = fixations.n < 4
    pooled = {role: [0.0, 0.0, 0] for role in ("test_subjects", "train_subjects", "test_images")}
    for s, (model, scores) in enumerate(zip(result["models"], result["folds"])):
        # each role's fixations are scored by the fold's model, independently prepared here
        for role, mask in (("test_subjects", on_train & (fixations.subject == s)),
                           ("train_subjects", on_train & (fixations.subject != s)), ("test_images", ~on_train)):
            scored = fixations.filter(mask)
            expected = metrics.log_likelihoods(model.density(store, prior, stimuli), scored)
            gains = scores["gains"][role]
            assert gains["n"] == mask.sum()
            assert gains["model"] == pytest.approx(np.sum(expected - baseline_ll[mask]), rel=1e-5)
            assert gains["gold"] == pytest.approx(np.sum(gold_ll[mask] - baseline_ll[mask]), rel=1e-12)
            pooled[role] = [a + b for a, b in zip(pooled[role], (gains["model"], gains["gold"], gains["n"]))]
    for role, (model_gain, gold_gain, n) in pooled.items():          # folds pooled: every fixation weighs the same
        assert result["scores"][f"ig_{role}"] == pytest.approx(model_gain / n / np.log(2), rel=1e-12)
        assert result["scores"][f"explained_{role}"] == pytest.approx(model_gain / gold_gain, rel=1e-12)
    assert result["scores"]["explained_test_images"] < 1            # nothing beats the density that made them
    # without a baseline: AUCs only, and an aggregate of them
    plain = subject_cross_validation(store, stimuli, fixations, [0, 1, 2, 3], [4, 5], ["conv5"], prior, None, None,
                                     subjects=[0], num_passes=3, n_batches=2, progress=False)
    assert "gains" not in plain["folds"][0] and set(plain["scores"]) == {"sauc_train", "sauc_test", "auc_test"}
    assert plain["scores"]["auc_test"] == result["folds"][0]["auc_test"]


def test_trained_density_sums_to_one_and_the_objective_is_the_metrics_log_likelihood(planted):
    """On real conv5 features: what SFO minimises is -mean log-likelihood (as the metrics score it) + penalty."""
    truth, images, fixations, _, _ = planted
    model = DeepGazeI(["conv5"], [256], truth.feature_scales, truth.geometry, sigma=3.0, alpha=0.5)
    fit(model, images[:6], regularization=1e-3, n_batches=2, num_passes=4, seed=0, progress=False)
    densities = log_densities(model, images[:6])
    for density in densities:
        assert np.exp(density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-5)
    scored = fixations.for_images(range(6))
    ll = metrics.log_likelihoods(densities, scored)
    batches = minibatches(6, 2, seed=0)
    f_df = objective(model, images[:6], batches, regularization=1e-3)
    total = sum(f_df(model.parameters, b)[0] for b in range(len(batches)))
    assert total == pytest.approx(-ll.mean() + sparsity_penalty(model.w, 1e-3)[0], abs=1e-5)


def test_penalty_gradient_and_zero_weights():
    w = np.array([0.5, -2.0, 1.0])
    value, grad = sparsity_penalty(w, 0.1)
    assert value == pytest.approx(0.1 * 3.5 / np.sqrt(5.25))
    eps = 1e-6
    for k in range(3):
        moved = w.copy()
        moved[k] += eps
        assert grad[k] == pytest.approx((sparsity_penalty(moved, 0.1)[0] - value) / eps, rel=1e-4)
    with pytest.raises(FloatingPointError):
        sparsity_penalty(np.zeros(3), 0.1)


def test_compact_maps_are_bfloat16_and_stack_as_uint16(planted, request):
    truth, images, fixations, stimuli, store = planted
    tolerance = PLANTED[request.node.callspec.params["planted"]]["compact_nats"]
    maps = images[0].features[0]
    packed = compact(maps)
    assert packed.dtype == np.uint16 and packed.nbytes == maps.nbytes // 2
    back = expand(packed)
    np.testing.assert_allclose(back, maps, rtol=2.0 ** -8, atol=0)          # nearest bfloat16
    assert np.abs(back - maps).max() > 0                                    # it does round
    assert expand(np.float32([1.0, -2.5, 0.0]).view(np.uint32).astype(np.uint16)).dtype == np.float32
    stacker = Stacker()
    first = stacker([[packed], [compact(images[1].features[0])]])[0]
    assert first.dtype == np.uint16 and first.shape == (packed.shape[0], 2) + packed.shape[1:]
    np.testing.assert_array_equal(expand(first[:, 0]), back)
    again = stacker([[images[2].features[0]]])[0]                      # float32: a buffer of its own
    assert again.dtype == np.float32
    np.testing.assert_array_equal(again[:, 0], images[2].features[0])
    reused = stacker([[compact(images[2].features[0])]])[0]              # reuses (overwrites) the uint16 buffer
    assert reused.base is first.base
    np.testing.assert_array_equal(reused[:, 0], compact(images[2].features[0]))
    with pytest.raises(ValueError, match="compact and float32"):
        stacker([[packed], [maps]])
    # a model scores compact features within a fraction of a per cent of a nat of the float32 ones
    compacted = prepare_images(store, stimuli, fixations.for_images([0, 1]), ["conv5"], in_memory="compact",
                               log_centerbias=lambda n: gaussian_log_prior(stimuli[n].shape[:2]), progress=False)
    assert compacted[0].maps[0].dtype == np.uint16
    np.testing.assert_allclose(log_likelihoods(truth, compacted), log_likelihoods(truth, images[:2]), atol=tolerance)
    mixed = log_likelihoods(truth, compacted + images[2:3])                   # held differently: two stacks
    np.testing.assert_array_equal(mixed[-len(images[2].cells):], log_likelihoods(truth, images[2:3]))
