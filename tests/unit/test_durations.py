import pytest
from callbacks.durations import Duration, format_duration, parse_duration, parse_schedule
from callbacks.settings import Settings
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("250ms", 0.25),
        (" 3s ", 3),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "-5s", "5 minutes"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (120, "2m"), (3600, "1h"), (0.2, "200ms"), (90, "90s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_default_schedule_and_retry_topics() -> None:
    settings = Settings()
    assert settings.retry_delays_s[:3] == (5, 30, 120)
    assert settings.topics.retries[0] == "callbacks.retry.5s"
    assert len(settings.topics.retries) == 9
    assert parse_schedule("1s,1s,2s") == (1, 1, 2)
    assert Settings(retry_schedule="1s,1s,2s").topics.retries == (
        "callbacks.retry.1s",
        "callbacks.retry.2s",
    )


def test_a_duration_is_its_seconds_and_keeps_its_spelling() -> None:
    timeout = Duration(" 250ms ")
    assert timeout == 0.25
    assert timeout * 4 == 1.0
    assert timeout.ms == 250
    assert str(timeout) == "250ms"
    assert repr(timeout) == "Duration('250ms')"
    assert Duration(timeout) is timeout


@pytest.mark.parametrize("value", ["10", "ten seconds", 10, 2.5, None])
def test_a_duration_is_written_with_a_unit(value: object) -> None:
    with pytest.raises(ValueError, match="use a number and a unit"):
        Duration(value)  # type: ignore[arg-type]


def test_settings_read_durations_from_the_environment_and_show_them_as_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLBACKS_DELIVERY_TIMEOUT", "1500ms")
    settings = Settings()
    assert settings.delivery_timeout == 1.5
    assert settings.masked()["delivery_timeout"] == "1500ms"
    assert settings.kafka_dead_retention.ms == 30 * 86_400_000


def test_a_bad_duration_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACKS_BREAKER_OPEN", "30")
    with pytest.raises(ValidationError, match="breaker_open"):
        Settings()


def test_a_copy_validates_its_updates_like_the_environment() -> None:
    settings = Settings().model_copy(update={"consumer_session_timeout": "2s"})
    assert isinstance(settings.consumer_session_timeout, Duration)
    assert settings.consumer_session_timeout == 2.0
    assert settings.revoke_wait == 1.0  # the grace (5s), capped at half the session
    with pytest.raises(ValidationError, match="recovery_lease"):
        Settings().model_copy(update={"recovery_lease": "0s"})
