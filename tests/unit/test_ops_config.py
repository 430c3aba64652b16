"""The operations settings: read from the environment, refused when they cannot be right."""

from __future__ import annotations

import pytest

from web.config import Config


def test_the_operations_settings_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CABINET_METRICS_TOKEN", "a" * 32)
    monkeypatch.setenv("ML_CABINET_METRICS_PORT", "9100")
    monkeypatch.setenv("ML_CABINET_LOG_FORMAT", "JSON")
    monkeypatch.setenv("ML_CABINET_SHUTDOWN_GRACE_SECONDS", "2.5")
    config = Config.from_env()
    assert (config.metrics_token, config.metrics_port, config.log_format,
            config.shutdown_grace_s) == ("a" * 32, 9100, "json", 2.5)


def test_by_default_metrics_are_not_served_and_logs_are_plain() -> None:
    config = Config()
    assert config.metrics_token is None and config.metrics_port is None
    assert config.log_format == "plain" and config.shutdown_grace_s == 10.0


@pytest.mark.parametrize(("setting", "message"), [
    ({"metrics_token": "short"}, "at least 16"),
    ({"log_format": "xml"}, "plain or json"),
    ({"shutdown_grace_s": -1.0}, "SHUTDOWN_GRACE"),
])
def test_a_setting_that_cannot_be_right_is_refused(setting: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**setting)  # type: ignore[arg-type]
