"""The committed results (experiments/results/): every table parses, CSV and JSON agree, the report and the
README's Results section quote the tables' numbers."""
import csv
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

from conftest import ROOT

RESULTS = ROOT / "experiments" / "results"
TABLES = sorted(RESULTS.glob("*/*.json"))


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "experiments" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a, b):
    """A CSV cell (text) and its JSON value are the same number or text."""
    if b is None:
        return a == ""
    if isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-12) or (math.isnan(float(a)) and math.isnan(b))
    return a == str(b)


def test_results_are_committed():
    assert TABLES, f"no published results under {RESULTS}"


@pytest.mark.parametrize("path", TABLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_table_parses_and_its_csv_and_png_match(path):
    table = json.loads(path.read_text())
    assert table["rows"] and {"options", "label", "network", "run"} <= set(table)
    assert table["run"]["wall_seconds"] > 0 and table["run"]["fits"] >= table["run"]["fits_computed"] >= 0
    for options in [table["options"], *table.get("datasets", {}).values()]:
        for key in ("data_dir", "weights"):                 # no machine's absolute paths in the repository
            assert options[key] is None or not Path(options[key]).is_absolute(), (key, options[key])
        assert options["quick"] is False
    with open(path.with_suffix(".csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(table["rows"])
    for row, expected in zip(rows, table["rows"]):
        assert set(row) == set(expected)
        assert all(_same(row[k], expected[k]) for k in row), (row, expected)
    png = path.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 1_000_000


def test_report_is_what_the_tables_give():
    report = _report()
    assert report.REPORT.read_text() == report.render(), "run python experiments/report.py"


def test_report_numbers_come_from_the_tables(tmp_path):
    """Change a table's number: the report changes with it (the report is not hard-coded)."""
    report = _report()
    fig4 = RESULTS / "osie" / "fig4_auc.json"
    if not fig4.is_file():
        pytest.skip("fig4_auc of OSIE not published")
    table = json.loads(fig4.read_text())
    model = next(r for r in table["rows"] if r["source"].startswith("this run") and "DeepGaze" in r["model"])
    model["auc"], model["mit_sauc"] = 12.3456, 23.4567
    (tmp_path / "osie").mkdir()
    (tmp_path / "osie" / "fig4_auc.json").write_text(json.dumps(table))
    for value in ("12.35 %", "23.46 %"):
        assert value in report.render(tmp_path) and value not in report.render()


def test_readme_results_quote_the_tables():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Results", 1)[1].split("\n## ", 1)[0]
    for measure, paper, osie, mit in _report().headline(RESULTS):
        line = next(line for line in section.splitlines() if line.startswith(f"| {measure} |"))
        assert re.sub(r"\s+", " ", line) == f"| {measure} | {paper} | {osie} | {mit} |"


def test_claim_e_and_the_models_table_come_from_figure_3_and_4s_tables(tmp_path):
    """Claim (e) compares DeepGaze I with the best earlier model of each dataset's Figure 3; the table of earlier
    models quotes Figures 3 and 4; a dataset not run says so."""
    report = _report()
    this, paper = "this run, test images", "published (paper, MIT1003)"
    fig3 = {"saliency_models": {"gbvs": {}, "aim": {}},
            "rows": [{"model": "aim", "source": this, "explained_percent": 21.25, "ig_bits": 0.4},
                     {"model": "gbvs", "source": this, "explained_percent": 30.5, "ig_bits": 0.6},
                     {"model": "DeepGaze I (AlexNet conv5)", "source": this, "explained_percent": 61.0, "ig_bits": 1.2},
                     {"model": "eDN", "source": paper, "explained_percent": 34.0, "ig_bits": None}]}
    fig4 = {"rows": [{"model": "gbvs", "source": this, "auc": 81.234, "sauc": 70.5, "mit_auc": 80.0, "mit_sauc": 69.0},
                     {"model": "AIM", "source": "published (paper, MIT300)", "auc": None, "sauc": None,
                      "mit_auc": None, "mit_sauc": 65.64}]}
    (tmp_path / "osie").mkdir()
    (tmp_path / "osie" / "fig3_information_gain.json").write_text(json.dumps(fig3))
    (tmp_path / "osie" / "fig4_auc.json").write_text(json.dumps(fig4))
    claim = report.claim_beats_earlier_models(tmp_path)
    assert "DeepGaze I 61.0 % vs the best of 2 earlier models, gbvs, 30.5 % (+100 % relative)" in claim["ours"]
    assert "MIT1003 subset: not run yet" in claim["ours"] and claim["verdict"] == "holds where run"
    table = "\n".join(report.earlier_models_table(tmp_path))
    assert "| gbvs | 30.5 % / not run | 81.23 % / 70.50 % | not run | 80.00 % / 69.00 % |" in table
    assert "| aim | 21.2 % / not run |" in table and "sAUC 65.64 % (MIT300)" in table
    fig3["rows"][2]["explained_percent"] = 31.0                     # DeepGaze I barely ahead: +2 %
    (tmp_path / "osie" / "fig3_information_gain.json").write_text(json.dumps(fig3))
    assert report.claim_beats_earlier_models(tmp_path)["verdict"] == "holds in part"
