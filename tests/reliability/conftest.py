"""Reliability tests call ``ecgmon.cli.main.main``, whose ``logging.basicConfig`` binds the captured
stderr; restore the root logger's handlers so nothing writes to a closed capture later."""

import logging

import pytest


@pytest.fixture(autouse=True)
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
