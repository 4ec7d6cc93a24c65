"""Feature extraction and its cache (repro.features), on real AlexNet weights and OSIE images."""
import numpy as np
import pytest
from skimage.io import imread

from repro.features import FeatureExtractor, FeatureStore, feature_scales
from repro.network import Network, preprocess
from repro.resampling import Geometry


class Counting:
    """Wraps a real extractor and records which layers it computed."""

    def __init__(self, extractor):
        self.extractor, self.cache_key, self.calls = extractor, extractor.cache_key, []

    def geometry(self, layers):
        return self.extractor.geometry(layers)

    def features(self, image, layers):
        self.calls.append(list(layers))
        return self.extractor.features(image, layers)


@pytest.fixture(scope="module")
def images(osie_dir):
    return [imread(osie_dir / "stimuli" / f"{n}.jpg") for n in (1001, 1002)]


@pytest.fixture(scope="module")
def extractor(alexnet_full):
    return FeatureExtractor(alexnet_full)


def test_features_are_the_networks_outputs_on_the_downsampled_image(extractor, alexnet_full, images):
    conv5, = extractor.features(images[0], ["conv5"])
    direct, = alexnet_full.function(["conv5"])(preprocess(images[0], downsample=2))
    np.testing.assert_array_equal(conv5, direct)
    assert conv5.shape == alexnet_full.output_shape("conv5", (300, 400))


def test_preprocessing_inside_the_graph_is_numpys(extractor, alexnet_full, images):
    """The network input computed inside the Theano graph from the uint8 image is :func:`preprocess`'s: to the bit
    when downsampling by 2 (the paper's), within float32 rounding by 3; features and a readout's log-density
    agree with those of the NumPy preprocessing to 1e-5 relative (fails if the in-graph path computes otherwise)."""
    from repro.backend import T, theano
    from repro.model import DeepGazeI
    from repro.network import preprocess_graph

    rgb = T.tensor3("rgb", dtype="uint8")
    mean = (104.00699, 116.66877, 122.67892)
    for downsample, tolerance in ((1, 0), (2, 0), (3, 2e-5)):
        graph = theano.function([rgb], preprocess_graph(rgb, mean, downsample))
        for image in (images[0], images[1][:599, :797]):                    # odd sizes: rows and columns dropped
            ours, numpys = graph(image), preprocess(image, mean, downsample)
            assert ours.shape == numpys.shape and ours.dtype == np.float32
            assert np.abs(ours - numpys).max() <= tolerance
    layers = ["conv1", "norm2", "conv5"]
    model = DeepGazeI(layers, [96, 256, 256], np.full(608, 0.05), extractor.geometry(layers),
                      w=np.random.RandomState(0).randn(608), sigma=2.0)
    for image in images:
        in_graph = extractor.features(image, layers)
        numpy_path = alexnet_full.function(layers)(preprocess(image, downsample=2))
        for a, b in zip(in_graph, numpy_path):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
        zeros = np.zeros(image.shape[:2], np.float32)
        np.testing.assert_allclose(model.density(extractor).log_density_of(image),
                                   model.log_density_from_features(numpy_path, zeros), rtol=1e-5)


def test_store_caches_resumes_and_adds_layers(extractor, images, tmp_path):
    counting = Counting(extractor)
    store = FeatureStore(counting, tmp_path)
    first = store.features(images[0], ["conv5"])
    again = store.features(images[0], ["conv5"])
    np.testing.assert_array_equal(first[0], again[0])
    assert counting.calls == [["conv5"]]                      # the second read came from disk

    store.extract(images, ["conv5"], progress=False)           # resumes: only the new image is computed
    assert counting.calls == [["conv5"], ["conv5"]]

    both = store.features(images[0], ["pool1", "conv5"])       # a new layer is added to the file
    assert counting.calls[-1] == ["pool1"]
    np.testing.assert_array_equal(both[1], first[0])
    assert both[0].shape[0] == 96
    assert sorted(p.suffix for p in tmp_path.iterdir() if p.name != ".lock") == [".h5", ".h5"]   # no leftovers


def test_reader_reads_back_from_disk(extractor, images, tmp_path):
    counting = Counting(extractor)
    store = FeatureStore(counting, tmp_path)
    read = store.reader(images[1], ["pool5", "conv5"])              # computes and stores them now
    assert counting.calls == [["pool5", "conv5"]]
    first, second = read(), read()
    assert counting.calls == [["pool5", "conv5"]]                    # the reads came from the file
    assert first[0] is not second[0]
    for got, want in zip(first, extractor.features(images[1], ["pool5", "conv5"])):
        np.testing.assert_array_equal(got, want)


def test_failed_extraction_leaves_no_file(images, tmp_path):
    class Broken:
        cache_key = "broken"

        def features(self, image, layers):
            raise RuntimeError("network died")

    with pytest.raises(RuntimeError):
        FeatureStore(Broken(), tmp_path).features(images[0], ["conv5"])
    assert list(tmp_path.iterdir()) == []


