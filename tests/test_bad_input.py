"""Bad input and faults: each gets a clear error naming what is wrong, or a documented correct result,
and leaves nothing half-written. Every input is a real file or array made here (no mocks)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from repro import metrics
from repro.centerbias import CenterBias, fit_center_bias
from repro.datasets import Fixations, drop_invalid, load_image
from repro.goldstandard import fit_gold_standard

SIZES = [(30, 40), (30, 40)]


def some_fixations(n=40, seed=0):
    rng = np.random.RandomState(seed)
    return Fixations(x=rng.uniform(0, 40, n), y=rng.uniform(0, 30, n), n=rng.randint(0, 2, n),
                     subject=rng.randint(0, 3, n))


# --------------------------------------------------------------------------- fixations

def test_negative_image_index_is_refused_where_fixations_are_made():
    with pytest.raises(ValueError, match="#1 has image index n=-1"):
        Fixations(x=[1.0, 2.0], y=[1.0, 2.0], n=[0, -1])


def test_image_index_beyond_the_stimuli_is_named():
    from repro.datasets import check_fixations
    fixations = Fixations(x=[1.0, 2.0], y=[1.0, 2.0], n=[0, 2])
    for check in (lambda: check_fixations(fixations, SIZES), lambda: drop_invalid(fixations, SIZES),
                  lambda: fit_center_bias(SIZES, fixations), lambda: metrics.log_uniform(fixations, SIZES)):
        with pytest.raises(ValueError, match="fixation #1 is on image 2, but there are only 2 images"):
            check()


@pytest.mark.parametrize("x, y", [(-5.0, 3.0), (40.0, 3.0), (3.0, 1e6), (np.nan, 3.0), (np.inf, 3.0)])
def test_centre_bias_refuses_fixations_outside_their_image(x, y):
    fixations = Fixations.concatenate([some_fixations(), Fixations(x=[x], y=[y], n=[1])])
    with pytest.raises(ValueError, match=r"fit_center_bias: 1 fixation\(s\) missing or outside their image, "
                                         r"e.g. #40 .* on image 1 of \(height, width\) = \(30, 40\)"):
        fit_center_bias(SIZES, fixations)
    with pytest.raises(ValueError, match="CenterBias: 1 fixation"):
        CenterBias(SIZES, fixations, 0.1, 0.01)


def test_empty_fixations_are_refused_by_estimators_and_measures():
    empty = some_fixations().filter(np.zeros(40, bool))
    with pytest.raises(ValueError, match="fit_center_bias: no fixations"):
        fit_center_bias(SIZES, empty)
    center_bias = fit_center_bias(SIZES, some_fixations())
    with pytest.raises(ValueError, match="fit_gold_standard: no fixations"):
        fit_gold_standard(SIZES, empty, center_bias)
    maps = [np.zeros(shape) for shape in SIZES]
    for measure in (metrics.log_likelihoods, metrics.auc, metrics.nss):
        with pytest.raises(ValueError, match="no fixations to score"):
            measure(maps, empty)
    with pytest.raises(ValueError, match="no fixations to score"):
        metrics.shuffled_auc(maps, empty, SIZES)
    with pytest.raises(ValueError, match="no values to average"):
        metrics.information_gain([], [])


def test_gold_standard_needs_two_subjects():
    one = some_fixations().for_subjects(0)
    with pytest.raises(ValueError, match="1 subject.*needs at least two"):
        fit_gold_standard(SIZES, one, fit_center_bias(SIZES, one))


# --------------------------------------------------------------------------- metrics at the edges

def test_cc_of_constant_maps_is_zero_even_when_their_computed_std_is_not():
    constant = next(np.full((7, 13), v) for v in (0.1, 0.3, 0.7, 1 / 3, 2 / 3, np.pi) if np.full((7, 13), v).std())
    assert constant.std() != 0          # the floating-point case the docstring's rule must cover
    other = np.random.RandomState(0).rand(7, 13)
    assert metrics.cc(constant, other) == 0.0
    assert metrics.cc(other, constant) == 0.0


def test_shuffled_auc_keeps_a_rescaled_edge_fixation_inside_the_image():
    """A fixation one ulp left of its image's right edge, rescaled to a narrower image, rounds up to its
    width: it must count as that image's last column (as a point 1e-3 left of the edge does), not wrap."""
    found = [(w1, w2) for w1 in range(10, 60) for w2 in range(w1 + 1, 80)
             if int(np.nextafter(w2, 0) * (w1 / w2)) >= w1]
    assert found, "no width pair whose rescaled edge rounds up"
    w1, w2 = found[0]
    sizes = [(4, w1), (4, w2)]
    saliency = [np.arange(4 * w1, dtype=float).reshape(4, w1) % 7, np.zeros((4, w2))]

    def sauc(x_edge):
        fixations = Fixations(x=[1.0, x_edge, 2.0], y=[1.0, 1.0, 2.0], n=[0, 1, 1])
        return metrics.shuffled_auc_per_fixation(saliency, fixations, sizes)[0]

    assert sauc(np.nextafter(w2, 0)) == sauc(w2 - 1e-3)


# --------------------------------------------------------------------------- images

def test_16_bit_grayscale_png_keeps_its_range(tmp_path):
    values = np.linspace(0, 65535, 12 * 20).reshape(12, 20).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as image:
        assert image.mode.startswith("I;16")                # a real 16-bit file
    loaded = load_image(tmp_path / "grey16.png")
    assert loaded.shape == (12, 20, 3) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded[..., 0], np.round(values / 257).astype(np.uint8))
    assert (loaded[..., 0] == 255).mean() < 0.01


