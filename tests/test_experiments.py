"""Experiment scripts: every script runs in its quick configuration; the dask grid equals the serial one.

The scripts are run in this process (their ``main(argv)``) so compiled Theano graphs are shared.
"""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from repro import crossvalidation, metrics, paths
from repro import experiments as ex
from repro.datasets.demo import DEMO_LABEL
from repro.evaluation import evaluate_maps
from repro.saliency_models import get_model
from repro.network import ALEXNET_LAYERS
from repro.planted import alexnet_prototxt, planted_log_densities, random_alexnet

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["fig5_layers", "fig3_information_gain", "fig4_auc", "fig8_regularization", "fig1_examples",
           "fig6_top_features", "fig7_feature_details"]


def script(name):
    path = ROOT / "experiments" / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"{path.name} not written yet")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grid_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("grid")


def test_random_alexnet_is_deterministic_and_has_the_paper_layers():
    a, b = random_alexnet(seed=3), random_alexnet(seed=3)
    assert set(ALEXNET_LAYERS) <= set(a.layer_names)
    assert a.model.sha1 == b.model.sha1 != random_alexnet(seed=4).model.sha1
    np.testing.assert_array_equal(a.model.blobs["conv5"][0], b.model.blobs["conv5"][0])
    assert a.model.blobs["conv2"][0].shape == (256, 48, 5, 5)       # group 2
    assert a.receptive_field("conv1") == (11, 4, -10)                 # full padding
    assert 'name: "conv5"' in alexnet_prototxt()


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_quick_demo(name, tmp_path, grid_cache, monkeypatch):
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)       # demo must work with no data at all
    rows = script(name).main(["--quick", "--dataset", "demo", "--out", str(tmp_path), "--cache", str(grid_cache)])
    stem = next(tmp_path.glob("*.json")).stem
    for ext in ("png", "pdf", "csv", "json"):
        assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0
    table = json.loads((tmp_path / f"{stem}.json").read_text())
    assert table["label"] == DEMO_LABEL + " [quick]" and len(table["rows"]) == len(rows) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_script_quick_osie(name, osie_dir, tmp_path, grid_cache):
    script(name).main(["--quick", "--dataset", "osie", "--data-dir", str(osie_dir.parent), "--out", str(tmp_path),
                       "--cache", str(grid_cache)])
    table = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert table["label"].startswith("OSIE") and "RANDOM" not in table["network"]


def test_fig5_layer_subsets_follow_the_paper():
    panels = script("fig5_layers").layer_subsets()
    assert dict(panels["a"])["5"] == ["conv5", "relu5", "pool5"]
    assert dict(panels["b"])["1"] == ["conv1", "relu1", "norm1", "pool1"]
    assert dict(panels["a"])["1"] == dict(panels["b"])["5"] == list(ALEXNET_LAYERS)
    assert dict(panels["d"])["norm"] == ["norm1", "norm2"]


def test_local_workers_that_would_oversubscribe_the_cores_are_warned_of():
    from repro.cluster import oversubscription
    assert "2 workers with 2 BLAS thread(s) each on 2 cores" in oversubscription(2, {}, cores=2)   # unset: a core each
    assert "OPENBLAS_NUM_THREADS=2" in oversubscription(2, {"OMP_NUM_THREADS": "4"}, cores=4)
    assert oversubscription(2, {"OPENBLAS_NUM_THREADS": "1"}, cores=2) is None
    assert oversubscription(1, {}, cores=2) is None and oversubscription(4, {"OMP_NUM_THREADS": "2"}, cores=8) is None


def test_dask_grid_equals_serial_and_resumes(tmp_path):
    from argparse import Namespace
    args = Namespace(dataset="demo", data_dir=None, weights=None, quick=True, seed=0)
    setup = ex.load_setup(ex.options_of(args))
    configs = [ex.fit_config(setup, ["conv5"], s, regularization=0.01) for s in setup.folds]
    serial = ex.run_grid(configs, tmp_path / "serial", progress=False)
    distributed = ex.run_grid(configs, tmp_path / "dask", workers=2, progress=False)
    for a, b in zip(serial, distributed):
        for key in ("seconds", "seconds_fit", "seconds_score", "seconds_prepare", "seconds_compile"):
            a.pop(key), b.pop(key)
        assert a == b            # bit for bit: workers keep this process's BLAS threads (same_blas_threads)
    files = sorted((tmp_path / "serial").glob("*.json"))
    assert len(files) == len(configs) and len(list((tmp_path / "serial").glob("*.h5"))) == len(configs)
    stamps = [f.stat().st_mtime_ns for f in files]
    again = ex.run_grid(configs, tmp_path / "serial", progress=False)       # resumes: reads, does not refit
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in again] == serial


