"""One house: one import name, resources read from the package, every core module under contract."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import ecgmon
from ecgmon.resources import (
    automation_files,
    migrations_dir,
    prefect_file,
    query_file,
    views_dir,
)
from tests.shared_data import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
LAYER_PACKAGES = {"cli", "flows", "tasks", "models", "__main__"}
OLD_TOP_LEVEL_IMPORT = re.compile(r"^\s*(from|import)\s+(flows|tasks|models)(\.|\s)", re.MULTILINE)


def _core_modules() -> set[str]:
    names = {p.stem for p in Path(ecgmon.__file__).parent.glob("*.py")}
    names |= {p.parent.name for p in Path(ecgmon.__file__).parent.glob("*/__init__.py")}
    return {f"ecgmon.{n}" for n in names - LAYER_PACKAGES - {"__init__"}}


def _contract(name_start: str) -> dict:
    contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def test_resources_are_read_from_the_package(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert (migrations_dir() / "env.py").is_file()
    assert len(list((migrations_dir() / "versions").glob("0*.py"))) >= 3
    assert len(list(views_dir().glob("v_*.sql"))) >= 5
    assert query_file("daily_anomaly_rate.sql").read_text().strip()
    assert prefect_file().read_text() == (REPO_ROOT / "prefect.yaml").read_text()
    shipped = {path.name: path.read_text() for path in automation_files()}
    assert shipped == {p.name: p.read_text() for p in (REPO_ROOT / "automations").glob("*.yaml")}


def test_every_core_module_is_in_the_layers_and_the_no_tensorflow_contract():
    core = _core_modules()
    bottom = {m.strip() for m in _contract("Layers")["layers"][-1].split(":")}
    no_tf = set(_contract("The core imports")["source_modules"])
    assert core == bottom, core ^ bottom
    assert core == no_tf, core ^ no_tf


def test_nothing_imports_the_old_top_level_names():
    offenders = []
    for folder in ("ecgmon", "flows", "tasks", "models", "tests", "benchmarks"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if OLD_TOP_LEVEL_IMPORT.search(path.read_text()):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert not offenders


def test_the_wheel_holds_one_import_name_and_its_resources(tmp_path):
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("no uv to build the wheel with")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"ecgmon"}
    for needed in (
        "ecgmon/prefect.yaml",
        "ecgmon/sql/migrations/env.py",
        "ecgmon/flows/score.py",
        "ecgmon/automations/flow-run-failed.yaml",
    ):
        assert needed in names
    assert len([n for n in names if n.startswith("ecgmon/sql/views/")]) >= 5


def _declared_distributions() -> set[str]:
    names = (re.split(r"[\[<>=!~; ]", d)[0] for d in PYPROJECT["project"]["dependencies"])
    return {n.lower().replace("_", "-") for n in names}


def test_every_third_party_import_of_the_package_is_a_declared_dependency():
    """A wheel installed from pyproject alone must import: what package code imports is declared
    (pgpq was only in the lock file)."""
    import ast
    from importlib.metadata import packages_distributions

    declared, distributions, missing = _declared_distributions(), packages_distributions(), set()
    for folder in ("ecgmon", "models", "tasks", "flows"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in set(tops) - set(sys.stdlib_module_names) - {"ecgmon"}:
                    for dist in distributions.get(top, [top]):
                        if dist.lower().replace("_", "-") not in declared:
                            missing.add(f"{dist} ({path.relative_to(REPO_ROOT)})")
    assert not missing, sorted(missing)


def test_keras_is_pinned_past_its_safe_mode_bypasses():
    """keras < 3.11.3 loads a crafted archive's code even with safe_mode=True (CVE-2025-8747,
    -9906, -9905); < 3.14.0 extracts archive paths outside the target."""
    spec = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("keras"))
    floor = re.search(r">=\s*([\d.]+)", spec)
    assert floor, spec
    assert tuple(int(p) for p in floor.group(1).split(".")) >= (3, 14, 0), spec
