"""Settings: the public variable names, secrets that never show, and mistakes caught at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sophia_mcp.cli import main
from sophia_mcp.config import Settings, UnknownSetting, check_environment, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SOPHIA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no stray .env


def test_secrets_are_read_from_the_documented_variables_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPHIA_LINEAR_API_KEY", "lin_api_supersecret")
    monkeypatch.setenv("SOPHIA_GITHUB_TOKEN", "ghp_supersecret")
    settings = load_settings()
    assert settings.linear_api_key is not None
    assert settings.linear_api_key.get_secret_value() == "lin_api_supersecret"
    assert "supersecret" not in repr(settings) and "supersecret" not in str(settings.model_dump())


def test_list_settings_take_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPHIA_API_KEYS", "k1, k2")
    monkeypatch.setenv("SOPHIA_ALLOWED_HOSTS", '["sophia-mcp.prod.svc", "mcp.example.com"]')
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["k1", "k2"]
    assert settings.allowed_hosts == ["sophia-mcp.prod.svc", "mcp.example.com"]


def test_an_unknown_sophia_variable_is_refused_by_name() -> None:
    with pytest.raises(UnknownSetting, match="SOPHIA_LINEAR_APIKEY"):
        check_environment({"SOPHIA_LINEAR_APIKEY": "x", "PATH": "/bin"})


def test_gong_key_and_secret_come_together() -> None:
    with pytest.raises(ValidationError, match="SOPHIA_GONG_ACCESS_KEY_SECRET"):
        Settings(gong_access_key="k")  # type: ignore[arg-type]


def test_bad_configuration_stops_the_cli_with_the_variable_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOPHIA_CACHE_TTL", "soon")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "SOPHIA_CACHE_TTL" in err and "Traceback" not in err


def test_http_off_loopback_without_api_keys_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--transport", "http", "--host", "0.0.0.0"]) == 2
    assert "SOPHIA_API_KEYS" in capsys.readouterr().err


def test_a_misspelt_toolset_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--toolsets", "linaer"]) == 2
    assert "unknown toolset(s): linaer" in capsys.readouterr().err


def test_every_setting_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    undocumented = [
        f"SOPHIA_{name.upper()}"
        for name in Settings.model_fields
        if f"SOPHIA_{name.upper()}" not in readme and not name.endswith("_base_url")
    ]
    assert undocumented == [] and "SOPHIA_<PLATFORM>_BASE_URL" in readme
