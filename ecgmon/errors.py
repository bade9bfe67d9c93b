"""Named errors a user can cause. The command line prints their message as one sentence."""

from __future__ import annotations


class EcgmonError(Exception):
    """Base of every error ecgmon raises on purpose; its message is meant for the user."""


class ConfigurationError(EcgmonError):
    """A setting or parameter is missing or invalid."""


class DataFormatError(EcgmonError):
    """An input file or table cannot be read as ECG beats; the message names file and field."""


class SourceNotFoundError(EcgmonError):
    """An input path, table or database does not exist."""


class NoChampionError(EcgmonError):
    """No model version is promoted to champion yet."""


class ModelNotFoundError(EcgmonError):
    """A model version or threshold version does not exist in the registry."""


class ArtifactIntegrityError(EcgmonError):
    """A model artifact does not match the sha256 recorded in the registry."""


class SchemaError(EcgmonError):
    """The database schema is missing or older than this code expects."""


class ArtifactOverwriteError(EcgmonError):
    """Writing a model artifact would replace a different file already in the model store."""
