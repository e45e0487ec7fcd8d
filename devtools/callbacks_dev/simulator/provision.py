"""The demo's account and example profiles, created (or reused) through the public API.

The profiles show what users build: an SMS JSON POST, an email XML POST, a WhatsApp GET
with query parameters, a WhatsApp incoming-message JSON POST with nested objects, and a
chatbot PUT that skips incomplete payloads with ``required_options``. Each carries the
event id in a header so the demo can match arrivals to what it produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from callbacks_dev.simulator.receiver import EVENT_ID_HEADER

TITLE_PREFIX = "demo · "


class ProvisionError(RuntimeError):
    """The API refused a call; the message says which and why."""


@dataclass(frozen=True)
class DemoProfile:
    hook: str  # path name at the receiver
    title: str
    events: tuple[str, ...]
    spec: dict[str, Any]  # the API body, without url/title


@dataclass(frozen=True)
class Provisioned:
    account_id: str
    api_key: str
    profile_ids: dict[str, str]  # event name → profile id (what the gateway writes)
    secrets: dict[str, list[str]]  # hook → signing secrets
    created: int
    reused: int


def _json(doc: str) -> str:
    return doc.replace("\n", "").replace("    ", "")


def demo_profiles() -> tuple[DemoProfile, ...]:
    headers = {EVENT_ID_HEADER: "{{event_id}}"}
    return (
        DemoProfile(
            "sms",
            "SMS status (JSON POST)",
            ("sms.send",),
            {
                "channel": "sms",
                "method": "POST",
                "headers": headers,
                "query_params": {"src": "demo"},
                "body_type": "json",
                "body": _json(
                    """{"id": "{{message_id}}", "status": "{{status}}",
                    "dlr": "{{dlr_status}}", "code": "{{status_code}}", "to": "{{to}}",
                    "sender": "{{sender}}", "operator": "{{operator}}",
                    "circle": "{{circle}}", "parts": {{parts}}, "price": {{price}},
                    "error": "{{error_message}}", "ref": "{{ref}}",
                    "attempt": {{attempt}}, "custom": {{custom}}}"""
                ),
            },
        ),
        DemoProfile(
            "email",
            "Email events (XML POST)",
            ("email.send",),
            {
                "channel": "email",
                "method": "POST",
                "headers": headers,
                "body_type": "xml",
                "body": _json(
                    """<email id="{{message_id}}"><status>{{status}}</status>
                    <to>{{to}}</to><subject>{{subject}}</subject>
                    <smtp status="{{smtp_status}}">{{smtp_response}}</smtp>
                    <bounce>{{bounce_type}}</bounce><link>{{url}}</link>
                    <tags>{{tags}}</tags></email>"""
                ),
            },
        ),
        DemoProfile(
            "whatsapp",
            "WhatsApp status, templates and quality (GET)",
            ("whatsapp.status", "whatsapp.template_status", "whatsapp.phone_quality"),
            {
                "channel": "whatsapp",
                "method": "GET",
                "headers": headers,
                "query_params": {
                    "event": "{{event}}",
                    "id": "{{message_id}}",
                    "status": "{{status}}",
                    "to": "{{to}}",
                    "error": "{{error_code}}",
                    "template": "{{template_name}}",
                    "quality": "{{quality_event}}",
                    "limit": "{{current_limit}}",
                },
            },
        ),
        DemoProfile(
            "incoming",
            "WhatsApp incoming messages (JSON POST)",
            ("whatsapp.incoming",),
            {
                "channel": "whatsapp",
                "method": "POST",
                "headers": headers,
                "body_type": "json",
                "body": _json(
                    """{"from": "{{from}}", "name": "{{name}}", "type": "{{type}}",
                    "text": "{{body}}", "media": "{{media_url}}",
                    "location": {{location}}, "contacts": {{contacts}},
                    "reply": "{{reply_id}}", "received_at": "{{received_at}}"}"""
                ),
            },
        ),
        DemoProfile(
            "chatbot",
            "Chatbot actions (PUT, complete payloads only)",
            ("chatbot.action",),
            {
                "channel": "chatbot",
                "method": "PUT",
                "headers": headers,
                "body_type": "json",
                "body": _json(
                    """{"action": "{{action}}", "intent": "{{intent}}",
                    "text": "{{text}}", "slots": {{slots}}, "from": "{{from}}",
                    "via": "{{source_channel}}"}"""
                ),
                "required_options": {"enabled": True, "variables": ["intent"]},
            },
        ),
    )


class ApiClient:
    """The few profile-api calls the demo needs."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str) -> None:
        self.session = session
        self.api_url = api_url.rstrip("/")

    async def _call(
        self, method: str, path: str, *, headers: dict[str, str], body: Any = None
    ) -> Any:
        url = f"{self.api_url}{path}"
        async with self.session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            if response.status >= 300:
                raise ProvisionError(f"{method} {path} answered {response.status}: {text[:500]}")
            return await response.json() if text else None

    async def create_account(self, admin_token: str, name: str) -> dict[str, Any]:
        auth = {"Authorization": f"Bearer {admin_token}"}
        account: dict[str, Any] = await self._call(
            "POST", "/v1/accounts", headers=auth, body={"name": name}
        )
        return account

    async def provision(self, *, api_key: str, account_id: str, receiver_url: str) -> Provisioned:
        """Create the demo profiles, or update the ones a previous run left (found by
        title) to point at this run's receiver, rotating their secret to learn it."""
        key = {"api-key": api_key}
        listing = await self._call(
            "GET", "/v1/callback-profiles?title=demo%20%C2%B7&limit=100", headers=key
        )
        existing = {
            item["title"]: item["id"]
            for item in listing["items"]
            if item["title"].startswith(TITLE_PREFIX)
        }
        profile_ids: dict[str, str] = {}
        secrets: dict[str, list[str]] = {}
        created = reused = 0
        for demo in demo_profiles():
            title = TITLE_PREFIX + demo.title
            body = {
                **demo.spec,
                "title": title,
                "events": list(demo.events),
                "url": f"{receiver_url}/hooks/{demo.hook}",
                "enabled": True,
            }
            if demo.hook == "chatbot":
                body["url"] += "/{{session_id}}"
            if title in existing:
                profile_id = existing[title]
                await self._call(
                    "PUT", f"/v1/callback-profiles/{profile_id}", headers=key, body=body
                )
                saved = await self._call(
                    "POST", f"/v1/callback-profiles/{profile_id}/rotate-secret", headers=key
                )
                reused += 1
            else:
                saved = await self._call("POST", "/v1/callback-profiles", headers=key, body=body)
                profile_id = saved["id"]
                created += 1
            # During a rotation both secrets sign; the new one is all this run needs.
            secrets[demo.hook] = [saved["signing_secret"]]
            for event in demo.events:
                profile_ids[event] = profile_id
        return Provisioned(account_id, api_key, profile_ids, secrets, created, reused)
