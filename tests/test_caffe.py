"""repro.caffe on the real BVLC files: both layouts, the HDF5 cache, damaged copies (downloads: test_download.py)."""
import hashlib
import re

import numpy as np
import pytest

from repro import caffe

ALEXNET_V1 = "bvlc_alexnet/bvlc_alexnet_conv_q8.v1.caffemodel"
ALEXNET_V2 = "bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel"


@pytest.fixture
def weights_tmp(tmp_path, monkeypatch):
    """An empty weights folder (the HDF5 cache goes there)."""
    folder = tmp_path / "weights"
    monkeypatch.setenv("DEEPGAZE_WEIGHTS", str(folder))
    return folder


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_v1_and_v2_caffemodels_hold_the_same_alexnet_weights(weights_source):
    v1 = caffe.read_caffemodel(weights_source / ALEXNET_V1, progress=False)
    v2 = caffe.read_caffemodel(weights_source / ALEXNET_V2, progress=False)
    assert list(v1) == list(v2) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    shapes = {name: [a.shape for a in arrays] for name, arrays in v2.items()}
    assert shapes["conv1"] == [(96, 3, 11, 11), (96,)]
    assert shapes["conv2"] == [(256, 48, 5, 5), (256,)]  # group 2: 96 / 2 input channels
    assert shapes["conv5"] == [(256, 192, 3, 3), (256,)]
    for name in v1:
        for a, b in zip(v1[name], v2[name]):
            assert a.dtype == np.float32 and np.array_equal(a, b)
    # conv2-conv5 are 8-bit fixed point (value = k / 128); conv1 is the float original
    assert np.array_equal(v2["conv3"][0] * 128, np.round(v2["conv3"][0] * 128))
    assert not np.array_equal(v2["conv1"][0] * 128, np.round(v2["conv1"][0] * 128))


def test_prototxt_layers_in_order_with_defaults(weights_source):
    name, layers = caffe.parse_prototxt(weights_source / "bvlc_alexnet/deploy.prototxt")
    assert name == "AlexNet"
    assert [layer.name for layer in layers[:6]] == ["data", "conv1", "relu1", "norm1", "pool1", "conv2"]
    conv2 = layers[5]
    assert (conv2.type, conv2.bottoms, conv2.tops) == ("Convolution", ["pool1"], ["conv2"])
    assert conv2.params["group"] == 2 and conv2.params["pad"] == [2] and conv2.params["kernel_size"] == [5]
    assert conv2.params["stride"] == [] and conv2.params["bias_term"] is True  # Caffe's defaults
    relu1 = layers[2]
    assert relu1.tops == relu1.bottoms == ["conv1"] and relu1.params["negative_slope"] == 0
    norm1 = layers[3]
    assert (norm1.params["local_size"], norm1.params["k"], norm1.params["norm_region"]) == (5, 1, "ACROSS_CHANNELS")
    assert layers[4].params["pool"] == "MAX" and layers[4].params["round_mode"] == "CEIL"
    assert layers[0].params["shape"][0]["dim"] == [10, 3, 227, 227]

    _, caffenet = caffe.parse_prototxt(weights_source / "bvlc_reference_caffenet/deploy.prototxt")
    assert [layer.name for layer in caffenet[1:5]] == ["conv1", "relu1", "pool1", "norm1"]
    _, googlenet = caffe.parse_prototxt(weights_source / "bvlc_googlenet/deploy.prototxt")
    assert {layer.type for layer in googlenet} == {"Input", "Convolution", "ReLU", "Pooling", "LRN",
                                                  "Concat", "InnerProduct", "Dropout", "Softmax"}


