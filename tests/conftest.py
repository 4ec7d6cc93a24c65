"""Shared fixtures: where the real data is, and skipping cleanly where it is not."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def find_data_dir():
    """``DEEPGAZE_DATA`` if set, else ``../shared/data`` beside the checkout, else None."""
    candidates = [os.environ.get("DEEPGAZE_DATA"), ROOT.parent / "shared" / "data"]
    for candidate in filter(None, candidates):
        if Path(candidate).is_dir():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def data_dir():
    """The real-data directory; skips the test when there is none."""
    found = find_data_dir()
    if found is None:
        pytest.skip("real data not found: set DEEPGAZE_DATA or place it at ../shared/data")
    return found


@pytest.fixture(scope="session")
def osie_dir(data_dir):
    """The OSIE dataset folder; skips when it is missing."""
    folder = data_dir / "osie"
    if not (folder / "fixations.mat").is_file():
        pytest.skip(f"OSIE not found under {data_dir} (expected osie/fixations.mat)")
    return folder


@pytest.fixture(scope="session")
def weights_source(data_dir):
    """The folder of original Caffe files (``<data>/weights``); skips when missing."""
    folder = data_dir / "weights"
    if not folder.is_dir():
        pytest.skip(f"Caffe weights not found under {data_dir} (expected weights/)")
    return folder


@pytest.fixture(scope="session")
def alexnet_full(weights_source, tmp_path_factory):
    """The paper's AlexNet trunk (conv1 ... pool5) in ``full`` padding, real BVLC weights (V2 file).

    Converted weights go to a temporary folder, not the checkout.
    """
    from repro.network import Network
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPGAZE_WEIGHTS", str(tmp_path_factory.mktemp("weights")))
        folder = weights_source / "bvlc_alexnet"
        return Network(folder / "deploy.prototxt", folder / "bvlc_alexnet_conv_q8.v2.caffemodel",
                       padding="full", last_layer="pool5")