@pytest.mark.parametrize("make", ["empty", "text", "folder"])
def test_unreadable_image_files_are_named(tmp_path, make):
    path = tmp_path / "photo.jpg"
    {"empty": lambda: path.write_bytes(b""), "text": lambda: path.write_text("not an image\n"),
     "folder": lambda: path.mkdir()}[make]()
    with pytest.raises(ValueError, match=r"photo.jpg: not a readable image"):
        load_image(path)


def test_images_too_small_for_the_network_are_refused(alexnet_full):
    from repro.features import FeatureExtractor
    extractor = FeatureExtractor(alexnet_full)
    for shape in [(1, 500), (500, 1)]:
        with pytest.raises(ValueError, match=rf"\(height, width\) = \({shape[0]}, {shape[1]}\) pixels is too small"):
            extractor.features(np.zeros(shape + (3,), np.uint8), ["conv5"])


# --------------------------------------------------------------------------- networks and models

ALEXNET = "bvlc_alexnet/bvlc_alexnet_conv_q8.v1.caffemodel"


def nan_caffemodel(weights_source, target):
    """The V1 AlexNet file with its first conv1 weight replaced by NaN, edited at the byte level."""
    data = bytearray((weights_source / ALEXNET).read_bytes())
    header = bytes([0x08, 96, 0x10, 3, 0x18, 11, 0x20, 11])  # conv1 weights: 96 x 3 x 11 x 11
    at = data.index(header) + len(header)
    assert data[at] == 0x2a                                 # packed float data follows, length 3 varint bytes
    data[at + 4:at + 8] = np.float32(np.nan).tobytes()
    target.write_bytes(bytes(data))
    return target


def test_nan_weights_in_a_caffemodel_are_named(weights_source, tmp_path, monkeypatch):
    from repro import caffe
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    model = nan_caffemodel(weights_source, tmp_path / "nan.caffemodel")
    with pytest.raises(caffe.CaffeError, match=r"nan.caffemodel, layer 'conv1', blob 0 \(96, 3, 11, 11\): "
                                               r"1 value\(s\) are nan or inf"):
        caffe.load(weights_source / "bvlc_alexnet/deploy.prototxt", model, last_layer="pool5")
    assert not list((tmp_path / "weights").glob("*"))


def test_a_caffemodel_rejected_for_its_input_channels_leaves_no_converted_copy(weights_source, tmp_path,
                                                                               monkeypatch):
    from repro import caffe
    from repro.network import Network
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    text = (weights_source / "bvlc_alexnet/deploy.prototxt").read_text()
    grey = tmp_path / "grey.prototxt"
    grey.write_text(text.replace("dim: 3", "dim: 1", 1))
    with pytest.raises(caffe.CaffeError, match=r"layer 'conv1': weights \(96, 3, 11, 11\) do not fit 1 input"):
        Network(grey, weights_source / ALEXNET, last_layer="pool5")
    assert not list((tmp_path / "weights").glob("*"))


def test_a_damaged_weights_cache_is_rebuilt_with_a_warning(weights_source, tmp_path, monkeypatch, caplog):
    from repro import caffe
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    prototxt, model = weights_source / "bvlc_alexnet/deploy.prototxt", weights_source / ALEXNET
    first = caffe.load(prototxt, model, last_layer="pool5", progress=False)
    cache = caffe.cache_path(first.sha1)
    cache.write_bytes(cache.read_bytes()[:4096])                # truncated
    again = caffe.load(prototxt, model, last_layer="pool5", progress=False)
    assert f"{cache}: damaged converted-weights cache" in caplog.text
    np.testing.assert_array_equal(again.blobs["conv5"][0], first.blobs["conv5"][0])
    assert caffe._read_cache(cache) is not None                  # rewritten whole


@pytest.fixture()
def readout(alexnet_full, tmp_path, monkeypatch):
    """A conv5 readout of the real AlexNet, saved with its network record."""
    from repro.features import FeatureExtractor
    from repro.model import DeepGazeI
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    extractor = FeatureExtractor(alexnet_full)
    model = DeepGazeI(["conv5"], [256], np.full(256, 0.05), extractor.geometry(["conv5"]),
                      w=np.random.RandomState(0).randn(256), sigma=2.0, alpha=1.0,
                      metadata={"network": extractor.metadata})
    model.save(tmp_path / "model.h5")
    return model, tmp_path / "model.h5"