def test_cache_key_depends_on_preprocessing(alexnet_full, extractor):
    assert FeatureExtractor(alexnet_full, downsample=1).cache_key != extractor.cache_key
    assert FeatureExtractor(alexnet_full, mean=(0, 0, 0)).cache_key != extractor.cache_key
    assert FeatureExtractor(alexnet_full).cache_key == extractor.cache_key


#: Two layers, units every 2 and 4 px, on a grid every 2 px (15 x 20 cells on a 30 x 40 image).
GEOMETRY = Geometry(((1.0, 2.0), (0.0, 4.0)), (1.0, 2.0))


def test_feature_scales_give_unit_std_on_the_grid():
    rng = np.random.RandomState(1)
    images = [((30, 40), [rng.rand(2, 15, 20) * [[[1]], [[5]]], rng.rand(3, 8, 10)]) for _ in range(3)]
    scales = feature_scales(images, GEOMETRY)
    on_grid = []
    centres = 1.0 + 2.0 * np.arange(15), 1.0 + 2.0 * np.arange(20)
    for _, (first, second) in images:
        # layer 1 already sits at the cell centres; layer 2 is interpolated there (np.interp per axis)
        rows, cols = 4.0 * np.arange(8), 4.0 * np.arange(10)
        along_x = np.stack([[np.interp(centres[1], cols, row) for row in m] for m in second])
        interpolated = np.stack([[np.interp(centres[0], rows, col) for col in m.T] for m in along_x]).transpose(0, 2, 1)
        on_grid.append(np.concatenate([first, interpolated]).reshape(5, -1))
    std = np.concatenate(on_grid, axis=1).std(axis=1)
    np.testing.assert_allclose(scales, 1 / std, rtol=1e-5)


def test_constant_features_get_scale_zero():
    rng = np.random.RandomState(2)
    images = [((30, 40), [np.concatenate([rng.rand(1, 15, 20), np.full((1, 15, 20), 0.1, np.float32)]),
                          rng.rand(1, 8, 10)]) for _ in range(3)]
    scales = feature_scales(images, GEOMETRY)
    assert scales[1] == 0
    assert (scales[[0, 2]] > 1).all()


def test_dead_alexnet_filter_is_not_amplified(extractor, images):
    """BVLC AlexNet's conv2 has a filter whose response is its bias everywhere; 1/std must not blow it up."""
    maps = [extractor.features(image, ["conv2"]) for image in images]
    dead = [c for c in range(maps[0][0].shape[0]) if all(np.ptp(m[0][c]) == 0 for m in maps)]
    assert dead, "expected at least one constant conv2 feature in BVLC AlexNet"
    scales = feature_scales(((image.shape[:2], m) for image, m in zip(images, maps)), extractor.geometry(["conv2"]))
    assert (scales[dead] == 0).all()
    alive = np.setdiff1d(np.arange(len(scales)), dead)
    assert (scales[alive] > 0).all() and scales[alive].max() < 1e3


def test_grid_is_conv1_and_store_caches_scales_per_layer(extractor, images, tmp_path):
    assert extractor.grid_layer == "conv1"
    assert extractor.geometry(["conv5"]) == Geometry((extractor.unit_positions("conv5"),),
                                                     extractor.unit_positions("conv1"))
    counting = Counting(extractor)
    store = FeatureStore(counting, tmp_path)
    both = store.feature_scales(images, ["conv5", "pool5"], progress=False)
    maps = [extractor.features(image, ["conv5", "pool5"]) for image in images]
    expected = feature_scales(((image.shape[:2], m) for image, m in zip(images, maps)),
                              extractor.geometry(["conv5", "pool5"]))
    np.testing.assert_allclose(both, expected, rtol=1e-6)
    assert len(list((tmp_path / "scales").glob("*.npy"))) == 2
    calls = len(counting.calls)
    np.testing.assert_array_equal(store.feature_scales(images[::-1], ["pool5"], progress=False), both[256:])
    assert len(counting.calls) == calls                       # read back, neither computed nor extracted again
    assert not np.array_equal(store.feature_scales(images[:1], ["pool5"], progress=False), both[256:])


def test_layer_names_with_slashes_are_cached_and_extended(weights_source, images, tmp_path):
    # HDF5 turns "conv1/7x7_s2" into dataset "7x7_s2" of group "conv1"; adding a layer rewrites the file
    # with every stored layer, which must then be found under its full name, not as a group
    folder = weights_source / "bvlc_googlenet"
    googlenet = Network(folder / "deploy.prototxt", folder / "bvlc_googlenet.caffemodel", last_layer="pool1/3x3_s2")
    counting = Counting(FeatureExtractor(googlenet))
    store = FeatureStore(counting, tmp_path)
    conv1, = store.features(images[0], ["conv1/7x7_s2"])
    pool1, again = store.features(images[0], ["pool1/3x3_s2", "conv1/7x7_s2"])
    assert counting.calls == [["conv1/7x7_s2"], ["pool1/3x3_s2"]]
    np.testing.assert_array_equal(again, conv1)
    assert conv1.shape == (64, 150, 200) and pool1.shape == (64, 75, 100)
    assert sorted(store._read(next(tmp_path.glob("*.h5")))) == ["conv1/7x7_s2", "pool1/3x3_s2"]
