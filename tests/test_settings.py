"""Settings come from arguments, then HEADRACE_* variables, then a YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Settings, normalise_database_url


def test_defaults(monkeypatch):
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path(".headrace")
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith("/.headrace/headrace.db")
    assert settings.should_auto_migrate is True


def test_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HEADRACE_PORT", "9999")
    monkeypatch.setenv("HEADRACE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HEADRACE_DATABASE_URL", "postgresql://u:p@db/headrace")
    settings = Settings()
    assert settings.port == 9999 and settings.data_dir == tmp_path
    assert settings.resolved_database_url == "postgresql+asyncpg://u:p@db/headrace"
    assert settings.should_auto_migrate is False


def test_config_file_is_below_environment(monkeypatch, tmp_path):
    config = tmp_path / "headrace.yaml"
    config.write_text("port: 7000\nhost: 0.0.0.0\nlog_level: DEBUG\n")
    monkeypatch.setenv("HEADRACE_CONFIG", str(config))
    monkeypatch.setenv("HEADRACE_PORT", "7001")
    settings = Settings()
    assert settings.port == 7001  # the environment wins
    assert settings.host == "0.0.0.0" and settings.log_level == "DEBUG"


def test_arguments_win(monkeypatch):
    monkeypatch.setenv("HEADRACE_PORT", "7001")
    assert Settings(port=7002).port == 7002


def test_admin_key_is_kept_secret(monkeypatch):
    monkeypatch.setenv("HEADRACE_ADMIN_API_KEY", "pk_test_supersecret_0123456789")
    settings = Settings()
    assert "supersecret" not in repr(settings)
    assert settings.admin_api_key.get_secret_value() == "pk_test_supersecret_0123456789"


def test_admin_key_must_be_long_and_empty_means_unset(monkeypatch):
    monkeypatch.setenv("HEADRACE_ADMIN_API_KEY", "pk_test_short")
    with pytest.raises(ValueError, match="at least 20 characters"):
        Settings()
    monkeypatch.setenv("HEADRACE_ADMIN_API_KEY", "")
    assert Settings().admin_api_key is None


def test_database_url_drivers():
    assert normalise_database_url("postgres://h/d") == "postgresql+asyncpg://h/d"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_database_url("postgresql+asyncpg://h/d") == "postgresql+asyncpg://h/d"
