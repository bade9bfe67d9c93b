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
