"""The shared real datasets as fixtures: a test needing one is skipped, with the reason, when it
is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import missing_reason, shared_dataset


def _dataset(name: str) -> Path:
    folder = shared_dataset(name)
    if folder is None:
        pytest.skip(missing_reason(name))
    return folder


@pytest.fixture(scope="session")
def mitbih() -> Path:
    """../shared/data/mitbih (records/ and annotations/)."""
    return _dataset("mitbih")


@pytest.fixture(scope="session")
def ecg5000_dir() -> Path:
    """../shared/data/ecg5000 (the UCR TRAIN/TEST files)."""
    return _dataset("ecg5000")