def predict(args, tmp_path, weights_source, capsys):
    """Run ``python -m repro predict`` in this process: (exit code, what stderr shows last, without progress bars).

    The error must be one line: the last of stderr, whole."""
    from repro.__main__ import main
    code = main(["predict", *map(str, args), "--network", str(weights_source / "bvlc_alexnet"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert err.endswith("\n")
    return code, err.replace("\r", "\n").splitlines()[-1]


def test_a_readout_with_nan_weights_is_refused(readout, tmp_path):
    from repro.model import DeepGazeI
    model, _ = readout
    model.w[3] = np.nan
    model.save(tmp_path / "nan.h5")
    with pytest.raises(ValueError, match=r"nan.h5: parameter w has non-finite values"):
        DeepGazeI.load(tmp_path / "nan.h5")


def test_a_truncated_model_file_is_named_with_advice(readout, tmp_path, osie_dir, weights_source, capsys):
    _, path = readout
    (tmp_path / "cut.h5").write_bytes(path.read_bytes()[:2000])
    code, err = predict([osie_dir / "stimuli" / "1003.jpg", "--model", tmp_path / "cut.h5"], tmp_path,
                        weights_source, capsys)
    assert code == 1 and err.startswith("error: ")
    assert "cut.h5: not a readable DeepGaze I model file" in err and "train it again" in err


def test_a_model_without_a_network_record_is_refused(readout, tmp_path, osie_dir, weights_source, capsys):
    model, _ = readout
    model.metadata.pop("network")
    model.save(tmp_path / "anonymous.h5")
    code, err = predict([osie_dir / "stimuli" / "1003.jpg", "--model", tmp_path / "anonymous.h5"], tmp_path,
                        weights_source, capsys)
    assert code == 1 and "records no network" in err and "train it again" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layer", ["fc6", "conv9"])
def test_a_model_of_unknown_layers_is_refused(readout, tmp_path, osie_dir, weights_source, capsys, layer):
    model, _ = readout
    model.layers = [layer]
    model.save(tmp_path / "other.h5")
    code, err = predict([osie_dir / "stimuli" / "1003.jpg", "--model", tmp_path / "other.h5"], tmp_path,
                        weights_source, capsys)
    assert code == 1 and f"reads layer(s) ['{layer}']" in err and "conv1, relu1" in err


@pytest.mark.parametrize("make", ["empty", "text", "folder"])
def test_predict_on_an_unreadable_image_prints_one_error_line(readout, tmp_path, weights_source, capsys, make):
    _, path = readout
    image = tmp_path / "photo.jpg"
    {"empty": lambda: image.write_bytes(b""), "text": lambda: image.write_text("not an image\n"),
     "folder": lambda: image.mkdir()}[make]()
    code, err = predict([image, "--model", path], tmp_path, weights_source, capsys)
    assert code == 1 and err.startswith(f"error: {image}: " + ("folder without images" if make == "folder" else
                                                                 "not a readable image"))


def test_predict_refuses_inputs_that_would_overwrite_each_other(readout, tmp_path, osie_dir, weights_source,
                                                                 capsys):
    _, path = readout
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jpg").write_bytes((osie_dir / "stimuli" / "1003.jpg").read_bytes())
    code, err = predict([tmp_path / "a/x.jpg", tmp_path / "b/x.jpg", "--model", path], tmp_path, weights_source,
                        capsys)
    assert code == 1 and "a/x.jpg and" in err and "b/x.jpg would write the same output files" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- fixation files

@pytest.fixture()
def table_folder(tmp_path):
    """A folder of two real images, and a writer of fixation tables beside them."""
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(stimuli / f"{name}.jpg")

    def write(text):
        (tmp_path / "table.csv").write_text(text)
        return tmp_path / "table.csv"
    return stimuli, write


COLUMNS = {"subject": "s", "image": "img", "x": "x", "y": "y"}


def load_table(table, stimuli, **kwargs):
    from repro.datasets import load_fixation_table
    return load_fixation_table(table, stimuli, keep_first=True, columns=COLUMNS, **kwargs)


@pytest.mark.parametrize("text, message", [
    ("s,img,x,y\n1,a,3,4\n1,a,abc,4\n", r"table.csv, line 3, column 'x': 'abc' is not a number"),
    ('s,img,x,y\n1,a,3,4\n1,b,"12,5",4\n', r"table.csv, line 3, column 'x': '12,5' is not a number"),
    ("s,img,x,y\n1,a,3,4\n1,a,3\n", r"table.csv, line 3: 3 field\(s\), the header has 4"),
    ("s,img,x,y\n1,a,3,4\n1,a,3,4,5\n", r"table.csv, line 3: 5 field\(s\), the header has 4"),     # issue 29
    ("s,img,x,y\n1,a,3,4\n\n1,a,3,4\n", r"table.csv, line 3: 0 field\(s\), the header has 4"),
    ("s,img,x,y\n", r"table.csv: a header and no rows"),
    ("", r"table.csv: empty file; expected a header row"),
])
def test_bad_fixation_tables_name_file_line_and_column(table_folder, text, message):
    stimuli, write = table_folder
    with pytest.raises(ValueError, match=message):
        load_table(write(text), stimuli)


def test_unknown_missing_images_policy_is_refused(table_folder):
    stimuli, write = table_folder
    with pytest.raises(ValueError, match="missing_images must be 'drop' or 'error', not 'bogus'"):
        load_table(write("s,img,x,y\n1,a,3,4\n"), stimuli, missing_images="bogus")


def test_a_table_whose_first_image_is_missing_still_loads(table_folder):
    stimuli, write = table_folder
    loaded, fixations = load_table(write("s,img,x,y\n1,gone,3,4\n1,b,5,6\n"), stimuli)
    assert len(loaded) == 1 and fixations.n.tolist() == [0] and fixations.x.tolist() == [5.0]


def test_pysaliency_files_without_version_or_coordinates_are_named(tmp_path):
    from repro.datasets import read_hdf5, write_hdf5
    write_hdf5(some_fixations(), tmp_path / "fixations.hdf5")
    with h5py.File(tmp_path / "fixations.hdf5", "a") as f:
        del f.attrs["version"]
    with pytest.raises(ValueError, match=r"fixations.hdf5: Fixations without a 'version' attribute"):
        read_hdf5(tmp_path / "fixations.hdf5")
    write_hdf5(some_fixations(), tmp_path / "no_x.hdf5")
    with h5py.File(tmp_path / "no_x.hdf5", "a") as f:
        del f["x"]
    with pytest.raises(ValueError, match=r"no_x.hdf5: a pysaliency Fixations file without the dataset\(s\) "
                                         r"\['x'\]"):
        read_hdf5(tmp_path / "no_x.hdf5")
    write_hdf5(some_fixations(), tmp_path / "lean.hdf5")          # the optional columns: defaults, no KeyError
    with h5py.File(tmp_path / "lean.hdf5", "a") as f:
        for name in ("subjects", "duration", "scanpath_index", "index_in_trial", "x_hist"):
            del f[name]
    lean = read_hdf5(tmp_path / "lean.hdf5")
    assert (lean.subject == 0).all() and (lean.index_in_trial == 0).all()
    np.testing.assert_array_equal(lean.x, some_fixations().x)
    (tmp_path / "text.hdf5").write_text("no HDF5 here")
    with pytest.raises(ValueError, match=r"text.hdf5: not a readable HDF5 file"):
        read_hdf5(tmp_path / "text.hdf5")


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file but nothing after", b"\x00" * 300])
def test_an_osie_folder_whose_fixations_file_is_not_matlab_is_named(tmp_path, content):
    from repro.datasets import load_osie
    (tmp_path / "fixations.mat").write_bytes(content)
    with pytest.raises(ValueError, match=r"fixations.mat: not OSIE's fixations.mat"):
        load_osie(tmp_path, keep_first=False)


# --------------------------------------------------------------------------- caches and writes

@pytest.mark.slow
def test_damaged_or_swapped_grid_results_are_fitted_again(tmp_path, caplog):
    from argparse import Namespace

    from repro import experiments as ex
    setup = ex.load_setup(ex.options_of(Namespace(dataset="demo", data_dir=None, weights=None, quick=True,
                                                  seed=0)))
    configs = [ex.fit_config(setup, ["conv5"], 0, regularization=r) for r in (0.01, 0.1)]
    first = ex.run_grid(configs, tmp_path, progress=False)
    files = [tmp_path / f"{ex.config_key(c)}.json" for c in configs]
    a, b = (f.read_text() for f in files)
    files[0].write_text(b)                                     # swapped on disk
    files[1].write_text(a[:len(a) // 2])                       # truncated
    again = ex.run_grid(configs, tmp_path, progress=False)
    assert again.computed == 2
    assert f"{files[0]}: holds the result of another configuration" in caplog.text
    assert f"{files[1]}: damaged cached result (JSONDecodeError" in caplog.text
    strip = [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in (*first, *again)]
    assert strip[:2] == strip[2:] and strip[0] != strip[1]
    assert json.loads(files[0].read_text())["config"] == json.loads(json.dumps(configs[0]))


EXTRACT = """
import sys
from repro.datasets import Stimuli
from repro.features import FeatureExtractor, FeatureStore
from repro.network import Network
weights, folder, layer, *images = sys.argv[1:]
network = Network(weights + "/deploy.prototxt", weights + "/bvlc_alexnet_conv_q8.v1.caffemodel", padding="full",
                  last_layer="pool5")
FeatureStore(FeatureExtractor(network), folder).extract(Stimuli(filenames=images), [layer], progress=False)
"""


def test_two_processes_extracting_different_layers_into_one_cache_keep_both(weights_source, osie_dir, tmp_path):
    images = [str(osie_dir / "stimuli" / f"{n}.jpg") for n in (1001, 1002, 1003)]
    env = {**os.environ, "DEEPGAZE_WEIGHTS": str(tmp_path / "weights")}
    # both convert the caffemodel and compile their graph between reading and writing the cache files
    workers = [subprocess.Popen([sys.executable, "-c", EXTRACT, str(weights_source / "bvlc_alexnet"),
                                 str(tmp_path / "features"), layer, *images], env=env, stderr=subprocess.PIPE)
               for layer in ("conv1", "conv5")]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr.read().decode()[-2000:]
    files = sorted((tmp_path / "features").glob("*.h5"))
    assert len(files) == 3
    for path in files:
        with h5py.File(path, "r") as f:
            assert sorted(f) == ["conv1", "conv5"], path


def test_a_damaged_feature_cache_file_is_rebuilt_with_a_warning(alexnet_full, osie_dir, tmp_path, caplog):
    from repro.features import FeatureExtractor, FeatureStore
    store = FeatureStore(FeatureExtractor(alexnet_full), tmp_path)
    image = load_image(osie_dir / "stimuli" / "1001.jpg")
    expected = store.features(image, ["conv5"])[0]
    path, = tmp_path.glob("*.h5")
    path.write_bytes(path.read_bytes()[:1000])
    np.testing.assert_array_equal(store.features(image, ["conv5"])[0], expected)
    assert f"{path}: damaged feature cache file" in caplog.text
    with h5py.File(path, "r") as f:
        assert list(f) == ["conv5"]


def test_a_damaged_feature_scales_file_is_rebuilt_with_a_warning(alexnet_full, osie_dir, tmp_path, caplog):
    from repro.features import FeatureExtractor, FeatureStore
    store = FeatureStore(FeatureExtractor(alexnet_full), tmp_path)
    images = [load_image(osie_dir / "stimuli" / f"{n}.jpg") for n in (1001, 1002)]
    expected = store.feature_scales(images, ["conv5"], progress=False)
    path, = (tmp_path / "scales").glob("*.npy")
    path.write_bytes(path.read_bytes()[:100])
    np.testing.assert_array_equal(store.feature_scales(images, ["conv5"], progress=False), expected)
    assert f"{path}: damaged feature-scales cache" in caplog.text
    np.testing.assert_array_equal(np.load(path), expected)


KILLED_WRITE = """
import os, signal, sys
from repro.paths import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "w").write("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporary_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    from repro.paths import atomic_path
    target = tmp_path / "result.json"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)])
    assert killed.returncode == -signal.SIGKILL
    assert not target.exists() and len(list(tmp_path.glob(".result.json.*.part"))) == 1
    with atomic_path(target) as tmp:
        Path(tmp).write_text("whole")
    assert target.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_files_written_follow_the_umask(tmp_path):
    from repro.paths import atomic_path
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            Path(tmp).write_text("a")
        os.umask(0o077)
        with atomic_path(tmp_path / "b.txt") as tmp:
            Path(tmp).write_text("b")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- prototxt parameters (issue 29)

@pytest.mark.parametrize("find, replace, message", [
    ("stride: 4", "stride: 0", r"layer 'conv1' \(Convolution\): stride \(0, 0\): must be > 0"),
    ("kernel_size: 11", "kernel_size: 0", r"layer 'conv1' \(Convolution\): kernel size \(0, 0\) .*must be > 0"),
    ("group: 2", "group: 0", r"layer 'conv2' \(Convolution\): group = 0: must be >= 1"),
    ("group: 2", "group: 3", r"layer 'conv2' \(Convolution\): num_output = 256 is not a multiple of group = 3"),
    ("num_output: 96", "num_output: 0", r"layer 'conv1' \(Convolution\): num_output = 0: must be > 0"),
    ("local_size: 5", "local_size: 0", r"layer 'norm1' \(LRN\): local_size = 0: must be odd"),
    ("local_size: 5", "local_size: 4", r"layer 'norm1' \(LRN\): local_size = 4: must be odd"),
    ("alpha: 0.0001", "alpha: nan", r"layer 'norm1' \(LRN\): alpha = nan: must be a finite number"),
    ("pool: MAX\n    kernel_size: 3", "pool: MAX\n    kernel_size: 3\n    pad: 3",
     r"layer 'pool1' \(Pooling\): pad \(3, 3\) must be smaller than the kernel \(3, 3\)"),
    ("pool: MAX\n    kernel_size: 3", "pool: MAX\n    kernel_size: 0",
     r"layer 'pool1' \(Pooling\): kernel size \(0, 0\) .*must be > 0"),
    ("pool: MAX\n    kernel_size: 3\n    stride: 2", "pool: MAX\n    kernel_size: 3\n    stride: 0",
     r"layer 'pool1' \(Pooling\): stride \(0, 0\): must be > 0"),
    ("dim: 227 dim: 227", "dim: 0 dim: 227", r"layer 'data' \(Input\): input shape \[10, 3, 0, 227\]"),
    ("kernel_size: 11", "kernel_size: 11 kernel_h: 11 kernel_w: 11",
     r"layer 'conv1' \(Convolution\): kernel_size and kernel_h/kernel_w both given"),
])
def test_prototxt_parameters_caffe_refuses_are_named_before_any_array(weights_source, tmp_path, find, replace,
                                                                      message):
    from repro import caffe
    from repro.network import Network
    text = (weights_source / "bvlc_alexnet/deploy.prototxt").read_text()
    assert find in text
    (tmp_path / "edited.prototxt").write_text(text.replace(find, replace, 1))
    layer = '"' + message.split("'")[1] + '"'
    line = next(i for i, row in enumerate(text.splitlines(), 1) if layer in row)
    with pytest.raises(caffe.CaffeError, match=rf"edited.prototxt, line {line}, .*{message}"):
        caffe.parse_prototxt(tmp_path / "edited.prototxt")
    with pytest.raises(caffe.CaffeError, match=message):         # the network says the same, and converts nothing
        Network(tmp_path / "edited.prototxt", weights_source / ALEXNET, last_layer="pool5")


def test_a_prototxt_nested_beyond_reason_is_named(tmp_path):
    from repro import caffe
    (tmp_path / "deep.prototxt").write_text('name: "x"\n' + "layer { " * 100_000 + "}" * 100_000)
    with pytest.raises(caffe.CaffeError, match=r"deep.prototxt: not a Caffe prototxt \(braces nested too deeply"):
        caffe.parse_prototxt(tmp_path / "deep.prototxt")


def test_the_network_digest_is_blind_to_layout_and_sees_every_parameter(weights_source, tmp_path):
    from repro import caffe
    source = weights_source / "bvlc_alexnet/deploy.prototxt"
    text = source.read_text()
    digest = caffe.network_digest(caffe.parse_prototxt(source)[1])
    (tmp_path / "spaced.prototxt").write_text("# a comment\n" + text.replace("  ", "\t"))
    assert caffe.network_digest(caffe.parse_prototxt(tmp_path / "spaced.prototxt")[1]) == digest
    (tmp_path / "edited.prototxt").write_text(text.replace("beta: 0.75", "beta: 0.7", 1))
    assert caffe.network_digest(caffe.parse_prototxt(tmp_path / "edited.prototxt")[1]) != digest


# --------------------------------------------------------------------------- images: orientation and size (issue 29)

def sideways_jpeg(picture, path, orientation=6):
    """``picture`` (H, W, 3) stored turned as a camera held sideways stores it, with the EXIF orientation that
    tells viewers how to show it upright."""
    stored = {6: np.rot90(picture, 1), 8: np.rot90(picture, -1), 3: np.rot90(picture, 2)}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(path, quality=100, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_as_viewers_apply_it(tmp_path, orientation):
    from repro.datasets import Stimuli
    upright = np.zeros((40, 30, 3), np.uint8)
    upright[:10, :, 0] = 255                                  # red band at the top as seen, green at the left
    upright[:, :5, 1] = 255
    path = sideways_jpeg(upright, tmp_path / "phone.jpg", orientation)
    with Image.open(path) as stored:
        assert stored.size == ((40, 30) if orientation in (6, 8) else (30, 40))   # as stored: (width, height)
    loaded = load_image(path)
    assert loaded.shape == (40, 30, 3)
    assert np.abs(loaded.astype(int) - upright).mean() < 8          # JPEG noise only
    assert Stimuli(filenames=[path]).sizes.tolist() == [[40, 30]]
    assert Stimuli(filenames=[path])[0].shape == (40, 30, 3)


def test_predict_gives_a_density_of_the_picture_people_see(readout, osie_dir, tmp_path, weights_source, capsys):
    _, model_path = readout
    photo = load_image(osie_dir / "stimuli" / "1003.jpg")              # 600 x 800
    path = sideways_jpeg(photo, tmp_path / "sideways.jpg")
    code, _ = predict([path, "--model", model_path], tmp_path, weights_source, capsys)
    assert code == 0
    assert np.load(tmp_path / "out" / "sideways_logdensity.npy").shape == (600, 800)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    from repro.datasets import Stimuli
    Image.new("1", (20000, 10000)).save(tmp_path / "bomb.png")                 # 200 Mpx in 24 KB
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    for read in (load_image, lambda p: Stimuli(filenames=[p])):
        with pytest.raises(ValueError, match=r"bomb.png: refused, too large to decode .* the package's limit is "
                                             r"40,000,000 pixels"):
            read(tmp_path / "bomb.png")


def test_images_over_the_package_limit_are_refused_before_decoding(tmp_path, monkeypatch, readout, weights_source,
                                                                   capsys):
    Image.new("1", (15000, 10000)).save(tmp_path / "large.png")                # 150 Mpx, under PIL's limit
    with pytest.raises(ValueError, match=r"large.png: 15000 x 10000 = 150,000,000 pixels, more than the limit of "
                                         r"40,000,000 \(repro.datasets.MAX_PIXELS; set DEEPGAZE_MAX_PIXELS"):
        load_image(tmp_path / "large.png")
    _, model_path = readout
    code, err = predict([tmp_path / "large.png", "--model", model_path], tmp_path, weights_source, capsys)
    assert code == 1 and err.startswith(f"error: {tmp_path / 'large.png'}: 15000 x 10000 = 150,000,000 pixels")
    assert not (tmp_path / "out").exists()
    # the limit is the package's own, documented and overridable
    Image.new("RGB", (300, 200)).save(tmp_path / "small.png")
    monkeypatch.setenv("DEEPGAZE_MAX_PIXELS", "50000")
    with pytest.raises(ValueError, match=r"300 x 200 = 60,000 pixels, more than the limit of 50,000"):
        load_image(tmp_path / "small.png")
    assert load_image(tmp_path / "small.png", max_pixels=60_000).shape == (200, 300, 3)
    monkeypatch.setenv("DEEPGAZE_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match=r"DEEPGAZE_MAX_PIXELS='lots': expected a positive whole number"):
        load_image(tmp_path / "small.png")


# --------------------------------------------------------------------------- model records (issue 29)

@pytest.mark.parametrize("name, value, message", [
    ("geometry", json.dumps([1, 2]), r"attribute 'geometry' = '\[1, 2\]': expected a geometry"),
    ("geometry", json.dumps({"units": [[1.0, 0.0]], "grid": [1.0, 8.0]}), r"attribute 'geometry' .*step > 0"),
    ("geometry", json.dumps({"units": 3, "grid": [1.0, 8.0]}), r"attribute 'geometry' .*expected a geometry"),
    ("geometry", '{"units": [["a", 1]], "grid": [1, 8]}', r"attribute 'geometry' .*pair \(first, step\)"),
    ("geometry", "{not json", r"attribute 'geometry' = '\{not json': Expecting"),
    ("channels", json.dumps([256.5]), r"attribute 'channels' = '\[256.5\]': expected a list of positive whole"),
    ("channels", json.dumps([-256]), r"attribute 'channels' = '\[-256\]': expected a list of positive whole"),
    ("layers", json.dumps([5]), r"attribute 'layers' = '\[5\]': expected a non-empty list of distinct layer"),
    ("sigma", "nan", r"attribute 'sigma' = 'nan': expected a finite number > 0"),
    ("alpha", "big", r"attribute 'alpha' = 'big': could not convert"),
    ("metadata", json.dumps([1]), r"attribute 'metadata' = '\[1\]': expected a JSON object"),
])
def test_malformed_model_records_are_named(readout, tmp_path, osie_dir, weights_source, capsys, name, value, message):
    from repro.model import DeepGazeI
    _, path = readout
    with h5py.File(path, "a") as f:
        f.attrs[name] = value
    with pytest.raises(ValueError, match=r"model.h5: " + message):
        DeepGazeI.load(path)
    code, err = predict([osie_dir / "stimuli" / "1003.jpg", "--model", path], tmp_path, weights_source, capsys)
    assert code == 1 and err.startswith(f"error: {path}: attribute {name!r}") and not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit", [{"layers": ["relu5"]}, {"sigma": "3.0"}, {"w": "scaled"}])
def test_a_model_file_edited_after_saving_is_refused(readout, tmp_path, edit):
    from repro.model import DeepGazeI
    _, path = readout
    with h5py.File(path, "a") as f:
        for name, value in edit.items():
            if name == "w":
                f["w"][...] = f["w"][()] * 2
            else:
                f.attrs[name] = json.dumps(value) if isinstance(value, list) else value
    with pytest.raises(ValueError, match=r"model.h5: its records do not match the digest they were saved with"):
        DeepGazeI.load(path)


@pytest.mark.parametrize("change", ["padding", "downsample", "layer"])
def test_a_model_whose_records_contradict_each_other_is_refused(readout, tmp_path, osie_dir, weights_source, capsys,
                                                                change):
    model, _ = readout
    network = dict(model.metadata["network"])
    if change == "padding":
        network["padding"] = "caffe"
    elif change == "downsample":
        network["downsample"] = 1
    else:
        model.layers, model.channels = ["conv4"], [256]                # conv4 has 384 features
    model.metadata["network"] = network
    model.save(tmp_path / "contradicting.h5")
    code, err = predict([osie_dir / "stimuli" / "1003.jpg", "--model", tmp_path / "contradicting.h5"], tmp_path,
                        weights_source, capsys)
    assert code == 1 and "the model's records contradict each other" in err and "train the model again" in err
    assert not (tmp_path / "out").exists()


def test_a_model_refuses_an_edited_prototxt_beside_its_caffemodel(readout, tmp_path, osie_dir, weights_source, capsys):
    from repro.__main__ import main
    _, path = readout
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "deploy.prototxt").write_text((weights_source / "bvlc_alexnet/deploy.prototxt").read_text()
                                            .replace("beta: 0.75", "beta: 0.5", 1))
    (folder / "w.caffemodel").symlink_to(weights_source / "bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel")
    code = main(["predict", str(osie_dir / "stimuli" / "1003.jpg"), "--model", str(path), "--network", str(folder),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert code == 1 and err.startswith(f"error: {folder / 'deploy.prototxt'} describes another network (digest ")
    assert "use the prototxt it was trained with" in err and not (tmp_path / "out").exists()


def test_a_model_saved_before_the_digests_still_predicts_with_a_warning(readout, tmp_path, osie_dir, weights_source,
                                                                       capsys, caplog):
    from repro.model import DeepGazeI
    model, _ = readout
    model.metadata["network"].pop("network_sha1")
    model.save(tmp_path / "older.h5")
    with h5py.File(tmp_path / "older.h5", "a") as f:                 # as the previous version wrote it
        del f.attrs["records_sha256"]
        f.attrs["sigma"], f.attrs["alpha"] = model.sigma, model.alpha
    assert DeepGazeI.load(tmp_path / "older.h5").sigma == model.sigma
    code, _ = predict([osie_dir / "stimuli" / "1003.jpg", "--model", tmp_path / "older.h5"], tmp_path,
                      weights_source, capsys)
    assert code == 0 and "records no digest of its prototxt" in caplog.text


# --------------------------------------------------------------------------- options and schedulers (issue 29)

def script_main():
    """Figure 8's ``main`` (any experiment script: they share their options, repro.experiments.parser)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fig8", Path(__file__).resolve().parent.parent / "experiments" /
                                                  "fig8_regularization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize("option, message", [
    (["--workers", "-1"], r"^error: .*argument --workers: -1 is less than 0$"),
    (["--workers", "two"], r"^error: .*argument --workers: 'two' is not a whole number$"),
    (["--seed", "-5"], r"^error: .*argument --seed: seed -5: expected a whole number from 0 to 4294967295$"),
    (["--seed", "1e3"], r"^error: .*argument --seed: seed '1e3' is not a whole number$"),
])
def test_bad_options_of_the_scripts_are_one_line_errors(option, message, tmp_path, capsys):
    from repro import cli
    start = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        cli.run(script_main(), ["--quick", "--out", str(tmp_path), "--cache", str(tmp_path), *option])
    assert exited.value.code == 1 and time.monotonic() - start < 10
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.match(message, lines[0]), lines
    assert list(tmp_path.iterdir()) == []


def test_the_library_refuses_what_the_options_refuse(tmp_path):
    from argparse import Namespace

    from repro import experiments as ex
    with pytest.raises(ValueError, match=r"seed -5: expected a whole number from 0 to 4294967295"):
        ex.options_of(Namespace(dataset="demo", data_dir=None, weights=None, quick=True, seed=-5))
    with pytest.raises(ValueError, match=r"workers must be a whole number >= 0 .* got -1"):
        ex.run_grid([{"x": 1}], tmp_path, workers=-1, progress=False)


def silent_socket():
    """A real socket on 127.0.0.1 that accepts connections and never answers."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


@pytest.mark.parametrize("kind", ["silent", "refused", "nonsense"])
def test_a_scheduler_that_does_not_answer_is_a_clear_error_within_its_deadline(kind, tmp_path, monkeypatch, capsys):
    from repro import cli, cluster
    listener = silent_socket()
    address = {"silent": f"tcp://127.0.0.1:{listener.getsockname()[1]}", "refused": "tcp://127.0.0.1:1",
               "nonsense": "nonsense://somewhere"}[kind]
    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT", 2.0)
    start = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match=rf"no dask scheduler answered at {re.escape(address)} within 2 s"):
            cluster.check_scheduler(address, timeout=2.0)
        assert time.monotonic() - start < 6
        code = cli.run(script_main(), ["--quick", "--dataset", "demo", "--out", str(tmp_path / "out"), "--cache",
                                       str(tmp_path / "cache"), "--scheduler", address])
    finally:
        listener.close()
    assert code == 1
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert err[-1].startswith(f"error: no dask scheduler answered at {address}")
    assert not (tmp_path / "out").exists()


def test_a_scheduler_without_workers_is_a_clear_error_within_its_deadline(tmp_path, monkeypatch):
    from distributed import LocalCluster

    from repro import cluster as clusters
    from repro.experiments import grid
    monkeypatch.setattr(clusters, "SCHEDULER_TIMEOUT", 2.0)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"{re.escape(cluster.scheduler_address)}: no dask worker within 2 s"):
            grid.run_grid([{"a": "config"}], tmp_path, scheduler=cluster.scheduler_address, progress=False)
        assert time.monotonic() - start < 10
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- values read from files and arrays (issue 29)

@pytest.mark.parametrize("held", ["list", "array", "dict"])
def test_a_fixation_beyond_the_maps_given_to_a_metric_is_named(held):
    maps = [np.zeros((30, 40)), np.zeros((30, 40))]
    maps = {"list": maps, "array": np.stack(maps), "dict": dict(enumerate(maps))}[held]
    fixations = Fixations(x=[1.0, 2.0], y=[1.0, 2.0], n=[0, 5])
    for measure in (metrics.log_likelihoods, metrics.auc, metrics.nss):
        with pytest.raises(ValueError, match=r"no map of image 5: .*(2 maps were given|images \[0, 1\])"):
            measure(maps, fixations)


@pytest.mark.parametrize("field, values, shown", [("n", [0, 1.5], "1.5"), ("subject", [0, np.nan], "nan"),
                                                  ("index_in_trial", [0, np.inf], "inf"), ("n", ["0", "a"], "'a'")])
def test_integer_fixation_fields_holding_other_values_are_refused_not_truncated(field, values, shown):
    with pytest.raises(ValueError, match=rf"fixation field '{field}': #1 is {re.escape(shown)}, not a whole number"):
        Fixations(x=[1.0, 2.0], y=[1.0, 2.0], **{"n": [0, 0], field: values})
    assert Fixations(x=[1.0, 2.0], y=[1.0, 2.0], n=np.array([0.0, 1.0])).n.tolist() == [0, 1]   # MATLAB's floats


def test_pysaliency_fixations_with_a_fractional_image_index_are_named(tmp_path):
    from repro.datasets import read_hdf5, write_hdf5
    write_hdf5(some_fixations(), tmp_path / "fixations.hdf5")
    with h5py.File(tmp_path / "fixations.hdf5", "a") as f:
        n = f["n"][()].astype(float)
        n[3] = 0.5
        del f["n"]
        f["n"] = n
    with pytest.raises(ValueError, match=r"fixations.hdf5: .*fixation field 'n': #3 is 0.5, not a whole number"):
        read_hdf5(tmp_path / "fixations.hdf5")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_a_csv_with_a_byte_order_mark_reads_as_without(table_folder, tmp_path, encoding):
    from repro.predict import read_fixation_points
    stimuli, _ = table_folder
    (tmp_path / "points.csv").write_text("x,y,image\n3,4,a.jpg\n", encoding=encoding)
    assert read_fixation_points(tmp_path / "points.csv")["a"].tolist() == [[3.0, 4.0]]
    (tmp_path / "table.csv").write_text("s,img,x,y\n1,a,3,4\n", encoding=encoding)
    _, fixations = load_table(tmp_path / "table.csv", stimuli)
    assert fixations.x.tolist() == [3.0]


def test_a_table_that_is_not_utf8_is_named(table_folder, tmp_path):
    stimuli, _ = table_folder
    (tmp_path / "table.csv").write_bytes("s,img,x,y\n1,caf\u00e9,3,4\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"table.csv: not UTF-8 text .* save the table as UTF-8 CSV"):
        load_table(tmp_path / "table.csv", stimuli)


@pytest.mark.parametrize("field, value, message", [
    ("eps", np.nan, r"eps \(the uniform density's weight\) must be in \[0, 1\], got nan"),
    ("eps", 3.0, r"eps .* must be in \[0, 1\], got 3.0"),
    ("eps", np.ones(3), r"TypeError"),
    ("bandwidth", -0.1, r"bandwidth must be a finite number > 0"),
    ("frame_density", np.full((4, 4), np.nan), r"frame_density must be a 2-D array"),
])
def test_a_centre_bias_template_with_values_out_of_range_is_named(tmp_path, field, value, message):
    from repro.centerbias import CenterBiasTemplate
    CenterBiasTemplate(np.full((4, 4), 1 / 16), 0.1, 0.05, "test").save(tmp_path / "template.npz")
    with np.load(tmp_path / "template.npz") as f:
        stored = dict(f)
    stored[field] = value
    with open(tmp_path / "edited.npz", "wb") as f:
        np.savez(f, **stored)
    with pytest.raises(ValueError, match=r"edited.npz: not a centre-bias template of this package \(.*" + message):
        CenterBiasTemplate.load(tmp_path / "edited.npz")


# --------------------------------------------------------------------------- cached entries checked against the request (issue 29)

def test_feature_cache_files_swapped_between_images_are_computed_again(alexnet_full, osie_dir, tmp_path, caplog):
    from repro.features import FeatureExtractor, FeatureStore, image_hash
    store = FeatureStore(FeatureExtractor(alexnet_full), tmp_path)
    first, second = (load_image(osie_dir / "stimuli" / f"{n}.jpg") for n in (1001, 1002))     # both 600 x 800
    expected = store.features(first, ["conv5"])[0]
    other = store.features(second, ["conv5"])[0]
    a, b = (tmp_path / f"{image_hash(image)}.h5" for image in (first, second))
    a.write_bytes(b.read_bytes())                                   # image 1001's name, image 1002's maps
    np.testing.assert_array_equal(store.features(first, ["conv5"])[0], expected)
    assert f"{a}: holds the maps of another image ({b.stem})" in caplog.text
    assert not np.array_equal(expected, other)


def test_a_feature_cache_file_of_the_wrong_shape_is_computed_again(alexnet_full, osie_dir, tmp_path, caplog):
    from repro.features import FeatureExtractor, FeatureStore, image_hash
    store = FeatureStore(FeatureExtractor(alexnet_full), tmp_path)
    image = load_image(osie_dir / "stimuli" / "1001.jpg")
    expected = store.features(image, ["conv5"])[0]
    path = tmp_path / f"{image_hash(image)}.h5"
    with h5py.File(path, "a") as f:                                 # a file written without the image's record
        del f.attrs["image"]
        del f["conv5"]
        f["conv5"] = expected[:, :-1]
    np.testing.assert_array_equal(store.features(image, ["conv5"])[0], expected)
    cut = (expected.shape[0], expected.shape[1] - 1, expected.shape[2])
    assert f"{path}: layer 'conv5' has shape {cut}, the network gives {expected.shape}" in caplog.text


def test_a_weights_cache_of_another_caffemodel_is_converted_again(weights_source, tmp_path, monkeypatch, caplog):
    from repro import caffe
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path / "weights"))
    prototxt = weights_source / "bvlc_alexnet/deploy.prototxt"
    v1 = caffe.load(prototxt, weights_source / ALEXNET, last_layer="pool5", progress=False)
    v2_sha1 = caffe.sha1sum(weights_source / "bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel")
    caffe.cache_path(v2_sha1).write_bytes(caffe.cache_path(v1.sha1).read_bytes())   # under v2's name
    v2 = caffe.load(prototxt, weights_source / "bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel", last_layer="pool5",
                    progress=False)
    assert f"{caffe.cache_path(v2_sha1)}: holds the weights of another caffemodel (sha1 {v1.sha1})" in caplog.text
    assert v2.sha1 == v2_sha1 and caffe._read_cache(caffe.cache_path(v2_sha1), v2_sha1) is not None