def _v1_prototxt(v2_text):
    """The legacy V1 text layout of a V2 prototxt: ``layers`` with enum types, input header."""
    enums = {"Convolution": "CONVOLUTION", "ReLU": "RELU", "LRN": "LRN", "Pooling": "POOLING",
             "InnerProduct": "INNER_PRODUCT", "Dropout": "DROPOUT", "Softmax": "SOFTMAX"}
    header = 'input: "data"\ninput_dim: 10\ninput_dim: 3\ninput_dim: 227\ninput_dim: 227\n'
    text = re.sub(r'layer \{\s*name: "data".*?\n\}\n', header, v2_text, count=1, flags=re.S)
    text = re.sub(r"^layer \{", "layers {", text, flags=re.M)
    text = re.sub(r"\n  param \{.*?\}", "\n  blobs_lr: 1", text, flags=re.S)  # V1 learning rates
    return re.sub(r'type: "(\w+)"', lambda m: f"type: {enums[m.group(1)]}", text)


def test_v1_prototxt_reads_like_v2(weights_source, tmp_path):
    v2_path = weights_source / "bvlc_alexnet/deploy.prototxt"
    v1_path = tmp_path / "deploy_v1.prototxt"
    v1_path.write_text(_v1_prototxt(v2_path.read_text()))
    assert "layers {" in v1_path.read_text() and "CONVOLUTION" in v1_path.read_text()
    _, v1 = caffe.parse_prototxt(v1_path)
    _, v2 = caffe.parse_prototxt(v2_path)
    assert v1 == v2