def demo_setup(quick):
    from argparse import Namespace
    return ex.load_setup(ex.options_of(Namespace(dataset="demo", data_dir=None, weights=None, quick=quick, seed=0)))


def test_the_grid_runs_the_tested_cross_validation(tmp_path, monkeypatch):
    """The experiments' cached grid of fold jobs gives exactly what crossvalidation.subject_cross_validation (the loop
    tests/test_training.py checks fixation by fixation) gives in one process."""
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)
    setup = demo_setup(quick=True)
    configs = [ex.fit_config(setup, ["conv5"], s) for s in setup.folds]
    grid = ex.run_grid(configs, tmp_path, progress=False)
    config = configs[0]
    loop = crossvalidation.subject_cross_validation(
        setup.store, setup.stimuli, setup.fixations, setup.train, setup.test, ["conv5"], setup.center_bias,
        setup.cb_ll, setup.gold_ll, subjects=setup.folds, progress=False, regularization=config["regularization"],
        n_batches=config["batches"], num_passes=config["passes"], seed=config["seed"])
    assert [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in grid] == loop["folds"]
    assert ex.aggregate(grid) == loop["scores"]


def test_demo_grid_recovers_the_planted_model_for_held_out_subjects(grid_cache, monkeypatch):
    """The demo's fixations are sampled from a planted conv5 readout (with a Gaussian prior): cross-validated over
    subjects, the fitted readouts predict the held-out subjects on the training images with over half of the planted
    model's information gain (0.53 of 0.94 bit/fix on 2026-12-06: each fold learns 256 weights from 360 fixations).
    Six training images are too few to generalise to new images: there the demo overfits, as Figure 5's
    many-layer readouts do on real data."""
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)
    setup = demo_setup(quick=False)
    scores = ex.aggregate(ex.run_grid([ex.fit_config(setup, ["conv5"], s) for s in setup.folds], grid_cache,
                                      progress=False))
    planted = planted_log_densities(setup.stimuli, setup.store, seed=setup.options["seed"])
    on_train = np.isin(setup.fixations.n, setup.train)
    planted_ig = metrics.information_gain(metrics.log_likelihoods(planted, setup.fixations.filter(on_train)),
                                          setup.cb_ll[on_train])
    assert planted_ig > 0.3
    assert scores["ig_test_subjects"] >= 0.5 * planted_ig, (scores["ig_test_subjects"], planted_ig)
    assert scores["sauc_train"] > 0.75


def test_fig3_reads_googlenet_beside_alexnet_on_osie(osie_dir, tmp_path, grid_cache, capsys):
    args = ["--quick", "--dataset", "osie", "--data-dir", str(osie_dir.parent), "--out", str(tmp_path),
            "--cache", str(grid_cache)]
    script("fig3_information_gain").main(args)           # fits cached by test_script_quick_osie
    table = json.loads((tmp_path / "fig3_information_gain.json").read_text())
    rows = {r["model"]: r for r in table["rows"]}
    googlenet, alexnet = rows[f"GoogLeNet readout ({ex.GOOGLENET_LAYER})"], rows["DeepGaze I (AlexNet conv5)"]
    assert np.isfinite(googlenet["explained_percent"]) and np.isfinite(googlenet["ig_bits"])
    assert googlenet["explained_percent"] != alexnet["explained_percent"]
    assert table["googlenet"].startswith("GoogLeNet, weights bvlc_googlenet.caffemodel")
    assert f"GoogLeNet readout ({ex.GOOGLENET_LAYER})" in (tmp_path / "fig3_information_gain.csv").read_text()
    assert "GoogLeNet readout (inception_4e/output)" in capsys.readouterr().out

    setup = ex.load_setup(ex.options_of(ex.parser("fig3").parse_args(args)))   # the JSON's paths are relative
    store = ex.setup_store(setup, "googlenet")
    assert store.folder != setup.store.folder                 # its own feature cache
    network = store.extractor.network
    assert network.padding == "caffe" and network.layer_names[-1] == ex.GOOGLENET_LAYER
    features, = store.features(setup.stimuli[0], [ex.GOOGLENET_LAYER])     # OSIE: 800 x 600 px
    assert features.shape == (832, 18, 25)                    # stride 32 image px, as AlexNet's conv5
    config = ex.fit_config(setup, [ex.GOOGLENET_LAYER], setup.folds[0], network="googlenet")
    fitted = ex.load_model(config, grid_cache)                 # the fit fig3 ran reads GoogLeNet's 832 features
    assert fitted.layers == [ex.GOOGLENET_LAYER] and len(fitted.w) == 832
    assert fitted.geometry.units == (store.extractor.unit_positions(ex.GOOGLENET_LAYER),)   # receptive-field placement
    assert store.extractor.grid_layer == "conv1/7x7_s2"       # GoogLeNet's largest layer is its grid


