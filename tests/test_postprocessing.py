"""The postprocessing of saliency maps into densities (repro.postprocessing): its gradient against finite differences,
its density's normalisation, recovery of a planted postprocessing, and agreement with pysaliency's reference fit on
real OSIE maps."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter

from repro import metrics
from repro import postprocessing as pp
from repro.backend import T, theano
from repro.datasets import Fixations, Stimuli


def smooth_maps(n_images, shape=(96, 128), seed=0, scale=5.0):
    rng = np.random.default_rng(seed)
    return [gaussian_filter(rng.random(shape), scale) for _ in range(n_images)]


def sampled_fixations(truth, maps, per_image, seed=0):
    """Fixations drawn from the density of ``truth`` on each map (uniform within the pixel)."""
    rng = np.random.default_rng(seed)
    x, y, n = [], [], []
    for i, saliency in enumerate(maps):
        p = np.exp(truth.log_density_of_map(saliency)).ravel()
        rows, cols = np.divmod(rng.choice(p.size, size=per_image, p=p / p.sum()), saliency.shape[1])
        x.append(cols + rng.random(per_image)), y.append(rows + rng.random(per_image)), n.append(np.full(per_image, i))
    return Fixations(np.concatenate(x), np.concatenate(y), np.concatenate(n))


PLANTED = dict(sigma=1.5, nonlinearity=np.linspace(-6, 0, 20) ** 1, centerbias=-np.linspace(0, 3, 12) ** 1.5,
               aspect=0.6)


def test_grid_is_deepgaze_readouts_grid():
    """GRID is where AlexNet's conv1 units (the readout's grid layer) sit in full padding: the readout and converted
    maps are scored on the same cells."""
    from repro.features import FeatureExtractor
    from repro.planted import random_alexnet

    extractor = FeatureExtractor(random_alexnet(0))
    assert extractor.grid_layer == "conv1"
    assert extractor.unit_positions("conv1") == pp.GRID


def test_piecewise_linear_matches_interpolation_and_its_gradient():
    rng = np.random.default_rng(1)
    log_values, position = rng.normal(size=7), rng.random((3, 4, 5))
    v, p = T.dvector(), T.dtensor3()
    f = theano.function([v, p], pp._piecewise_linear(v, p))
    np.testing.assert_allclose(f(log_values, position), np.interp(position, np.linspace(0, 1, 7), np.exp(log_values)),
                               rtol=1e-12)
    theano.gradient.verify_grad(pp._piecewise_linear, [log_values, position], rng=np.random.RandomState(0))


def test_gradient_of_the_fitted_log_likelihood_matches_finite_differences():
    maps = smooth_maps(3, (40, 56))
    truth = pp.Postprocessing(0.3, 0.7, **PLANTED)
    fixations = sampled_fixations(truth, maps, 50)
    stacks = pp._stacks([pp.map_cells(m) for m in maps], [(fixations.x[fixations.n == i], fixations.y[fixations.n == i])
                                                         for i in range(3)], truth)
    _, loglik_and_grad = pp._compiled(20, 12)
    theta = truth.theta + np.random.default_rng(2).normal(0, 0.05, truth.theta.size)
    theta[1:20] = np.abs(theta[1:20])
    value, grad = loglik_and_grad(theta, *stacks[0])
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        numeric = (loglik_and_grad(theta + step, *stacks[0])[0] - loglik_and_grad(theta - step, *stacks[0])[0]) / 2e-6
        assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-4), i


def test_density_is_normalised_at_the_pixels_and_monotone_in_the_map():
    saliency = smooth_maps(1, (61, 83))[0]
    post = pp.Postprocessing(saliency.min(), saliency.max(), **PLANTED)
    log_density = post.log_density_of_map(saliency)
    assert log_density.shape == saliency.shape
    assert np.exp(log_density).sum() == pytest.approx(1, abs=1e-10)
    cells = pp.map_cells(saliency)
    ranks = np.argsort(cells.means.ravel())
    # without blur and centre bias, the density ranks cells exactly as the map's cell means do
    sharp = pp.Postprocessing(saliency.min(), saliency.max(), sigma=0.1, nonlinearity=PLANTED["nonlinearity"])
    assert np.all(np.diff(sharp.log_cell_density(cells).ravel()[ranks]) >= -1e-12)


def test_planted_postprocessing_is_recovered():
    """Fixations sampled from a known blur, nonlinearity and centre bias of known maps: the fit finds them, and
    its log-likelihood on new fixations is the truth's."""
    maps = smooth_maps(60, (160, 200), scale=8.0)
    truth = pp.Postprocessing(min(m.min() for m in maps), max(m.max() for m in maps), **PLANTED)
    fixations = sampled_fixations(truth, maps, 400)
    fitted = pp.fit_postprocessing(maps, fixations, np.arange(60))
    assert fitted.info["converged"]
    assert fitted.sigma == pytest.approx(truth.sigma, rel=0.1)
    assert fitted.aspect == pytest.approx(truth.aspect, abs=0.02)
    # the nonlinearity where the maps have values (from the 10th to the 90th percentile; the ends are rarely reached),
    # up to its scale (the density is the same for f and 2 f)
    values = np.percentile([truth.normalised(pp.map_cells(m)) for m in maps], [10, 25, 50, 75, 90])

    def shape(post):
        return np.log(post.nonlinearity_at(values)) - np.log(post.nonlinearity_at(values[2]))

    np.testing.assert_allclose(shape(fitted), shape(truth), atol=0.1)
    np.testing.assert_allclose(fitted.centerbias[:9], truth.centerbias[:9], atol=0.3)
    new = sampled_fixations(truth, maps, 300, seed=1)
    ll_fitted = metrics.log_likelihoods(fitted.density(maps), new).mean()
    ll_truth = metrics.log_likelihoods(truth.density(maps), new).mean()
    ll_start = metrics.log_likelihoods(pp.Postprocessing(truth.low, truth.high).density(maps), new).mean()
    assert ll_fitted == pytest.approx(ll_truth, abs=0.01)
    assert ll_truth - ll_start > 0.3          # so the fit's 0.01 is close: the starting point is far


