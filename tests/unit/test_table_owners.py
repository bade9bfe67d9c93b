"""Each table has one owner (a module of ecgmon/storage/, or models/registry/ for the model
registry's tables); no other module names it in SQL.

The project's Python source (ecgmon/, flows/, tasks/, models/; links resolved, each real file read
once; sql/ holds the schema and is exempt) is parsed, and every string literal outside docstrings
is checked two ways:
- SQL text: a keyword that takes a table (FROM, JOIN, INTO, UPDATE, TABLE, COPY, ...) followed by
  one of the tables, in plain strings and in the literal parts of f-strings;
- a bare table name (``table(engine, "scores")``, ``copy_columns(conn, "anomalies", ...)``,
  ``TABLE = "pipeline_runs"``): any literal that is exactly a table's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.shared_data import REPO_ROOT

STORAGE = "ecgmon/storage"
OWNERS = {
    "pipeline_runs": f"{STORAGE}/runs.py",
    "scores": f"{STORAGE}/batches.py",
    "anomalies": f"{STORAGE}/batches.py",
    "ingest_watermarks": f"{STORAGE}/watermarks.py",
    "rejected_records": f"{STORAGE}/quarantine.py",
    "model_versions": "models/registry/",
    "thresholds": "models/registry/",
}
#: modules that may name a table, never query it: the engine reflects the tables by name
NAMES_ONLY = {f"{STORAGE}/engine.py"}
SCANNED = ("ecgmon", "flows", "tasks", "models")
EXEMPT = ("sql",)  # migrations and views are the schema
_TAKES_TABLE = r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|COPY|EXISTS|REFERENCES|TRUNCATE)"
SQL = re.compile(
    rf"{_TAKES_TABLE}\s+(?:ONLY\s+)?(?:\w+\.)?[\"`]?({'|'.join(OWNERS)})\b", re.IGNORECASE
)


def source_files(root: Path = REPO_ROOT) -> dict[Path, str]:
    """{real path: path relative to the repository} of every Python file scanned, each once."""
    files: dict[Path, str] = {}
    exempt = [(root / name).resolve() for name in EXEMPT]
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            real = path.resolve()
            if real not in files and not any(real.is_relative_to(e) for e in exempt):
                files[real] = real.relative_to(root.resolve()).as_posix()
    return files


def _not_whole_strings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (bare expression statements) or pieces of
    f-strings (each f-string is checked as a whole)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))
        elif isinstance(node, ast.JoinedStr):
            skip |= {id(part) for part in ast.walk(node) if isinstance(part, ast.Constant)}
    return skip


def table_uses(source: str) -> set[tuple[str, str, int]]:
    """{(table, "sql" | "name", line)} of the tables a module's string literals use."""
    tree = ast.parse(source)
    skip = _not_whole_strings(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = " {} ".join(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            text = node.value
            if text.strip() in OWNERS:
                found.add((text.strip(), "name", node.lineno))
        else:
            continue
        found |= {(m.group(1).lower(), "sql", node.lineno) for m in SQL.finditer(text)}
    return found


def owns(owner: str, name: str) -> bool:
    """Whether module ``name`` is ``owner``, or lies in it when ``owner`` is a folder."""
    return name == owner or (owner.endswith("/") and name.startswith(owner))


def misplaced(files: dict[Path, str]) -> dict[str, list[str]]:
    """{module: ["table (kind, line N)", ...]} of table uses outside the table's owner."""
    out: dict[str, list[str]] = {}
    for real, name in files.items():
        for table, kind, line in sorted(table_uses(real.read_text())):
            if owns(OWNERS[table], name) or (kind == "name" and name in NAMES_ONLY):
                continue
            out.setdefault(name, []).append(f"{table} ({kind}, line {line})")
    return out


def test_no_table_is_used_outside_its_owner() -> None:
    stray = misplaced(source_files())
    assert not stray, f"SQL or table access outside the tables' owners: {stray}"


def test_every_owner_uses_its_tables() -> None:
    files = source_files()
    by_name = {name: real for real, name in files.items()}
    for table, owner in OWNERS.items():
        modules = [real for name, real in by_name.items() if owns(owner, name)]
        assert modules, f"{owner} is missing"
        used = {t for real in modules for t, _k, _l in table_uses(real.read_text())}
        assert table in used, owner


def test_linked_folders_are_read_once() -> None:
    names = list(source_files().values())
    assert len(names) == len(set(names))
    assert "tasks/scoring.py" in names and "ecgmon/tasks/scoring.py" not in names
    assert not any(name.startswith("sql/") for name in names)


@pytest.mark.parametrize(
    "code",
    [
        'rows = table(engine, "scores")',
        'conn.execute(sa.text("select count(*) from anomalies where run_id = :r"))',
        'q = f"""INSERT INTO ingest_watermarks ({columns}) VALUES ({marks})"""',
        'q = "DELETE FROM " + "rejected_records"',
        'q = "update  pipeline_runs set status = :s"',
        'copy_columns(conn, "anomalies", names, columns)',
        'q = "SELECT * FROM public.\\"scores\\""',
        'TABLE = "pipeline_runs"',
    ],
)
def test_the_check_sees_table_uses(code: str) -> None:
    assert table_uses(code)


@pytest.mark.parametrize(
    "code",
    [
        'def f():\n    """Read from scores the rows of a run (a docstring)."""',
        'n_anomalies = summary["n_anomalies"]',
        'raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ")',
        'q = f"select * from {scores}"',
        'message = "the anomaly scores of the run"',
        'q = "select * from v_flagged_beats where run_id = :r"',
        'q = "select * from stage_scores"',
    ],
)
def test_the_check_ignores_prose_and_other_tables(code: str) -> None:
    assert not table_uses(code)