def test_fig3_without_googlenet_weights_leaves_its_bar_out_and_says_so(tmp_path, grid_cache, monkeypatch, capsys):
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)
    script("fig3_information_gain").main(["--quick", "--dataset", "demo", "--out", str(tmp_path),
                                          "--cache", str(grid_cache)])
    table = json.loads((tmp_path / "fig3_information_gain.json").read_text())
    assert not [r for r in table["rows"] if "GoogLeNet" in r["model"]]
    assert table["googlenet"].startswith("GoogLeNet readout not run: no GoogLeNet weights")
    assert "GoogLeNet readout not run" in capsys.readouterr().out
    setup = ex.load_setup(table["options"])
    with pytest.raises(FileNotFoundError, match="bvlc_googlenet"):
        ex.setup_store(setup, "googlenet")
    with pytest.raises(ValueError, match="'vgg'"):
        ex.fit_config(setup, ["conv5"], setup.folds[0], network="vgg")



def test_earlier_models_in_the_grid_are_scored_as_evaluate_scores_their_maps(tmp_path, grid_cache, monkeypatch):
    """Figures 3 and 4 read the same cached job of each earlier model; its scores are evaluate_maps's on the setup's
    maps; the bars are in ascending order, the gold standard last."""
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)
    monkeypatch.setenv("DEEPGAZE_CACHE", str(tmp_path / "cache"))
    args = ["--quick", "--dataset", "demo", "--out", str(tmp_path), "--cache", str(grid_cache),
            "--models", "spectral_residual,itti_koch"]
    script("fig3_information_gain").main(args)
    fig3 = json.loads((tmp_path / "fig3_information_gain.json").read_text())
    assert sorted(fig3["saliency_models"]) == ["itti_koch", "spectral_residual"]
    values = [r["explained_percent"] for r in fig3["rows"]]
    assert values[:-1] == sorted(values[:-1]) and fig3["rows"][-1]["model"] == "gold standard"
    assert {"eDN", "DeepGaze I"} <= {r["model"] for r in fig3["rows"] if ex.is_published(r)}

    setup = ex.load_setup(fig3["options"])
    model = get_model("spectral_residual")
    maps = [model(setup.stimuli[n]) for n in range(len(setup.stimuli))]
    direct = evaluate_maps(maps, setup.stimuli, setup.fixations, setup.train, setup.test, setup.center_bias,
                           setup.gold_standard, mit=True, progress=False, maxiter=ex.QUICK_MAXITER)
    stored = fig3["saliency_models"]["spectral_residual"]
    for key, value in direct["scores"].items():
        assert stored["scores"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    row = next(r for r in fig3["rows"] if r["model"] == "spectral_residual")
    assert row["explained_percent"] == pytest.approx(100 * direct["scores"]["explained_information"])

    script("fig4_auc").main(args)                    # the same jobs, read from the cache
    fig4 = json.loads((tmp_path / "fig4_auc.json").read_text())
    assert fig4["saliency_models"] == fig3["saliency_models"]
    row = next(r for r in fig4["rows"] if r["model"] == "spectral_residual")
    assert row["sauc"] == pytest.approx(100 * direct["scores"]["sauc"])
    assert row["mit_auc"] == pytest.approx(100 * direct["scores"]["mit_auc_judd"])
    assert {r["model"] for r in fig4["rows"] if ex.is_published(r)} >= {"AWS", "RARE2012", "AIM", "BMS", "eDN"}
    with pytest.raises(ValueError, match="unknown saliency model 'edn'"):
        script("fig4_auc").main(args[:-1] + ["edn"])


def test_grid_estimate_interpolates_the_measured_fits():
    small = {"seconds_fit": 4.0, "seconds_score": 1.0, "seconds_prepare": 10.0, "seconds_compile": 0.0}
    large = {"seconds_fit": 90.0, "seconds_score": 10.0, "seconds_prepare": 50.0, "seconds_compile": 7.0}
    sizes = {("a",): (100, 15), ("b",): (1100, 15), ("c",): (600, 2)}
    # per fold 5 s, 100 s and 52.5 s; preparation once per worker: 10, 50 and 30 s
    assert ex.estimate_seconds(sizes, {100: small, 1100: large}, workers=1) == pytest.approx(
        15 * 5 + 10 + 15 * 100 + 50 + 2 * 52.5 + 30 + 7)
    assert ex.estimate_seconds(sizes, {100: small, 1100: large}, workers=2) == pytest.approx(
        (15 * 5 + 20 + 15 * 100 + 100 + 2 * 52.5 + 60) / 2 + 7)    # each worker compiles, in parallel
    with pytest.raises(ValueError, match="two sizes"):
        ex.estimate_seconds(sizes, {100: small})


def test_cross_dataset_diagonal_repeats_the_in_dataset_scores(data_dir, tmp_path, grid_cache):
    if not (data_dir / "mit1003-subset" / "fixations.csv.gz").is_file():
        pytest.skip(f"MIT1003 subset not found under {data_dir}")
    rows = script("cross_dataset").main(["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path),
                                         "--cache", str(grid_cache)])
    assert {(r["trained_on"], r["tested_on"]) for r in rows} == {(a, b) for a in ("osie", "mit1003")
                                                                 for b in ("osie", "mit1003")}
    for name in ("osie", "mit1003"):
        setup = ex.load_setup({"dataset": name, "data_dir": str(data_dir.resolve()), "weights":
                               str((data_dir / "weights" / "bvlc_alexnet").resolve()), "quick": True, "seed": 0})
        fits = ex.run_grid([ex.fit_config(setup, ["conv5"], s) for s in setup.folds], grid_cache, progress=False)
        scores = ex.aggregate(fits)
        own = next(r for r in rows if r["trained_on"] == r["tested_on"] == name)
        assert own["explained_percent"] == pytest.approx(100 * scores["explained_test_images"], abs=1e-6)
        assert own["auc_percent"] == pytest.approx(100 * scores["auc_test"], abs=1e-6)
        assert own["sauc_percent"] == pytest.approx(100 * scores["sauc_test"], abs=1e-6)
    table = json.loads((tmp_path / "cross_dataset.json").read_text())
    for options in table["datasets"].values():                    # committed results name no machine's paths
        assert not Path(options["data_dir"]).is_absolute() and not Path(options["weights"]).is_absolute()


def test_publish_refuses_quick_runs(tmp_path, grid_cache, monkeypatch):
    monkeypatch.delenv("DEEPGAZE_DATA", raising=False)
    with pytest.raises(ValueError, match="--publish .* drop --quick"):
        script("fig4_auc").main(["--quick", "--dataset", "demo", "--publish", "--cache", str(grid_cache)])


def test_quick_figures_say_their_numbers_are_not_meaningful():
    from argparse import Namespace
    options = ex.options_of(Namespace(dataset="demo", data_dir=None, weights=None, quick=True, seed=0))
    figure = ex.pyplot().figure()
    ex.label_figure(figure, ex.load_setup(options), "Figure 0")
    assert "its numbers are not meaningful" in figure._suptitle.get_text()
    full = ex.pyplot().figure()
    ex.label_figure(full, ex.load_setup({**options, "quick": False}), "Figure 0")
    assert "not meaningful" not in full._suptitle.get_text()


def test_a_changed_saliency_model_keeps_the_readouts_cached_fits(tmp_path):
    shutil.copytree(ROOT / "repro", tmp_path / "repro")
    readout = lambda: paths.sources_digest(tmp_path, ex.NOT_IN_FITS + ex.NOT_IN_READOUT_FITS)   # noqa: E731
    models = lambda: paths.sources_digest(tmp_path, ex.NOT_IN_FITS)                              # noqa: E731
    assert readout() == ex.FIT_SOURCES and models() == ex.SALIENCY_SOURCES
    with open(tmp_path / "repro" / "saliency_models" / "spectral_residual.py", "a") as f:
        f.write("# changed\n")
    assert readout() == ex.FIT_SOURCES and models() != ex.SALIENCY_SOURCES
    with open(tmp_path / "repro" / "model.py", "a") as f:
        f.write("# changed\n")
    assert readout() != ex.FIT_SOURCES