def test_density_model_interface():
    maps = smooth_maps(2, (30, 40))
    post = pp.Postprocessing(0.3, 0.7, **PLANTED)
    density = post.density(maps, saliency_model=lambda image: image.mean(axis=2) / 255.0)
    np.testing.assert_allclose(density.log_density(1), post.log_density_of_map(maps[1]))
    image = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    np.testing.assert_allclose(density.log_density_of(image), post.log_density_of_map(image.mean(axis=2) / 255.0))
    with pytest.raises(ValueError, match=r"shape \(30, 39\)"):
        post.density(saliency_model=lambda image: np.ones((30, 39))).log_density_of(image)
    with pytest.raises(TypeError, match="without the dataset's maps"):
        post.density(saliency_model=np.mean).log_density(0)
    restored = pp.Postprocessing.from_json(post.to_json())
    np.testing.assert_allclose(restored.log_density_of_map(maps[0]), post.log_density_of_map(maps[0]))


@pytest.mark.parametrize("bad, message", [(np.full((5, 5), np.nan), "non-finite value nan"),
                                          (np.zeros((5, 5, 3)), "2-d map"), (np.array([["a"]]), "numbers")])
def test_bad_maps_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        pp.map_cells(bad, name="my map")


def test_fit_refuses_images_without_fixations():
    with pytest.raises(ValueError, match="no fixations on the 2 fitting images"):
        pp.fit_postprocessing(smooth_maps(2, (20, 20)), Fixations([1.0], [1.0], [5]), [0, 1])


# --------------------------------------------------------------------------- against pysaliency, on real OSIE maps

def contrast(image):
    """Grey-level contrast: the standard deviation of the grey image in 17 x 17 pixels (README's example map)."""
    grey = image.mean(axis=2)
    mean, square = uniform_filter(grey, 17), uniform_filter(grey ** 2, 17)
    return np.sqrt(np.maximum(square - mean ** 2, 0))


