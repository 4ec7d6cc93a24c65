"""repro.network against OpenCV's independent Caffe implementation, on real weights and images.

Each Theano graph is compiled once per session (module-scoped fixtures below).
"""
import cv2
import numpy as np
import pytest

from repro import caffe
from repro.network import ALEXNET_LAYERS, Network, preprocess

ALEXNET = "bvlc_alexnet/deploy.prototxt"
CAFFEMODELS = {"v1": "bvlc_alexnet/bvlc_alexnet_conv_q8.v1.caffemodel",
               "v2": "bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel"}
GOOGLENET = ("bvlc_googlenet/deploy.prototxt", "bvlc_googlenet/bvlc_googlenet.caffemodel")
TOLERANCE = 1e-4  # largest absolute difference relative to the largest absolute value, per layer


@pytest.fixture(scope="module", autouse=True)
def weights_cache(tmp_path_factory):
    """Converted weights go to a temporary folder, not the checkout."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path_factory.mktemp("weights")))
        yield


def _rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.fixture(scope="module")
def image(osie_dir):
    """OSIE 1001.jpg (800 x 600) as the paper feeds it: BGR, mean-subtracted, downsampled by 2."""
    return preprocess(_rgb(osie_dir / "stimuli/1001.jpg"))


def _opencv(prototxt, caffemodel, image, layers):
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableFusion(False)  # keep conv and ReLU outputs apart, as Caffe's layers are
    net.setInput(image)
    return [out[0].reshape(out.shape[1], *(out.shape[2:] or (1, 1))) for out in net.forward(list(layers))]


def _assert_layers_match(names, ours, reference, shapes=None):
    for name, a, b in zip(names, ours, reference):
        assert a.shape == b.shape, f"{name}: shape {a.shape} != OpenCV {b.shape}"
        if shapes is not None:
            assert shapes[name] == a.shape, f"{name}: output_shape {shapes[name]} != computed {a.shape}"
        error = np.abs(a - b).max() / np.abs(b).max()
        assert error < TOLERANCE, f"{name}: relative error {error:.2e}"


def _cut_prototxt(weights_source, folder, full=False):
    """AlexNet's deploy.prototxt up to pool5 (the weights stop there); ``full``: pad = kernel - 1."""
    path = folder / ("alexnet_full.prototxt" if full else "alexnet_conv.prototxt")
    path.write_text(caffe.rewrite_prototxt(weights_source / ALEXNET, "pool5", full_padding=full))
    return path


def _alexnet_trunk(weights_source, version):
    net = Network(weights_source / ALEXNET, weights_source / CAFFEMODELS[version], last_layer="pool5")
    return net, net.function(ALEXNET_LAYERS)


@pytest.fixture(scope="module")
def alexnet_v1(weights_source):
    return _alexnet_trunk(weights_source, "v1")


@pytest.fixture(scope="module")
def alexnet_v2(weights_source):
    return _alexnet_trunk(weights_source, "v2")


@pytest.fixture(params=["v1", "v2"])
def alexnet(request):
    """(file version, caffe-mode AlexNet trunk, its compiled function of the 15 paper layers)."""
    return (request.param,) + request.getfixturevalue(f"alexnet_{request.param}")


@pytest.fixture(scope="module")
def alexnet_full(weights_source):
    net = Network(weights_source / ALEXNET, weights_source / CAFFEMODELS["v2"], padding="full", last_layer="pool5")
    return net, net.function(ALEXNET_LAYERS)


def test_alexnet_every_layer_matches_opencv(alexnet, weights_source, image, tmp_path):
    version, net, forward = alexnet
    assert net.layer_names == ALEXNET_LAYERS
    ours = forward(image)
    reference = _opencv(_cut_prototxt(weights_source, tmp_path), weights_source / CAFFEMODELS[version],
                        image, ALEXNET_LAYERS)
    assert (ours[0] < 0).any() and (ours[1] >= 0).all()  # conv1 before, relu1 after the ReLU
    _assert_layers_match(ALEXNET_LAYERS, ours, reference, net.output_shapes(image.shape[2:]))


