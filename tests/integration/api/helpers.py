"""Helpers of the profile-api tests: a client for a running app, the app started on a free
loopback port, and a valid SMS profile body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from profile_api.app import create_app

ADMIN = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass
class Api:
    """A client for one running app; ``key`` is sent as ``api-key`` unless overridden."""

    base: str
    session: aiohttp.ClientSession
    key: str | None = None
    account_id: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(self.extra_headers)
        api_key = key if key is not None else self.key
        if api_key is not None:
            sent["api-key"] = api_key
        sent.update(headers or {})
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=sent, params=params
        ) as response:
            raw = await response.read()
            body: Any = None
            if raw and response.content_type.endswith("json"):
                body = await response.json(content_type=None)
            elif raw:
                body = raw.decode()
            return Reply(response.status, body, response.headers)

    async def new_account(self, name: str = "test") -> Api:
        reply = await self.call("POST", "/v1/accounts", json={"name": name}, headers=ADMIN)
        assert reply.status == 201, reply.body
        return Api(self.base, self.session, reply.body["api_key"], reply.body["id"])


async def start_app(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def sms_profile(**overrides: Any) -> dict[str, Any]:
    """A valid SMS profile body (contract §3 example), with ``overrides`` applied."""
    body: dict[str, Any] = {
        "title": "Order SMS status",
        "channel": "sms",
        "events": ["sms.send"],
        "method": "POST",
        "url": "https://example.com/hooks/sms?src=kaleyra",
        "headers": {"X-Api-Key": "abc", "Content-Type": "application/json"},
        "query_params": {"msg": "{{message_id}}"},
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}"}',
        "encryption": {
            "enabled": True,
            "algorithm": "aes-256-gcm",
            "scope": "values",
            "key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        },
        "authentication": {"type": "basic", "username": "u", "password": "p"},
        "required_options": {"enabled": True, "variables": ["message_id", "status"]},
        "enabled": True,
    }
    body.update(overrides)
    return body