@pytest.mark.slow
def test_held_out_information_gain_agrees_with_pysaliency_on_osie(osie_dir):
    """Contrast maps of the first 20 training and 20 test images of OSIE: our fit (full-resolution maps, cells of
    8 px) and pysaliency 0.2.22's ``optimize_for_information_gain`` (the same maps block-averaged 4 x 4, 50
    iterations of its trust-constr: full resolution takes minutes per iteration) give the same information gain over a
    uniform model on the test fixations, within 0.02 bit/fix (measured: 0.009), and the same blur and aspect within
    10 %. ``benchmarks/results/postprocessing.md`` compares larger fits and a second map."""
    pytest.importorskip("pysaliency")
    pytest.importorskip("torch")
    from pysaliency_reference import fit_and_score

    from repro.datasets import load_osie, osie_split

    stimuli, fixations = load_osie(osie_dir, keep_first=False)
    train, test = (half[:20] for half in osie_split(stimuli))
    maps = {int(n): contrast(stimuli[int(n)]) for n in np.concatenate([train, test])}
    on_test = np.isin(fixations.n, test)
    pixels = np.log(stimuli.sizes[fixations.n[on_test]].prod(axis=1))

    ours = pp.fit_postprocessing(maps, fixations, train)
    ours_ig = np.mean(metrics.log_likelihoods(ours.density(maps), fixations.filter(on_test)) + pixels) / np.log(2)
    small = {n: m.reshape(150, 4, 200, 4).mean(axis=(1, 3)) for n, m in maps.items()}
    peer = fit_and_score(small, fixations.x / 4, fixations.y / 4, fixations.n, train, test, maxiter=50)
    peer_ig = np.mean(peer["ll"] + pixels - np.log(16)) / np.log(2)
    assert ours_ig == pytest.approx(peer_ig, abs=0.02)
    assert ours.sigma * ours.grid[1] == pytest.approx(4 * peer["blur_radius"], rel=0.1)
    assert ours.aspect == pytest.approx(peer["alpha"], rel=0.1)


# --------------------------------------------------------------------------- scoring maps (repro.evaluation)

def test_evaluate_maps_scores_a_planted_model_as_its_truth():
    """Maps whose fixations come from a known postprocessing, 4 subjects: fitted on half the images, the held-out
    information gain equals the truth's (all subjects, and leave-one-subject-out), and every score is there."""
    from repro.evaluation import SCORES, evaluate_maps, scores_table

    maps = smooth_maps(40, (120, 160), scale=8.0, seed=3)
    truth = pp.Postprocessing(min(m.min() for m in maps), max(m.max() for m in maps), **PLANTED)
    drawn = sampled_fixations(truth, maps, 240, seed=3)
    fixations = Fixations(drawn.x, drawn.y, drawn.n, subject=np.arange(len(drawn)) % 4)
    stimuli = Stimuli(images=[np.zeros((120, 160, 3), np.uint8)] * 40)
    train, test = np.arange(0, 40, 2), np.arange(1, 40, 2)
    result = evaluate_maps(maps, stimuli, fixations, train, test, progress=False, mit=True)
    loso = evaluate_maps(maps, stimuli, fixations, train, test, subjects=True, progress=False)
    on_test = np.isin(fixations.n, test)
    truth_ll = metrics.log_likelihoods(truth.density(maps), fixations.filter(on_test)).mean()
    assert result["scores"]["log_likelihood"] == pytest.approx(truth_ll, abs=0.02)
    assert loso["scores"]["log_likelihood"] == pytest.approx(truth_ll, abs=0.03)
    assert [f["subject"] for f in loso["folds"]] == [0, 1, 2, 3]
    assert set(result["scores"]) == {key for key, _, _ in SCORES}
    scores = result["scores"]
    assert scores["information_gain"] > 0.03      # over the centre bias, which the planted model mostly is
    assert scores["explained_information"] == pytest.approx(scores["information_gain"] / scores["gold_information_gain"])
    assert 0.5 < result["scores"]["sauc"] < result["scores"]["auc"] < 1
    assert [row["score"] for row in scores_table(result)][-2:] == ["sigma", "aspect"]


def test_maps_on_another_grid_and_fixations_outside_are_named():
    maps = smooth_maps(2, (40, 48))
    with pytest.raises(ValueError, match=r"map of image 0: its cells \(11, 13\) are not those of the grid \(-9.0, 8.0\)"):
        pp.fit_postprocessing([pp.map_cells(m, grid=(0.0, 4.0)) for m in maps], Fixations([1.0], [1.0], [0]), [0, 1])
    with pytest.raises(ValueError, match="fixations on image 1"):
        pp.fit_postprocessing(maps, Fixations([1.0, 60.0], [1.0, 1.0], [0, 1]), [0, 1])
