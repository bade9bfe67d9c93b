"""One settings object for every command and flow (environment prefix ``ECGMON_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_var_dir() -> Path:
    """The project's ``var/`` folder: beside the current working directory."""
    return Path.cwd() / "var"


class Settings(BaseSettings):
    """Laptop defaults (SQLite and a model folder under ``var/``); override with ``ECGMON_*``."""

    model_config = SettingsConfigDict(env_prefix="ECGMON_", extra="ignore")

    database_url: SecretStr = Field(
        default_factory=lambda: SecretStr(f"sqlite:///{default_var_dir() / 'ecgmon.db'}"),
        description="SQLAlchemy URL of the results database; may hold a password.",
    )
    model_store: str = Field(
        default_factory=lambda: str(default_var_dir() / "models"),
        description="Folder or fsspec URL (s3://...) where model artifacts live.",
    )
    artifact_dir: str = Field(
        default_factory=lambda: str(default_var_dir() / "artifacts"),
        description="Folder where runs save pictures (PNG) their Prefect artifacts show.",
    )
    architecture: str | None = Field(
        default=None, description="Architecture trained when none is given (None: the best one)."
    )
    epochs: int = Field(default=60, ge=1)
    seed: int = 0
    threshold_method: str | None = Field(default=None, description="None: the measured default.")
    batch_size: int = Field(default=50_000, ge=1, description="Beats per read/score/write batch.")
    alert_urls: SecretStr | None = Field(
        default=None, description="Apprise URLs, comma or space separated; secret."
    )
    alert_block: str | None = Field(
        default=None, description="Name of a Prefect notification block."
    )
    anomaly_rate_bound: float = Field(default=0.5, ge=0, le=1)
    auto_baseline_minutes: float = Field(
        default=5.0,
        ge=0,
        description="A WFDB patient without a baseline gets one from its first minutes (0: off).",
    )
    drift_bound: float = Field(default=0.25, ge=0, description="Population stability index bound.")
    db_lookback_seconds: float = Field(
        default=0.0, ge=0, description="Re-read window for late rows."
    )

    @field_validator("model_store")
    @classmethod
    def _expand_store(cls, value: str) -> str:
        return value if "://" in value else str(Path(value).expanduser())

    @property
    def database_url_plain(self) -> str:
        """The database URL with its secret, for building engines only; never log it."""
        return self.database_url.get_secret_value()

    def alert_url_list(self) -> list[str]:
        """The configured Apprise URLs (secret values)."""
        if self.alert_urls is None:
            return []
        raw = self.alert_urls.get_secret_value().replace(",", " ")
        return [url for url in raw.split() if url]


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with overrides (flow parameters, CLI flags) on top."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)
