"""The embedded demonstration data: runs anywhere, downloads nothing, means nothing about human gaze.

* Images: twelve sample photographs shipped inside scikit-image (``skimage.data``), resized so their
  longer side is :data:`DEMO_SIDE` pixels (grey ones repeated to RGB).
* Fixations: sampled from a given log-density of every image, the *planted* model. The experiments
  plant a DeepGaze I readout of ``conv5`` (:func:`repro.planted.planted_log_densities`: a few features with
  known weights, a blur and a Gaussian centre bias), so the fixations follow a model of exactly the
  paper's form. Everything is a pure function of the planted model and the seed.

Its loader, :func:`load_demo`, makes the data instead of reading a folder: it takes the planted model as
an argument (this file knows images and fixations, not networks). Every figure made from it is labelled
as demonstration data (:data:`DEMO_LABEL`).
"""
import numpy as np

from .core import Dataset, Fixations, Stimuli, alternate_split

__all__ = ["DEMO_LABEL", "DEMO_SIDE", "DEMO_IMAGES", "demo_stimuli", "sample_fixations", "load_demo", "DATASET"]

#: What every figure of the demonstration data says about itself.
DEMO_LABEL = "DEMONSTRATION DATA (scikit-image photographs, fixations sampled from a planted model)"
#: Longer side of the demonstration images in pixels.
DEMO_SIDE = 256
#: scikit-image sample photographs used (``skimage.data`` function names; ``motorcycle`` is the
#: left view of ``stereo_motorcycle``).
DEMO_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field",
               "immunohistochemistry", "moon", "motorcycle", "page", "rocket", "text")


def demo_stimuli(side=DEMO_SIDE):
    """The demonstration photographs as :class:`repro.datasets.Stimuli` (ids = ``skimage.data`` names)."""
    from skimage import data, transform

    images = []
    for name in DEMO_IMAGES:
        image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        scale = side / max(image.shape[:2])
        shape = tuple(int(round(n * scale)) for n in image.shape[:2])
        resized = transform.resize(image[:, :, :3], shape, order=1, anti_aliasing=True, preserve_range=True)
        images.append(np.clip(np.round(resized), 0, 255).astype(np.uint8))
    return Stimuli(images=images, ids=DEMO_IMAGES)


def sample_fixations(log_densities, n_subjects, per_trial, seed=0):
    """Sample fixations from per-image log-densities.

    Parameters
    ----------
    log_densities : list of ndarray, each (H, W)
    n_subjects, per_trial : int
        Every subject makes ``per_trial`` fixations on every image.

    Returns
    -------
    repro.datasets.Fixations
        Positions uniformly jittered within the sampled pixel.
    """
    rng = np.random.RandomState(seed)
    columns = {name: [] for name in ("x", "y", "n", "subject", "index_in_trial")}
    for n, log_density in enumerate(log_densities):
        p = np.exp(log_density.astype(np.float64)).ravel()
        for subject in range(n_subjects):
            pixels = rng.choice(p.size, per_trial, p=p / p.sum())
            row, col = np.divmod(pixels, log_density.shape[1])
            columns["x"].append(col + rng.uniform(0, 1, per_trial))
            columns["y"].append(row + rng.uniform(0, 1, per_trial))
            columns["n"].append(np.full(per_trial, n))
            columns["subject"].append(np.full(per_trial, subject))
            columns["index_in_trial"].append(np.arange(per_trial))
    return Fixations(**{key: np.concatenate(values) for key, values in columns.items()})


def load_demo(folder=None, *, keep_first, log_densities, n_subjects=8, per_trial=12, seed=0):
    """Make the demonstration dataset: :func:`demo_stimuli` and fixations sampled from a planted model.

    The loader of :data:`DATASET`, called as the others are, with what the data are made from as keyword
    arguments (the experiments pass :func:`repro.planted.planted_log_densities` of their AlexNet).

    Parameters
    ----------
    folder : None
        The data have no folder: they are made, not read.
    keep_first : bool
        Ignored: no fixation is forced, every one is sampled from the planted density (``forced_start`` of
        :data:`DATASET` is False).
    log_densities : callable
        ``log_densities(stimuli) -> list of ndarray (H, W)``: the planted model, the natural log of each
        image's fixation density (``exp`` sums to one).
    n_subjects, per_trial : int
        Every subject makes ``per_trial`` fixations on every image.
    seed : int
        Of the sampling (:func:`sample_fixations`).

    Returns
    -------
    stimuli : Stimuli
    fixations : Fixations
    """
    if folder is not None:
        raise ValueError(f"the demonstration data are made, not read from a folder ({folder})")
    stimuli = demo_stimuli()
    return stimuli, sample_fixations(log_densities(stimuli), n_subjects, per_trial, seed=seed)


#: The demonstration data (:class:`repro.datasets.Dataset`): images sorted by id, alternately train and test.
DATASET = Dataset(name="demo", label=DEMO_LABEL, split=alternate_split, load=load_demo, forced_start=False)
