"""Settings from `SOPHIA_*` environment variables (and a `.env` file).

Secrets are `SecretStr`: their repr is `**********`, so they never reach logs, metrics or errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLATFORMS: tuple[str, ...] = ("linear", "asana", "notion", "hubspot", "gong", "slack", "github")

ENV_PREFIX = "SOPHIA_"


def default_store_url() -> str:
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{data_home / 'sophia-mcp' / 'store.sqlite3'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="forbid", frozen=True)

    # Linear
    linear_api_key: SecretStr | None = None
    linear_base_url: str = "https://api.linear.app"
    # GitHub (base URL may be GitHub Enterprise: https://ghe.example.com/api/v3)
    github_token: SecretStr | None = None
    github_org: str | None = None
    github_base_url: str = "https://api.github.com"
    # Slack (search.messages needs a user token)
    slack_bot_token: SecretStr | None = None
    slack_user_token: SecretStr | None = None
    slack_base_url: str = "https://slack.com/api"
    slack_workspace: str | None = None  # subdomain for archive links: <workspace>.slack.com
    # Asana
    asana_token: SecretStr | None = None
    asana_workspace: str | None = None
    asana_base_url: str = "https://app.asana.com/api/1.0"
    # Notion
    notion_token: SecretStr | None = None
    notion_base_url: str = "https://api.notion.com"
    # HubSpot
    hubspot_token: SecretStr | None = None
    hubspot_base_url: str = "https://api.hubapi.com"
    # Gong: no default host, every customer has its own (https://<company>.api.gong.io)
    gong_access_key: SecretStr | None = None
    gong_access_key_secret: SecretStr | None = None
    gong_base_url: str | None = None

    # Upstream HTTP behaviour
    http_timeout: float = Field(default=20.0, gt=0, le=300)
    http_max_retries: int = Field(default=3, ge=0, le=10)

    # Cache and store
    store_url: str = Field(default_factory=default_store_url)
    cache_ttl: float = Field(default=300.0, ge=0)
    cache_max_stale: float = Field(default=86_400.0, ge=0)
    cache_refresh_concurrency: int = Field(default=2, ge=1, le=32)  # background refreshes per platform at once
    audit_retention_days: float = Field(default=30.0, gt=0)

    # Inbound HTTP
    # NoDecode: pydantic-settings would parse these as JSON before the validator sees "k1,k2"
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("api_keys", "allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Comma-separated (`k1,k2`) or a JSON list (`["k1","k2"]`)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(
        "linear_base_url",
        "github_base_url",
        "slack_base_url",
        "asana_base_url",
        "notion_base_url",
        "hubspot_base_url",
        "gong_base_url",
    )
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _gong_pair(self) -> Settings:
        if (self.gong_access_key is None) != (self.gong_access_key_secret is None):
            raise ValueError(
                "SOPHIA_GONG_ACCESS_KEY and SOPHIA_GONG_ACCESS_KEY_SECRET must be set together"
            )
        return self


class UnknownSetting(ValueError):
    pass


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Refuse `SOPHIA_*` variables that no setting reads: a typo must not pass silently."""
    environ = dict(os.environ) if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    allowed_extra = {"SOPHIA_TEST_POSTGRES_URL"}
    unknown = sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known | allowed_extra)
    if unknown:
        raise UnknownSetting(
            f"unknown setting(s) {', '.join(unknown)}; known settings are listed in the README (Configuration)"
        )


def load_settings(**overrides: object) -> Settings:
    check_environment()
    return Settings(**overrides)  # type: ignore[arg-type]
