"""The demo's own pieces: the mix option, the receiver's signature check and failure
share, and the figures it prints."""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from callbacks.settings import Settings
from callbacks.signing import generate_secret, signature_header
from callbacks_dev.devstack.processes import free_port
from callbacks_dev.simulator.__main__ import build_parser, parse_mix
from callbacks_dev.simulator.provision import demo_profiles
from callbacks_dev.simulator.receiver import Arrival, DemoReceiver, start_receiver, verify_signature
from callbacks_dev.simulator.stats import DemoStats, percentile
from structlog.testing import capture_logs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sms=5,email=2,whatsapp=3", {"sms": 5.0, "email": 2.0, "whatsapp": 3.0}),
        (" chatbot=1 , sms=0 ", {"chatbot": 1.0}),
        ("whatsapp=0.5", {"whatsapp": 0.5}),
    ],
)
def test_parse_mix(text: str, expected: dict[str, float]) -> None:
    assert parse_mix(text) == expected


@pytest.mark.parametrize("text", ["", "fax=1", "sms", "sms=x", "sms=-1", "sms=0"])
def test_parse_mix_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_mix(text)


def test_defaults_match_make_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CALLBACKS_API_PORT", "CALLBACKS_ADMIN_TOKEN", "CALLBACKS_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser(Settings()).parse_args([])
    assert args.api_url == "http://127.0.0.1:8080"
    assert args.admin_token == "dev-admin-token"
    assert args.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [([], 0.5, None), ([5.0], 0.99, 5.0), ([3, 1, 2, 4], 0.5, 2), (list(range(1, 101)), 0.99, 99)],
)
def test_percentile(values: list[float], share: float, expected: float | None) -> None:
    assert percentile(values, share) == expected


def test_verify_signature_agrees_with_the_library_and_rotation() -> None:
    old, new = generate_secret(), generate_secret()
    body = '{"x": "नमस्ते"}'.encode()
    header = signature_header([new, old], "msg_1", 1700000000, body)
    assert verify_signature([new], "msg_1", "1700000000", body, header)
    assert verify_signature([old], "msg_1", "1700000000", body, header)
    assert not verify_signature([generate_secret()], "msg_1", "1700000000", body, header)
    assert not verify_signature([new], "msg_1", "1700000001", body, header)
    assert not verify_signature([new], "msg_1", "1700000000", body + b" ", header)


def test_demo_profiles_cover_every_event_once() -> None:
    events = [e for p in demo_profiles() for e in p.events]
    assert len(events) == len(set(events)) == 7
    methods = {p.hook: p.spec["method"] for p in demo_profiles()}
    assert methods == {
        "sms": "POST",
        "email": "POST",
        "whatsapp": "GET",
        "incoming": "POST",
        "chatbot": "PUT",
    }


def _arrival(event_id: str, status: int, at: float, attempt: int = 1) -> Arrival:
    return Arrival("sms", "POST", event_id, f"wh-{event_id}", attempt, status, True, at)


def test_stats_latency_retries_and_summary() -> None:
    stats = DemoStats()
    stats.produced("e1", "sms.send", 10.0, expect_skip=False)
    stats.produced("e2", "sms.send", 10.0, expect_skip=False)
    stats.produced("e3", "chatbot.action", 10.0, expect_skip=True)
    stats.arrived(_arrival("e1", 200, 10.02))
    stats.arrived(_arrival("e2", 503, 10.03))
    assert not stats.settled()
    stats.arrived(_arrival("e2", 200, 11.03, attempt=2))
    stats.arrived(_arrival("e2", 200, 12.0, attempt=3))  # a duplicate: counted once
    stats.outcome("d1", "e1", "delivered")
    stats.outcome("d2", "e2", "retrying")
    stats.outcome("d2", "e2", "delivered")
    assert stats.settled()
    row = stats.by_event["sms.send"]
    assert row.delivered == 2
    assert row.first_ms == pytest.approx([20.0, 30.0])
    assert row.delivered_ms == pytest.approx([20.0, 1030.0])
    assert stats.outcome_counts() == {"delivered": 2}
    line = stats.progress_line(3.0)
    assert "produced 3" in line
    assert "received 2" in line
    table = stats.summary_table()
    assert "chatbot.action" in table
    assert "503: 1" in table
    total = next(line for line in table.splitlines() if line.startswith("total"))
    assert total.split()[1:5] == ["3", "1", "2", "0"]


@pytest.fixture
async def receiver_url() -> AsyncIterator[tuple[str, DemoReceiver, list[Arrival]]]:
    arrivals: list[Arrival] = []
    receiver = DemoReceiver(arrivals.append, failure_share=0.5, seed=1)
    port = free_port()
    runner = await start_receiver(receiver, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", receiver, arrivals
    finally:
        await runner.cleanup()


async def test_receiver_checks_signatures_and_refuses_its_share(
    receiver_url: tuple[str, DemoReceiver, list[Arrival]],
) -> None:
    url, receiver, arrivals = receiver_url
    secret = generate_secret()
    receiver.secrets["chatbot"] = [secret]
    body = b'{"action": "delete"}'
    answers: dict[str, list[int]] = {}
    async with aiohttp.ClientSession() as session:
        for n in range(60):
            webhook_id = f"msg_{n}"
            for _attempt in range(3):
                ts = int(time.time())
                headers = {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": signature_header([secret], webhook_id, ts, body),
                    "X-Event-Id": f"ev{n}",
                }
                async with session.put(
                    f"{url}/hooks/chatbot/sess_1", data=body, headers=headers
                ) as r:
                    answers.setdefault(webhook_id, []).append(r.status)
        with capture_logs() as logs:
            async with session.delete(
                f"{url}/hooks/chatbot", headers={"webhook-id": "x", "webhook-signature": "v1,AAAA"}
            ) as r:
                assert r.status == 401
    assert [e for e in logs if e["event"] == "demo_bad_signature"] == [
        {
            "event": "demo_bad_signature",
            "log_level": "warning",
            "hook": "chatbot",
            "webhook_id": "x",
        }
    ]
    patterns = {tuple(a) for a in answers.values()}
    # Never refused, refused once then accepted, refused on every attempt.
    assert patterns <= {(200, 200, 200), (503, 200, 200), (503, 500, 503)}
    assert len(patterns) == 3
    assert arrivals[-1].method == "DELETE"
    assert not arrivals[-1].signature_ok
    assert all(a.signature_ok for a in arrivals[:-1])
    assert arrivals[0].event_id == "ev0"
