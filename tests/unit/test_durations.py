import pytest
from callbacks.durations import format_duration, parse_duration, parse_schedule
from callbacks.settings import Settings


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
