"""Packaging: pins agree between setup.py and environment.yml, CI runs the README's command."""
import re
import subprocess
import sys
from importlib import metadata

from conftest import ROOT


def _environment_yml_pins():
    text = (ROOT / "environment.yml").read_text()
    pins = re.findall(r"^\s*-\s+([A-Za-z0-9_.\-]+(?:\[[a-z,]+\])?==[^\s#]+)", text, flags=re.M)
    return {pin.lower() for pin in pins}


def _setup_py_pins():
    requires = metadata.requires("deepgaze1-repro")        # what pip actually installed from setup.py
    pins = set()
    for requirement in requires:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r'extra == "(\w+)"', marker)
        spec = spec.strip().replace(" ", "")
        if extra and extra.group(1) == "dask":
            spec = spec.replace("dask==", "dask[distributed]==")
        pins.add(spec.lower())
    return pins


def test_setup_py_and_environment_yml_pin_the_same_packages_and_versions():
    setup_pins, conda_pins = _setup_py_pins(), _environment_yml_pins()
    assert setup_pins, "no requirements found in the installed metadata"
    assert setup_pins == conda_pins, (f"only in setup.py: {sorted(setup_pins - conda_pins)}; "
                                      f"only in environment.yml: {sorted(conda_pins - setup_pins)}")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    command = ci[-1]
    assert "pytest" in command
    assert command in (ROOT / "README.md").read_text(), "the README's test command and .ci/run diverged"


def test_command_line_info_runs():
    out = subprocess.run([sys.executable, "-m", "repro", "info"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "theano 1.0.5" in out.stdout
    assert "floatX=float32" in out.stdout


def test_cited_documents_exist():
    """Every ``docs/*.md`` that a docstring, test or README names is in the repository."""
    sources = [*ROOT.glob("repro/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("experiments/*.py"), ROOT / "README.md"]
    cited = {name for path in sources for name in re.findall(r"docs/[\w-]+\.md", path.read_text())}
    assert {"docs/metrics.md", "docs/sfo.md"} <= cited
    assert not [name for name in sorted(cited) if not (ROOT / name).is_file()]


def test_every_module_declares_its_public_api():
    """Each module of the package has ``__all__``: every name in it exists, and every public function or class
    the module defines is in it (so ``__all__`` is the module's API, neither more nor less)."""
    import ast
    import importlib

    problems = []
    for path in sorted((ROOT / "repro").rglob("*.py")):
        if path.name in ("__main__.py",) or path.parent.name == "repro" and path.name == "__init__.py":
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        if declared is None:
            problems.append(f"{name}: no __all__")
            continue
        problems += [f"{name}: __all__ names {n!r}, which it does not have" for n in declared if not hasattr(module, n)]
        defined = [node.name for node in ast.parse(path.read_text()).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]
        problems += [f"{name}: public {n!r} missing from __all__" for n in defined if n not in declared]
    assert not problems, "\n".join(problems)


def test_every_relative_import_resolves():
    """Also the imports inside functions (which importing a module does not run) name modules that exist."""
    import ast
    import importlib.util

    missing = []
    for path in sorted((ROOT / "repro").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.module:
                    found = [(base, importlib.util.find_spec(base) is not None)]
                else:                             # from . import name: a submodule or a name of the package
                    found = [(f"{base}.{a.name}", importlib.util.find_spec(f"{base}.{a.name}") is not None
                              or hasattr(importlib.import_module(base), a.name)) for a in node.names]
                missing += [f"{path.relative_to(ROOT)}:{node.lineno}: {target}" for target, ok in found if not ok]
    assert not missing, "relative imports of modules that do not exist:\n" + "\n".join(missing)