def test_alexnet_full_padding_matches_opencv_with_kernel_minus_one_pads(alexnet_full, weights_source,
                                                                        image, tmp_path):
    net, forward = alexnet_full
    ours = forward(image)
    reference = _opencv(_cut_prototxt(weights_source, tmp_path, full=True), weights_source / CAFFEMODELS["v2"],
                        image, ALEXNET_LAYERS)
    shapes = net.output_shapes(image.shape[2:])
    _assert_layers_match(ALEXNET_LAYERS, ours, reference, shapes)
    assert shapes["conv1"] == (96, (300 + 20 - 11) // 4 + 1, (400 + 20 - 11) // 4 + 1)


def test_paper_layers_have_3712_channels_in_alexnet_and_caffenet(alexnet_full, weights_source):
    net, _ = alexnet_full
    caffenet = Network(weights_source / "bvlc_reference_caffenet/deploy.prototxt",
                       weights_source / CAFFEMODELS["v2"], padding="full", last_layer="pool5")
    assert caffenet.layer_names.index("pool1") < caffenet.layer_names.index("norm1")  # swapped order
    assert set(caffenet.layer_names) == set(ALEXNET_LAYERS)
    caffenet.outputs()  # the Theano graph builds
    for network in (net, caffenet):
        shapes = network.output_shapes((300, 400))
        assert sum(shapes[name][0] for name in ALEXNET_LAYERS) == 3712
    ours, theirs = net.output_shapes((300, 400)), caffenet.output_shapes((300, 400))
    assert {n: s for n, s in theirs.items() if "norm" not in n} == {n: s for n, s in ours.items() if "norm" not in n}
    assert (theirs["norm1"], theirs["norm2"]) == (ours["pool1"], ours["pool2"])


def test_function_is_compiled_once_and_checks_its_input(alexnet_full):
    net, forward = alexnet_full
    assert net.function(list(ALEXNET_LAYERS)) is forward
    with pytest.raises(ValueError, match=r"\(1, 3, height, width\)"):
        forward(np.zeros((3, 40, 40), np.float32))
    with pytest.raises(KeyError, match="no layer 'fc6'"):
        net.function(["fc6"])


@pytest.mark.parametrize("mode", ["caffe", "full"])
def test_receptive_fields_bound_the_units_a_pixel_changes(mode, request):
    if mode == "caffe":
        net, forward = request.getfixturevalue("alexnet_v2")
    else:
        net, forward = request.getfixturevalue("alexnet_full")
    rng = np.random.RandomState(0)
    base = rng.normal(0, 50, (1, 3, 120, 136)).astype(np.float32)
    before = forward(base)
    changed_any = {}
    for sign in (1, -1):
        poked = base.copy()
        poked[0, :, 57, 70] += sign * 5000
        for name, a, b in zip(ALEXNET_LAYERS, before, forward(poked)):
            changed_any[name] = changed_any.get(name, False) | (a != b).any(axis=0)
    for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool5"):
        size, stride, offset = net.receptive_field(name)
        changed = changed_any[name]
        for axis, pixel in ((0, 57), (1, 70)):
            units = np.arange(changed.shape[axis])
            predicted = units[(offset + units * stride <= pixel) & (pixel <= offset + units * stride + size - 1)]
            seen = np.flatnonzero(changed.any(axis=1 - axis))
            assert np.array_equal(seen, predicted), f"{name} ({mode}), axis {axis}: {seen} vs {predicted}"
    assert net.receptive_field("conv1") == ((11, 4, -10) if mode == "full" else (11, 4, 0))


def test_bad_networks_are_named(weights_source, tmp_path):
    text = (weights_source / ALEXNET).read_text()
    bad = tmp_path / "bad.prototxt"
    bad.write_text(text.replace('type: "ReLU"', 'type: "PReLU"', 1))
    with pytest.raises(caffe.CaffeError, match=r"layer 'relu1': unsupported layer type 'PReLU'"):
        Network(bad, weights_source / CAFFEMODELS["v2"], last_layer="pool5")
    bad.write_text(text.replace("group: 2", "group: 1", 1))  # conv2's weights are for 2 groups
    with pytest.raises(caffe.CaffeError, match=r"layer 'conv2': weights \(256, 48, 5, 5\) do not fit 96"):
        Network(bad, weights_source / CAFFEMODELS["v2"], last_layer="pool5")
    with pytest.raises(ValueError, match="padding"):
        Network(weights_source / ALEXNET, weights_source / CAFFEMODELS["v2"], padding="same")


# -- GoogLeNet -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def googlenet(weights_source):
    net = Network(*(weights_source / name for name in GOOGLENET))
    return net, net.function(net.layer_names)


@pytest.mark.slow
def test_googlenet_every_layer_matches_opencv_and_sees_a_beagle(googlenet, weights_source, osie_dir):
    net, forward = googlenet
    rgb = _rgb(osie_dir / "stimuli/1009.jpg")
    image = preprocess(rgb, size=(224, 224))
    ours = forward(image)
    reference = _opencv(*(weights_source / name for name in GOOGLENET), image, net.layer_names)
    _assert_layers_match(net.layer_names, ours, reference, net.output_shapes((224, 224)))
    probabilities = ours[net.layer_names.index("prob")].ravel()
    classes = (weights_source / "imagenet/synset_words.txt").read_text().splitlines()
    assert probabilities.argmax() == 162 and "beagle" in classes[162]
    assert probabilities[162] > 0.8
    np.testing.assert_allclose(probabilities.sum(), 1, rtol=1e-5)


# -- preprocessing ---------------------------------------------------------------------
def test_preprocess_is_caffe_bgr_minus_mean_downsampled(osie_dir, weights_source):
    rgb = _rgb(osie_dir / "stimuli/1001.jpg")
    bgr = rgb[:, :, ::-1].astype(np.float32)
    ours = preprocess(rgb)
    assert ours.shape == (1, 3, 300, 400) and ours.dtype == np.float32
    area = cv2.resize(bgr, (400, 300), interpolation=cv2.INTER_AREA)  # exact 2 x 2 means
    np.testing.assert_allclose(ours[0], (area - [104, 117, 123]).transpose(2, 0, 1), atol=1e-3)
    linear = cv2.resize(bgr, (224, 224), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(preprocess(rgb, size=(224, 224))[0],
                               (linear - [104, 117, 123]).transpose(2, 0, 1), atol=1e-2)
    mean = caffe.read_mean(weights_source / "imagenet/imagenet_mean.binaryproto")
    with_image_mean = preprocess(rgb, mean=mean, downsample=4)
    assert with_image_mean.shape == (1, 3, 150, 200)
    assert abs(with_image_mean[0].mean(axis=(1, 2)) - (ours[0].mean(axis=(1, 2)) + [104, 117, 123]
                                                      - mean.mean(axis=(1, 2)))).max() < 2
    with pytest.raises(ValueError, match="RGB image"):
        preprocess(np.zeros((10, 10, 4), np.uint8))


LAYER_ZOO = """
name: "layer zoo"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 71 dim: 95 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
layer { name: "max_pad" type: "Pooling" bottom: "conv1" top: "max_pad"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_pad" type: "Pooling" bottom: "conv1" top: "ave_pad"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_ceil" type: "Pooling" bottom: "conv1" top: "ave_ceil"
        pooling_param { pool: AVE kernel_size: 4 stride: 3 } }
layer { name: "max_wide_stride" type: "Pooling" bottom: "conv1" top: "max_wide_stride"
        pooling_param { pool: MAX kernel_size: 2 stride: 3 } }
layer { name: "max_rect" type: "Pooling" bottom: "conv1" top: "max_rect"
        pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 } }
layer { name: "ave_global" type: "Pooling" bottom: "conv1" top: "ave_global"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "leaky" type: "ReLU" bottom: "conv1" top: "leaky" relu_param { negative_slope: 0.1 } }
layer { name: "lrn3" type: "LRN" bottom: "leaky" top: "lrn3" lrn_param { local_size: 3 alpha: 0.001 beta: 0.6 } }
layer { name: "lrn3k" type: "LRN" bottom: "leaky" top: "lrn3k" lrn_param { local_size: 3 alpha: 0.002 beta: 0.6 k: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "lrn3" top: "conv2"
        convolution_param { num_output: 256 kernel_size: 5 group: 2 dilation: 2 pad: 3 stride: 2 } }
"""


@pytest.mark.slow
def test_layer_variants_match_opencv(weights_source, tmp_path):
    """Cases AlexNet and GoogLeNet do not exercise (padded/ceil/rectangular/global pooling,
    leaky ReLU, LRN with other parameters, dilated strided grouped convolution) on AlexNet's
    real conv1 and conv2 weights.

    (``pad_w: 0`` is spelled out: OpenCV, unlike Caffe, ignores a ``pad_h`` given alone.)
    """
    prototxt = tmp_path / "zoo.prototxt"
    prototxt.write_text(LAYER_ZOO)
    net = Network(prototxt, weights_source / CAFFEMODELS["v2"])
    image = np.random.RandomState(1).normal(0, 60, (1, 3, 71, 95)).astype(np.float32)
    ours = dict(zip(net.layer_names, net.function(net.layer_names)(image)))
    names = [name for name in net.layer_names if name != "lrn3k"]
    reference = dict(zip(names, _opencv(prototxt, weights_source / CAFFEMODELS["v2"], image, names)))
    _assert_layers_match(names, [ours[n] for n in names], [reference[n] for n in names],
                         net.output_shapes((71, 95)))
    # OpenCV ignores LRN's k; Caffe's (k + alpha/n sum)^-beta = k^-beta (1 + (alpha/k)/n sum)^-beta
    _assert_layers_match(["lrn3k"], [ours["lrn3k"]], [2 ** -0.6 * reference["lrn3"]])


# -- the table of layer types ------------------------------------------------------------
EVERY_TYPE = """
name: "every type"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 20 dim: 24 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 3 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
layer { name: "act" type: "%s" bottom: "conv2" top: "conv2" }
layer { name: "cat" type: "Concat" bottom: "norm1" bottom: "conv2" top: "cat" }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _random_network(path, extra_type):
    """EVERY_TYPE with one more layer ``act`` of ``extra_type``, random weights (conv1, conv2, fc)."""
    path.write_text(EVERY_TYPE % extra_type)
    name, layers = caffe.parse_prototxt(path)
    rng = np.random.RandomState(0)
    shapes = {"conv1": [(4, 3, 3, 3), (4,)], "conv2": [(2, 4, 3, 3), (2,)], "fc": [(5, 6 * 9 * 11), (5,)]}
    blobs = {layer: [rng.normal(0, 0.1, s).astype(np.float32) for s in blob_shapes]
             for layer, blob_shapes in shapes.items()}
    return Network.from_model(caffe.CaffeModel(name, layers, blobs, path, path, "random"))


def test_a_layer_type_is_one_table_entry(tmp_path, monkeypatch):
    """Shape, receptive field and graph all come from LAYER_TYPES: every supported type agrees with its
    compiled output, and registering a new type there is all Network needs to build it."""
    from repro import network

    with pytest.raises(caffe.CaffeError, match=r"layer 'act': unsupported layer type 'TanH' \(supported: "
                                               + ", ".join(network.SUPPORTED_TYPES) + r"\)$"):
        _random_network(tmp_path / "tanh.prototxt", "TanH")

    class TanH(network.LayerType):
        def graph(self, inputs, blobs):
            return network.T.tanh(inputs[0])

    monkeypatch.setitem(network.LAYER_TYPES, "TanH", TanH)
    net = _random_network(tmp_path / "tanh.prototxt", "TanH")
    assert {layer.type for layer in net.model.layers} == set(network.SUPPORTED_TYPES) | {"TanH"}
    image = np.random.RandomState(1).normal(0, 50, (1, 3, 20, 24)).astype(np.float32)
    ours = net.forward(image, net.layer_names)
    shapes = net.output_shapes((20, 24))
    assert {name: out.shape for name, out in ours.items()} == shapes
    np.testing.assert_allclose(ours["act"], np.tanh(ours["conv2"]), rtol=1e-5, atol=1e-6)
    assert (ours["conv1"] < 0).any() and (ours["relu1"] >= 0).all()
    np.testing.assert_allclose(ours["prob"].sum(), 1, rtol=1e-5)
    fields = {name: net.receptive_field(name) for name in net.layer_names if name not in ("fc", "prob")}
    assert (fields["conv1"], fields["pool1"], fields["norm1"]) == ((3, 1, 0), (4, 2, 0), (4, 2, 0))
    assert fields["act"] == fields["conv2"] == fields["cat"] == (8, 2, -2)  # the union of both branches
    for name in ("fc", "prob"):
        with pytest.raises(ValueError, match="layer 'fc': an inner product sees the whole input"):
            net.receptive_field(name)
