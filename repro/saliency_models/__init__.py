"""The earlier saliency models the paper compares DeepGaze I with, implemented from their papers.

One module per model, one interface (:class:`~repro.saliency_models.base.SaliencyModel`): ``model(image)`` takes an
``(H, W, 3)`` uint8 RGB image and returns an ``(H, W)`` float64 map, deterministic. Each module's docstring cites the
paper, gives the parameters used and lists every deviation from the paper. :data:`MODELS` holds them by name (with
the paper's parameters); :class:`~repro.saliency_models.cache.MapStore` caches a model's maps per image.

- :mod:`~repro.saliency_models.spectral_residual`: Hou & Zhang, CVPR 2007;
- :mod:`~repro.saliency_models.image_signature`: Hou, Harel & Koch, TPAMI 2012;
- :mod:`~repro.saliency_models.itti_koch`: Itti, Koch & Niebur, TPAMI 1998;
- :mod:`~repro.saliency_models.gbvs`: Harel, Koch & Perona (GBVS), NIPS 2006;
- :mod:`~repro.saliency_models.aim`: Bruce & Tsotsos (AIM), Journal of Vision 2009;
- :mod:`~repro.saliency_models.bms`: Boolean map saliency, Zhang & Sclaroff, ICCV 2013;
- :mod:`~repro.saliency_models.torralba`: Torralba, JOSA A 2003 (bottom-up part of Torralba et al., Psychological
  Review 2006).

Adding a model: a module beside these defining a subclass of ``SaliencyModel`` (``name``, ``citation``, parameters
through ``_set``, ``compute``), and an instance in :data:`MODELS` below. ``python -m repro saliency MODEL`` then
computes its maps.
"""
from .aim import AIM
from .base import SaliencyModel, check_image, downsample, upsample, working_size
from .bms import BMS
from .cache import MapStore
from .gbvs import GBVS
from .image_signature import ImageSignature
from .itti_koch import IttiKoch
from .spectral_residual import SpectralResidual
from .torralba import Torralba

__all__ = ["MODELS", "SaliencyModel", "MapStore", "SpectralResidual", "ImageSignature", "IttiKoch", "GBVS", "AIM",
           "BMS", "Torralba",
           "get_model", "check_image",
           "downsample", "upsample", "working_size"]

#: Every model by name, with its paper's parameters.
MODELS = {model.name: model for model in (SpectralResidual(), ImageSignature(), IttiKoch(), GBVS(), AIM(), BMS(),
                                          Torralba())}


def get_model(name, parameters=None):
    """The model ``name`` of :data:`MODELS`, with the paper's parameters or, given ``parameters`` ``{name: value}``
    (a model's :attr:`~repro.saliency_models.base.SaliencyModel.parameters`), with those; ValueError naming the known
    models otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown saliency model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name] if parameters is None else type(MODELS[name])(**parameters)
