"""The README's code runs as written: the commands of "Your own images" and the snippet of "Using the library",
on the shared data, with small sizes. What differs from the README is listed in SUBSTITUTIONS, each with its reason."""
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

README = (ROOT / "README.md").read_text()

#: README text -> what runs here, and why: the commands of "Your own images" ...
COMMANDS = {
    # offline: the official 233 MB caffemodel cannot be fetched here; the shared BVLC AlexNet takes its place,
    # copied to where download puts it (tests_copy_alexnet, written by the test)
    "python -m repro download bvlc_alexnet": "python -c 'import tests_copy_alexnet'",
    # small sizes: 3 training and 3 test images instead of 350 + 350
    "python -m repro train ": "python -m repro train --images 3 ",
}
#: ... and the library snippet
SNIPPET = {
    "images=train)": "images=train[:3])",                  # small sizes: 3 training images
}


def blocks(section, language):
    """The ``language`` code blocks of the README section titled ``section``."""
    text = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def substituted(code, substitutions):
    for readme, here in substitutions.items():
        assert readme in code, f"the README no longer has {readme!r}: update SUBSTITUTIONS"
        code = code.replace(readme, here)
    return code


def test_the_readme_has_what_this_test_runs():
    assert len(blocks("Your own images", "bash")) == 1 and len(blocks("Using the library", "python")) == 1
    assert len(blocks("Your own images", "bash")[0].strip().splitlines()) <= 5


@pytest.fixture()
def osie_mirror(osie_dir, tmp_path):
    """A local HTTP server standing in for OSIE's official archive (``DEEPGAZE_MIRROR``)."""
    from test_download import Server
    server = Server()
    path = tmp_path / "master.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.write(osie_dir / "fixations.mat", "predicting-human-gaze-beyond-pixels-master/data/eye/fixations.mat")
        for image in sorted((osie_dir / "stimuli").glob("*.jpg")):
            archive.write(image, f"predicting-human-gaze-beyond-pixels-master/data/stimuli/{image.name}")
    server.files["/master.zip"] = path.read_bytes()
    yield server.url
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.slow
def test_your_own_images_then_the_library_snippet(osie_mirror, weights_source, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # what replaces 'download bvlc_alexnet': the shared files under the official names, where download puts them
    (work / "tests_copy_alexnet.py").write_text(
        "import shutil, os\n"
        f"folder = os.path.join(os.environ['DEEPGAZE_WEIGHTS'], 'bvlc_alexnet')\n"
        "os.makedirs(folder, exist_ok=True)\n"
        f"shutil.copy({str(weights_source / 'bvlc_alexnet' / 'deploy.prototxt')!r}, folder)\n"
        f"shutil.copy({str(weights_source / 'bvlc_alexnet' / 'bvlc_alexnet_conv_q8.v2.caffemodel')!r}, "
        "os.path.join(folder, 'bvlc_alexnet.caffemodel'))\n")
    from skimage import data
    Image.fromarray(data.astronaut()).save(work / "my_photo.jpg")
    env = {**os.environ, "DEEPGAZE_DATA": str(tmp_path / "data"), "DEEPGAZE_WEIGHTS": str(work / "weights"),
           "DEEPGAZE_MIRROR": osie_mirror, "PYTHONPATH": os.pathsep.join([str(work), str(ROOT)])}
    (tmp_path / "data").mkdir()
    commands = substituted(blocks("Your own images", "bash")[0], COMMANDS)
    for line in commands.splitlines():
        command = line.split("#")[0].strip().replace("python ", f"{sys.executable} ", 1)
        if command:
            done = subprocess.run(command, shell=True, cwd=work, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
    assert sorted(p.name for p in (tmp_path / "data" / "osie").iterdir()) == ["fixations.mat", "stimuli"]
    log_density = np.load(work / "predictions" / "my_photo_logdensity.npy")
    assert log_density.shape == data.astronaut().shape[:2]
    assert np.exp(log_density.astype(np.float64)).sum() == pytest.approx(1, abs=1e-4)
    assert (work / "predictions" / "my_photo_density.png").is_file()

    snippet = substituted(blocks("Using the library", "python")[0], SNIPPET)
    (work / "snippet.py").write_text(snippet)
    done = subprocess.run([sys.executable, "snippet.py"], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "deepgaze1_conv5.h5").is_file()


@pytest.mark.slow
def test_any_saliency_model_section_runs_as_written(osie_dir, tmp_path):
    """The section's script writes the contrast maps of all 700 OSIE images, and its command scores them end to end
    (the README's numbers are those of the committed run: experiments/results/osie/contrast_osie_evaluation.json)."""
    section = "Any saliency model, scored as the paper scores it"
    (script,), (commands,) = blocks(section, "python"), blocks(section, "bash")
    (tmp_path / "write_maps.py").write_text(script)
    env = {**os.environ, "DEEPGAZE_DATA": str(osie_dir.parent), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "write_maps.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "contrast").glob("*.npy"))) == 700
    for line in commands.strip().splitlines():
        done = subprocess.run(line.replace("python ", f"{sys.executable} ", 1), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
    result = json.loads((tmp_path / "evaluation" / "contrast_osie_evaluation.json").read_text())
    committed = json.loads((ROOT / "experiments" / "results" / "osie" / "contrast_osie_evaluation.json").read_text())
    for key in ("information_gain", "explained_information", "auc", "sauc"):
        assert result["scores"][key] == pytest.approx(committed["scores"][key], abs=2e-3), key
    assert (tmp_path / "evaluation" / "contrast_osie_evaluation.png").is_file()


def test_earlier_models_section_commands_are_the_command_lines():
    """Every command of the section parses as ``python -m repro`` reads it (its models exist, its options too)."""
    from repro.__main__ import build_parser
    (commands,) = blocks("Earlier saliency models, from their papers", "bash")
    lines = commands.strip().splitlines()
    assert [line.split()[3] for line in lines] == ["saliency", "saliency", "evaluate"]
    for line in lines:
        args = build_parser().parse_args(line.split()[3:])
        assert args.run is not None