def test_load_converts_once_to_an_hdf5_cache(weights_source, weights_tmp, monkeypatch):
    proto = weights_source / "bvlc_alexnet/deploy.prototxt"
    model_file = weights_source / ALEXNET_V2
    first = caffe.load(proto, model_file, last_layer="pool5", progress=False)
    sha1 = hashlib.sha1(model_file.read_bytes()).hexdigest()
    assert first.sha1 == sha1 and _leftovers(weights_tmp) == [f"caffe-{sha1}.h5"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("the caffemodel was decoded again instead of read from the cache")

    monkeypatch.setattr(caffe, "read_caffemodel", no_decoding)
    second = caffe.load(proto, model_file, last_layer="pool5")
    assert list(second.blobs) == list(first.blobs)
    for name in first.blobs:
        for a, b in zip(first.blobs[name], second.blobs[name]):
            assert b.dtype == np.float32 and np.array_equal(a, b)
    assert [layer.name for layer in second.layers][-1] == "pool5"


def test_googlenet_layer_names_with_slashes_survive_the_cache(weights_source, weights_tmp):
    args = (weights_source / "bvlc_googlenet/deploy.prototxt", weights_source / "bvlc_googlenet/bvlc_googlenet.caffemodel")
    direct = caffe.read_caffemodel(args[1], progress=False)
    caffe.load(*args, progress=False)
    cached = caffe.load(*args).blobs
    assert list(cached) == list(direct) and "inception_5b/1x1" in cached
    assert np.array_equal(cached["loss3/classifier"][0], direct["loss3/classifier"][0])
    assert cached["loss3/classifier"][0].shape == (1000, 1024)


def test_mean_image_is_bgr_imagenet_mean(weights_source):
    mean = caffe.read_mean(weights_source / "imagenet/imagenet_mean.binaryproto")
    assert mean.shape == (3, 256, 256) and mean.dtype == np.float32
    # Caffe's published per-channel means of this image (B, G, R)
    np.testing.assert_allclose(mean.mean(axis=(1, 2)), [104.00699, 116.66877, 122.67892], atol=1e-3)


def test_rewritten_prototxt_for_other_readers(weights_source, tmp_path):
    text = caffe.rewrite_prototxt(weights_source / "bvlc_alexnet/deploy.prototxt", "pool5", full_padding=True)
    (tmp_path / "cut.prototxt").write_text(text)
    _, layers = caffe.parse_prototxt(tmp_path / "cut.prototxt")
    assert layers[-1].name == "pool5" and not any(layer.name.startswith("fc") for layer in layers)
    pads = {layer.name: (layer.params["pad"], layer.params["pad_h"], layer.params["pad_w"])
            for layer in layers if layer.type == "Convolution"}
    assert pads == {"conv1": ([], 10, 10), "conv2": ([], 4, 4), "conv3": ([], 2, 2),
                    "conv4": ([], 2, 2), "conv5": ([], 2, 2)}
    with pytest.raises(caffe.CaffeError, match="no layer 'fc9'"):
        caffe.rewrite_prototxt(weights_source / "bvlc_alexnet/deploy.prototxt", "fc9")


# -- damaged copies of the real files --------------------------------------------------
def test_truncated_caffemodel(weights_source, weights_tmp, tmp_path):
    damaged = tmp_path / "truncated.caffemodel"
    data = (weights_source / ALEXNET_V2).read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(caffe.CaffeError, match="truncated.caffemodel.*truncated or corrupt"):
        caffe.load(weights_source / "bvlc_alexnet/deploy.prototxt", damaged, last_layer="pool5")
    assert _leftovers(weights_tmp) == []


def test_corrupt_blob_header_names_the_layer(weights_source, weights_tmp, tmp_path):
    data = bytearray((weights_source / ALEXNET_V1).read_bytes())
    header = bytes([0x08, 96, 0x10, 3, 0x18, 11, 0x20, 11])  # conv1 blob: num 96, channels 3, 11 x 11
    at = data.index(header)
    data[at + 1] = 80  # num 96 -> 80: the blob's size no longer fits its values
    damaged = tmp_path / "corrupt.caffemodel"
    damaged.write_bytes(bytes(data))
    with pytest.raises(caffe.CaffeError, match=r"corrupt.caffemodel, layer 'conv1', blob 0: 34848 values"):
        caffe.load(weights_source / "bvlc_alexnet/deploy.prototxt", damaged, last_layer="pool5")
    assert _leftovers(weights_tmp) == []


def test_garbage_is_not_a_caffemodel(weights_source, weights_tmp, tmp_path):
    damaged = tmp_path / "garbage.caffemodel"
    damaged.write_bytes(b"\xff" * 64 + (weights_source / ALEXNET_V2).read_bytes()[64:4096])
    with pytest.raises(caffe.CaffeError, match="garbage.caffemodel"):
        caffe.load(weights_source / "bvlc_alexnet/deploy.prototxt", damaged)
    assert _leftovers(weights_tmp) == []


def test_missing_layer_is_named(weights_source, weights_tmp):
    with pytest.raises(caffe.CaffeError, match=r"layer 'conv1/7x7_s2': no weights"):
        caffe.load(weights_source / "bvlc_googlenet/deploy.prototxt", weights_source / ALEXNET_V2)
    # the AlexNet prototxt's fc layers have no weights in the conv-only files
    with pytest.raises(caffe.CaffeError, match=r"layer 'fc6': no weights"):
        caffe.load(weights_source / "bvlc_alexnet/deploy.prototxt", weights_source / ALEXNET_V2)
    assert _leftovers(weights_tmp) == []


def test_wrong_shape_is_named(weights_source, weights_tmp, tmp_path):
    text = (weights_source / "bvlc_alexnet/deploy.prototxt").read_text()
    wrong = tmp_path / "wrong.prototxt"
    wrong.write_text(text.replace("num_output: 384", "num_output: 192", 1))  # conv3
    with pytest.raises(caffe.CaffeError, match=r"layer 'conv3'.*num_output=192"):
        caffe.load(wrong, weights_source / ALEXNET_V2, last_layer="pool5")
    wrong.write_text(text.replace("kernel_size: 5", "kernel_size: 3", 1))  # conv2
    with pytest.raises(caffe.CaffeError, match=r"layer 'conv2'.*kernel \(3, 3\)"):
        caffe.load(wrong, weights_source / ALEXNET_V2, last_layer="pool5")
    assert _leftovers(weights_tmp) == []


def test_not_a_prototxt(weights_source):
    with pytest.raises(caffe.CaffeError, match="bvlc_alexnet_conv_q8.v2.caffemodel: not a Caffe prototxt"):
        caffe.parse_prototxt(weights_source / ALEXNET_V2)
