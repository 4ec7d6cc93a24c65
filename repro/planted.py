"""What the demonstration data are made from: AlexNet, and a DeepGaze I readout of it with planted weights.

* Network: the real pretrained AlexNet when its weights are found, otherwise :func:`random_alexnet`,
  the same architecture (the paper's 15 layers) with deterministic random weights.
* Planted model: a DeepGaze I readout of ``conv5`` (:func:`planted_model`: a few features with known
  weights, a blur and a Gaussian centre bias), whose log-densities (:func:`planted_log_densities`) the
  demonstration fixations are sampled from by :func:`repro.datasets.demo.load_demo`.

Everything is a pure function of the network and the seed.
"""
import hashlib

import numpy as np

from . import caffe
from .features import feature_scales
from .model import DeepGazeI
from .network import Network
from .paths import cache_dir

__all__ = ["alexnet_prototxt", "random_alexnet", "gaussian_centerbias", "planted_model", "planted_log_densities"]

# The Caffe AlexNet trunk (conv1 ... pool5): name, type, parameters. Architecture facts of
# Krizhevsky et al. (2012) as Caffe publishes them (BVLC's ``bvlc_alexnet``).
_ALEXNET = [
    ("conv1", "Convolution", dict(num_output=96, kernel_size=11, stride=4)),
    ("relu1", "ReLU", {}),
    ("norm1", "LRN", dict(local_size=5, alpha=1e-4, beta=0.75)),
    ("pool1", "Pooling", dict(pool="MAX", kernel_size=3, stride=2)),
    ("conv2", "Convolution", dict(num_output=256, pad=2, kernel_size=5, group=2)),
    ("relu2", "ReLU", {}),
    ("norm2", "LRN", dict(local_size=5, alpha=1e-4, beta=0.75)),
    ("pool2", "Pooling", dict(pool="MAX", kernel_size=3, stride=2)),
    ("conv3", "Convolution", dict(num_output=384, pad=1, kernel_size=3)),
    ("relu3", "ReLU", {}),
    ("conv4", "Convolution", dict(num_output=384, pad=1, kernel_size=3, group=2)),
    ("relu4", "ReLU", {}),
    ("conv5", "Convolution", dict(num_output=256, pad=1, kernel_size=3, group=2)),
    ("relu5", "ReLU", {}),
    ("pool5", "Pooling", dict(pool="MAX", kernel_size=3, stride=2)),
]


def alexnet_prototxt():
    """The AlexNet trunk as ``deploy.prototxt`` text (V2 layout, input 1 x 3 x 227 x 227)."""
    lines = ['name: "AlexNet"', 'layer { name: "data" type: "Input" top: "data" '
             'input_param { shape { dim: 1 dim: 3 dim: 227 dim: 227 } } }']
    bottom = "data"
    for name, kind, params in _ALEXNET:
        top = bottom if kind == "ReLU" else name           # Caffe's in-place ReLUs
        body = " ".join(f"{key}: {value}" for key, value in params.items())
        extra = f" {caffe.PARAM_FIELDS[kind]} {{ {body} }}" if params else ""
        lines.append(f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}"{extra} }}')
        bottom = top
    return "\n".join(lines) + "\n"


def random_alexnet(seed=0, padding="full"):
    """AlexNet's architecture with deterministic random weights (for machines without the real ones).

    Convolution weights are Gaussian with variance ``2 / fan_in`` (He et al. 2015), biases zero;
    they depend only on ``seed``.

    Returns
    -------
    repro.network.Network
        Its ``model.sha1`` names the seed, so feature caches never mix it with real weights.
    """
    text = alexnet_prototxt()
    sha1 = hashlib.sha1(f"random AlexNet, He-normal weights, seed {seed}\n{text}".encode()).hexdigest()
    prototxt = cache_dir("demo") / f"alexnet-random-{sha1[:12]}.prototxt"
    if not prototxt.is_file():
        prototxt.write_text(text)
    name, layers = caffe.parse_prototxt(prototxt)
    rng = np.random.RandomState(seed)
    blobs, channels = {}, 3
    for layer in layers:
        if layer.type == "Convolution":
            out, group, (k,) = layer.params["num_output"], layer.params["group"], layer.params["kernel_size"]
            fan_in = channels // group * k * k
            weights = rng.randn(out, channels // group, k, k) * np.sqrt(2.0 / fan_in)
            blobs[layer.name] = [weights.astype(np.float32), np.zeros(out, np.float32)]
            channels = out
    model = caffe.CaffeModel(name, layers, blobs, prototxt, None, sha1)
    return Network.from_model(model, padding=padding)


def gaussian_centerbias(shape, width=0.3):
    """Log of an isotropic Gaussian around the image centre (std ``width`` x the longer side), normalised."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    scale = width * max(shape)
    log_p = -0.5 * (((rows - (shape[0] - 1) / 2) / scale) ** 2 + ((cols - (shape[1] - 1) / 2) / scale) ** 2)
    return (log_p - np.log(np.exp(log_p).sum())).astype(np.float32)


def planted_model(features, shapes, geometry, layer="conv5", n_active=8, seed=0):
    """The planted readout: ``n_active`` features of ``layer`` with weights of random sign.

    Parameters
    ----------
    features : list of ndarray, each (C, h, w)
        ``layer``'s features of every image (for the unit-std scales).
    shapes : list of (H, W)
        The images' sizes.
    geometry : repro.resampling.Geometry
        Where the units of ``layer`` and of the grid sit (:meth:`repro.features.FeatureExtractor.geometry`).

    Returns
    -------
    repro.model.DeepGazeI
    """
    rng = np.random.RandomState(seed)
    channels = features[0].shape[0]
    w = np.zeros(channels)
    active = rng.choice(channels, n_active, replace=False)
    w[active] = rng.choice([-1.0, 1.0], n_active, p=[0.25, 0.75]) * rng.uniform(0.5, 1.5, n_active)
    scales = feature_scales(((shape, [f]) for shape, f in zip(shapes, features)), geometry)
    return DeepGazeI([layer], [channels], scales, geometry, w=w, sigma=4.0, alpha=1.0,
                     metadata={"planted": True, "seed": seed})


def planted_log_densities(stimuli, store, seed=0):
    """The log-densities of the planted conv5 readout (:func:`planted_model`) on ``stimuli``, each image's
    :func:`gaussian_centerbias` its prior.

    What :func:`repro.datasets.demo.load_demo` samples the demonstration fixations from (its
    ``log_densities``, with ``store`` and ``seed`` bound).

    Parameters
    ----------
    stimuli : repro.datasets.Stimuli
    store : repro.features.FeatureStore
        Features of the network the planted model reads (real or :func:`random_alexnet`); its maps are
        placed at their receptive-field centres, as the experiments fit them.
    seed : int
        Of the planted weights.

    Returns
    -------
    list of ndarray, each (H, W)
    """
    features = [store.features(image, ["conv5"])[0] for image in stimuli]
    planted = planted_model(features, [image.shape[:2] for image in stimuli], store.extractor.geometry(["conv5"]),
                            seed=seed)
    return [planted.log_density_from_features([f], gaussian_centerbias(image.shape[:2]))
            for f, image in zip(features, stimuli)]
