"""Predicting fixation densities for new images with a trained DeepGaze I model.

``python -m repro predict IMAGE... --model MODEL.h5`` writes, for every image, the log-density
(``<name>_logdensity.npy``, shape ``(H, W)``, natural log, ``exp`` sums to one) and a heat-map
overlay (``<name>_overlay.png``). The network must be the one the model was trained with: the
model file records its caffemodel's SHA-1 and padding, and prediction refuses another one.
"""
from pathlib import Path

import numpy as np

from .datasets import load_image
from .features import FeatureExtractor, FeatureStore
from .model import DeepGazeI
from .network import Network
from .paths import atomic_path, data_dir, weights_dir


def find_network(folder=None):
    """``(prototxt, caffemodel)`` of a Caffe network folder.

    Parameters
    ----------
    folder : str or Path, optional
        A folder with ``deploy.prototxt`` and one ``*.caffemodel``. Default: ``weights/bvlc_alexnet``,
        else ``$DEEPGAZE_DATA/weights/bvlc_alexnet``.
    """
    candidates = [Path(folder)] if folder else [weights_dir() / "bvlc_alexnet"]
    if not folder and data_dir(required=False):
        candidates.append(data_dir() / "weights" / "bvlc_alexnet")
    for candidate in candidates:
        models = sorted(candidate.glob("*.caffemodel"))
        if (candidate / "deploy.prototxt").is_file() and models:
            return candidate / "deploy.prototxt", models[-1]
    raise FileNotFoundError(f"no deploy.prototxt + *.caffemodel in {', '.join(map(str, candidates))}; "
                            "run 'python -m repro download bvlc_alexnet' or pass --network FOLDER")


def extractor_for(model, prototxt, caffemodel):
    """The feature extractor a model was trained with, checked against the model's record.

    Raises ValueError if the model records no network (it could then run on any weights, silently wrong),
    if ``caffemodel`` is not the recorded one, or if a layer of the model is not in the network.
    """
    recorded = model.metadata.get("network")
    if not isinstance(recorded, dict) or "caffemodel_sha1" not in recorded:
        raise ValueError("the model records no network (metadata['network']), so nothing says which weights its "
                         "readout belongs to; train it again with the network recorded, e.g. "
                         "train_model(..., metadata={'network': extractor.metadata})")
    network = Network(prototxt, caffemodel, padding=recorded.get("padding", "full"), last_layer="pool5")
    if recorded["caffemodel_sha1"] != network.model.sha1:
        raise ValueError(f"{caffemodel} (sha1 {network.model.sha1}) is not the network the model was trained "
                         f"with ({recorded.get('caffemodel')}, sha1 {recorded['caffemodel_sha1']})")
    unknown = [layer for layer in model.layers if layer not in network.layer_names]
    if unknown:
        raise ValueError(f"the model reads layer(s) {unknown}, which {prototxt} (up to pool5) does not have; "
                         f"its layers: {', '.join(network.layer_names)}")
    mean = recorded.get("mean")
    kwargs = {"mean": mean} if isinstance(mean, list) else {}
    return FeatureExtractor(network, downsample=recorded.get("downsample", 2), **kwargs)


def overlay(image, log_density, strength=0.6):
    """The image with its fixation density as a heat map on top.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    log_density : ndarray, shape (H, W)

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
    """
    from matplotlib import colormaps

    density = np.exp(log_density - log_density.max())
    heat = colormaps["inferno"](density)[..., :3]
    weight = strength * density[..., None]
    return (255 * np.clip((1 - weight) * image / 255 + weight * heat, 0, 1)).astype(np.uint8)


def predict_files(images, model_path, network_folder=None, centerbias=None, out=".", progress=True):
    """Predict and write the log-density and an overlay of every image file.

    Parameters
    ----------
    images : list of str or Path
    model_path : str or Path
        A model saved by :meth:`repro.model.DeepGazeI.save`.
    network_folder : str or Path, optional
        See :func:`find_network`.
    centerbias : repro.centerbias.CenterBias, optional
        Its all-fixation estimate at each image's size is the prior; default uniform.
    out : str or Path
        Output folder.

    Returns
    -------
    list of Path
        The ``.npy`` files written.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    images = [Path(p) for p in images]
    by_name = {}
    for path in images:
        by_name.setdefault(path.stem, []).append(str(path))
    clashing = [paths for paths in by_name.values() if len(paths) > 1]
    if clashing:
        raise ValueError(f"{' and '.join(clashing[0])} would write the same output files "
                         f"({Path(clashing[0][0]).stem}_logdensity.npy); rename one or predict them into "
                         f"different --out folders")
    model = DeepGazeI.load(model_path)
    store = FeatureStore(extractor_for(model, *find_network(network_folder)))
    out = Path(out)
    written = []
    for path in tqdm(images, desc="predict", disable=not progress):
        image = load_image(path)
        prior = None if centerbias is None else centerbias.log_density(shape=image.shape[:2])
        log_density = model.log_density(image, store, prior)
        target = out / f"{path.stem}_logdensity.npy"
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.save(handle, log_density)
        with atomic_path(out / f"{path.stem}_overlay.png") as tmp:
            Image.fromarray(overlay(image, log_density)).save(tmp, format="PNG")
        written.append(target)
    return written
