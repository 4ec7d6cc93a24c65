"""The paper's comparison (Figures 3 and 4): the earlier saliency models beside DeepGaze I, on our data.

Each earlier model (:data:`repro.saliency_models.MODELS`) is one job of the grid
(:func:`repro.experiments.grid.saliency_config`), run and cached like the readouts' folds:
:func:`score_saliency_model` computes its map of every image of the setup (kept per image as the cells the
postprocessing reads, :meth:`repro.saliency_models.MapStore.cells`), fits the postprocessing (pointwise nonlinearity,
centre bias, blur: :mod:`repro.postprocessing`) to all subjects' fixations on the training images and scores it on
the test images with :func:`repro.evaluation.evaluate_maps`: information gain and explained information (Figure 3),
AUC with the fitted centre bias and shuffled AUC without it, in pysaliency's and the MIT benchmark's definitions
(Figure 4).

The readout's bars come from the leave-one-subject-out folds on the training images; a converted model's
postprocessing (32 parameters) is fitted once to all training subjects. Both are scored on the test images only,
which no fit has seen.

:data:`PUBLISHED` holds the values the paper gives for other models, which the figures draw hatched beside ours.
"""
import time

from tqdm.auto import tqdm

from ..evaluation import evaluate_maps
from ..saliency_models import MODELS, MapStore, get_model
from .setups import load_setup

__all__ = ["PUBLISHED", "QUICK_MAXITER", "model_names", "dataset_cells", "score_saliency_model", "published_rows"]

#: The paper's numbers for the models it compares with (fractions): explained information on MIT1003 (Figure 3 and
#: its text; the other bars of that figure are not given as numbers) and the MIT benchmark's MIT300 AUC and shuffled
#: AUC as of September 2014 (Figure 4's caption: the three best models after DeepGaze I in each, and the centre bias).
PUBLISHED = (
    {"model": "eDN", "measure": "explained", "value": 0.34, "dataset": "MIT1003"},
    {"model": "DeepGaze I", "measure": "explained", "value": 0.56, "dataset": "MIT1003"},
    {"model": "AWS", "measure": "mit_sauc", "value": 0.6790, "dataset": "MIT300"},
    {"model": "RARE2012", "measure": "mit_sauc", "value": 0.6654, "dataset": "MIT300"},
    {"model": "AIM", "measure": "mit_sauc", "value": 0.6564, "dataset": "MIT300"},
    {"model": "DeepGaze I", "measure": "mit_sauc", "value": 0.7169, "dataset": "MIT300"},
    {"model": "BMS", "measure": "mit_auc", "value": 0.8257, "dataset": "MIT300"},
    {"model": "Mixture of Saliency Models", "measure": "mit_auc", "value": 0.8209, "dataset": "MIT300"},
    {"model": "eDN", "measure": "mit_auc", "value": 0.8192, "dataset": "MIT300"},
    {"model": "centre bias", "measure": "mit_auc", "value": 0.7831, "dataset": "MIT300"},
    {"model": "DeepGaze I", "measure": "mit_auc", "value": 0.8440, "dataset": "MIT300"},
)
#: Iterations of the postprocessing's fit in ``--quick`` runs (a smoke test); full runs fit to convergence.
QUICK_MAXITER = 50


def model_names(choice):
    """The earlier models a script's ``--models`` names: ``"all"`` (every model of :data:`MODELS`), ``"none"``, or
    names separated by commas (ValueError naming an unknown one)."""
    if choice == "all":
        return sorted(MODELS)
    if choice == "none":
        return []
    names = [name.strip() for name in choice.split(",") if name.strip()]
    for name in names:
        get_model(name)
    return names


def dataset_cells(setup, model, progress=False):
    """``model``'s map of every image of ``setup`` on the postprocessing's cells, cached per image: a list of
    :class:`repro.postprocessing.MapCells` in the stimuli's order."""
    store = MapStore(model)
    return [store.cells(setup.stimuli[n])
            for n in tqdm(range(len(setup.stimuli)), desc=model.name, unit="img", disable=not progress)]


def score_saliency_model(config):
    """Evaluate one earlier model as :func:`repro.experiments.grid.saliency_config` describes it.

    Returns
    -------
    dict
        ``scores`` (:data:`repro.evaluation.SCORES`, MIT benchmark's AUCs included), ``postprocessing`` (the fit,
        :meth:`repro.postprocessing.Postprocessing.to_json`), ``images`` and ``fixations`` (train and test counts),
        ``model``, ``citation``, ``parameters``; ``seconds``: the whole call, ``seconds_maps``: the maps (about 0
        when cached), ``seconds_fit``: fitting and scoring.
    """
    start = time.perf_counter()
    setup = load_setup(config["options"])
    model = get_model(config["saliency_model"], config["parameters"])
    cells = dataset_cells(setup, model)
    mapped = time.perf_counter()
    fit = {"maxiter": QUICK_MAXITER} if setup.options["quick"] else {}
    result = evaluate_maps(cells, setup.stimuli, setup.fixations, setup.train, setup.test, setup.center_bias,
                           setup.gold_standard, mit=config["mit"], progress=False, **fit)
    end = time.perf_counter()
    return {"scores": result["scores"], "postprocessing": result["postprocessing"].to_json(),
            "images": result["images"], "fixations": result["fixations"], "model": model.name,
            "citation": model.citation, "parameters": model.parameters,
            "seconds": end - start, "seconds_maps": mapped - start, "seconds_fit": end - mapped}


def published_rows(measure, key, scale=100.0):
    """Rows for a figure's table of the :data:`PUBLISHED` values of ``measure``: ``{'model', 'source': 'published
    (paper, <dataset>)', key: value * scale}``."""
    return [{"model": p["model"], "source": f"published (paper, {p['dataset']})", key: scale * p["value"]}
            for p in PUBLISHED if p["measure"] == measure]
