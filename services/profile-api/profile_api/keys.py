"""Typed keys for what the application holds for its whole life.

Route modules (test calls, deliveries, reports …) read the pool, the producer and the
settings through these keys, never through module globals.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry

from profile_api.store import ProfileStore

SETTINGS = web.AppKey("settings", Settings)
REGISTRY = web.AppKey("registry", CollectorRegistry)
POOL = web.AppKey("pool", asyncpg.Pool)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
SECRET_BOX = web.AppKey("secret_box", SecretBox)

# Set by the authentication middleware on every /v1 request that carries a valid key.
ACCOUNT_ID = web.RequestKey("account_id", str)
PROFILE_STORE = web.AppKey("profile_store", ProfileStore)
