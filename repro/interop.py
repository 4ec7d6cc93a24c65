"""DeepGaze I as a pysaliency model, so that it can be scored with pysaliency's own tools.

pysaliency (Kümmerer et al.) is the field's reference implementation of the measures; it is an optional
extra (``pip install -e ".[interop]"``: pysaliency 0.2.22 with a CPU build of torch)::

    import pysaliency
    from repro.interop import DeepGazeIModel, to_pysaliency

    model = DeepGazeIModel(DeepGazeI.load("weights/deepgaze1.h5"), store, centerbias=template)
    stimuli, fixations = to_pysaliency(our_stimuli, our_fixations)
    model.information_gain(stimuli, fixations, pysaliency.UniformModel())          # bit/fix
    pysaliency.DensitySaliencyMapModel(model).AUC(stimuli, fixations)              # uniform nonfixations

The log-density pysaliency sees is exactly :meth:`repro.model.ReadoutDensity.log_density_of` (tested:
information gain and AUC through pysaliency equal this package's on OSIE images).
"""
import tempfile
from pathlib import Path

import numpy as np

from .datasets import write_hdf5

__all__ = ["DeepGazeIModel", "to_pysaliency"]


def _pysaliency():
    try:
        import pysaliency
    except ImportError as err:
        raise ImportError("repro.interop needs pysaliency: pip install -e \".[interop]\" "
                          f"(pysaliency 0.2.22 with torch on the CPU) ({err})") from err
    return pysaliency


def to_pysaliency(stimuli, fixations):
    """``(pysaliency.Stimuli, pysaliency.Fixations)`` of this package's :class:`~repro.datasets.Stimuli` and
    :class:`~repro.datasets.Fixations` (through pysaliency's own HDF5 reader; the images are held in memory)."""
    pysaliency = _pysaliency()
    with tempfile.TemporaryDirectory() as folder:
        write_hdf5(fixations, Path(folder) / "fixations.hdf5")
        converted = pysaliency.read_hdf5(str(Path(folder) / "fixations.hdf5"))
    return pysaliency.Stimuli([np.asarray(image) for image in stimuli]), converted


def DeepGazeIModel(model, features, centerbias=None, **kwargs):
    """A ``pysaliency.Model`` whose log-density is ``model.density(features, centerbias).log_density_of(image)``.

    Parameters
    ----------
    model : repro.model.DeepGazeI
    features : repro.features.FeatureStore or FeatureExtractor
        The network the model was trained with.
    centerbias : repro.density.DensityModel, optional
        The prior, its ``log_density_of(image)`` (a :class:`repro.centerbias.CenterBiasTemplate` or
        :class:`~repro.centerbias.CenterBias`); default uniform.
    **kwargs
        Passed to ``pysaliency.Model`` (e.g. ``caching=False``).
    """
    pysaliency = _pysaliency()
    density = model.density(features, centerbias)

    class _DeepGazeI(pysaliency.Model):
        def _log_density(self, stimulus):
            image = np.asarray(stimulus)
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            return density.log_density_of(image.astype(np.uint8)).astype(np.float64)

    return _DeepGazeI(**kwargs)
