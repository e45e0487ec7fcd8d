"""Kafka topic names (contract §5, §6).

The names are fixed by the contract. ``CALLBACKS_TOPIC_PREFIX`` (empty by default)
puts a namespace in front of every one, so that tests and benchmarks sharing one
broker never read each other's records.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbacks.durations import format_duration

PROFILES = "callbacks.profiles"
OUTCOMES = "callbacks.outcomes"
DEAD = "callbacks.dead"
REDELIVER = "callbacks.redeliver"  # "deliver again now" requests from the delivery log API
ORDERING = "callbacks.ordering"  # per-message ordering state (docs/ordering.md)
SMS = "sms.send"
EMAIL = "email.send"
WHATSAPP = "whatsapp.events"
CHATBOT = "chatbot.events"

# Which source topic carries each event (contract §5).
EVENT_TOPIC: dict[str, str] = {
    "sms.send": SMS,
    "email.send": EMAIL,
    "whatsapp.status": WHATSAPP,
    "whatsapp.incoming": WHATSAPP,
    "whatsapp.template_status": WHATSAPP,
    "whatsapp.phone_quality": WHATSAPP,
    "chatbot.action": CHATBOT,
}


def retry_topic_name(delay_s: float) -> str:
    return f"callbacks.retry.{format_duration(delay_s)}"


@dataclass(frozen=True)
class Topics:
    """Every topic name, with the deployment's prefix applied."""

    prefix: str
    retry_delays_s: tuple[float, ...]

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def profiles(self) -> str:
        return self.name(PROFILES)

    @property
    def outcomes(self) -> str:
        return self.name(OUTCOMES)

    @property
    def dead(self) -> str:
        return self.name(DEAD)

    @property
    def redeliver(self) -> str:
        return self.name(REDELIVER)

    @property
    def ordering(self) -> str:
        return self.name(ORDERING)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.name(t) for t in (SMS, EMAIL, WHATSAPP, CHATBOT))

    def source_for(self, event: str) -> str:
        return self.name(EVENT_TOPIC[event])

    def retry_for(self, delay_s: float) -> str:
        return self.name(retry_topic_name(delay_s))

    @property
    def retries(self) -> tuple[str, ...]:
        """One topic per distinct delay, in schedule order."""
        return tuple(dict.fromkeys(self.retry_for(d) for d in self.retry_delays_s))

    def all(self) -> tuple[str, ...]:
        return (
            self.profiles,
            self.outcomes,
            self.dead,
            self.redeliver,
            self.ordering,
            *self.sources,
            *self.retries,
        )
