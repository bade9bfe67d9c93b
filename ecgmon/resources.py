"""Files the package carries: SQL migrations, analyst views and queries, ``prefect.yaml`` and the
Prefect Automations.

Read through :mod:`importlib.resources`, so they are found the same way in a checkout (editable
install) and in an installed wheel, whatever the working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_file(*parts: str) -> Path:
    """A file or folder shipped inside the ``ecgmon`` package, as a filesystem path.

    Alembic and Prefect read these by path, so the package must be installed on disk (any wheel
    installed by pip or uv is); a zipped import is refused with a clear error.
    """
    resource = files("ecgmon").joinpath(*parts)
    path = Path(str(resource))
    if not path.exists():
        raise FileNotFoundError(f"the ecgmon package has no {'/'.join(parts)} (is it installed?)")
    return path


def migrations_dir() -> Path:
    """Alembic's script location (``sql/migrations``)."""
    return package_file("sql", "migrations")


def views_dir() -> Path:
    """The analyst view definitions (``sql/views/v_*.sql``)."""
    return package_file("sql", "views")


def query_file(name: str) -> Path:
    """One of the analysts' example queries (``sql/queries/NAME``)."""
    return package_file("sql", "queries", name)


def prefect_file() -> Path:
    """The project's ``prefect.yaml`` (deployments, schedules, concurrency limits)."""
    return package_file("prefect.yaml")


def automation_files() -> list[Path]:
    """The Prefect Automation definitions (``automations/*.yaml``), sorted by name."""
    return sorted(package_file("automations").glob("*.yaml"))
