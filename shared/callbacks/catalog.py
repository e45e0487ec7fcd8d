"""The channel/event/variable catalog (contract §3 "Catalog", §5). Pure data and lookups.

One source of truth for what a profile may subscribe to and use: the validator checks
templates against it, the event parser enforces its required fields and value sets, and
``GET /v1/channels`` serves it, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from callbacks.encryption import CFB_IV_BYTES, GCM_IV_BYTES, GCM_TAG_BYTES, KEY_BYTES
from callbacks.topics import EVENT_TOPIC
from callbacks.variables import ENVELOPE_VARIABLES, EVENT_FIELDS, Variable, VarType

__all__ = [
    "CHANNELS",
    "ENCRYPTION_DOC",
    "ENVELOPE_VARIABLES",
    "EVENTS",
    "ChannelSpec",
    "EventSpec",
    "VarType",
    "Variable",
    "catalog_document",
    "encryption_document",
    "sample_values",
    "variables_for",
]


@dataclass(frozen=True)
class EventSpec:
    name: str  # e.g. "sms.send"
    channel: str  # e.g. "sms"
    topic: str  # source topic without prefix, e.g. "whatsapp.events"
    description: str
    fields: tuple[Variable, ...]  # the `data` fields


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    title: str  # "SMS", "Default — no channel", ...
    methods: tuple[str, ...]  # GET/POST everywhere; PUT/DELETE only on chatbot
    events: tuple[str, ...]


EVENTS: dict[str, EventSpec] = {
    name: EventSpec(
        name=name,
        channel=name.split(".", 1)[0],
        topic=EVENT_TOPIC[name],
        description=description,
        fields=fields,
    )
    for name, (description, fields) in EVENT_FIELDS.items()
}

_TITLES = {
    "default": "Default — any event, envelope variables only",
    "sms": "SMS",
    "email": "Email",
    "whatsapp": "WhatsApp",
    "chatbot": "Chatbot",
}
CHANNELS: dict[str, ChannelSpec] = {
    name: ChannelSpec(
        name=name,
        title=title,
        methods=("GET", "POST", "PUT", "DELETE") if name == "chatbot" else ("GET", "POST"),
        events=tuple(e.name for e in EVENTS.values() if e.channel == name),
    )
    for name, title in _TITLES.items()
}

_PYTHON_DECRYPT = '''\
# The receiver kit (receivers/, docs/receivers.md) does this and verifies the signatures
# (v1, v1a) in Python, Node.js, Go and Java; this is the shortest form.
import base64, json
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = base64.b64decode("<the profile's encryption key>")

def decrypt_value(alg: str, token: str) -> str:
    """scope "values": each inserted value is base64(iv || ciphertext || tag)."""
    raw = base64.b64decode(token)
    if alg.endswith("-gcm"):
        return AESGCM(KEY).decrypt(raw[:12], raw[12:], None).decode()
    decryptor = Cipher(algorithms.AES(KEY), CFB(raw[:16])).decryptor()
    return (decryptor.update(raw[16:]) + decryptor.finalize()).decode()

def decrypt_body(body: bytes) -> bytes:
    """scope "body": {"encrypted": b64(ciphertext || tag), "iv": b64(iv), "alg": ...}."""
    envelope = json.loads(body)
    data, iv = base64.b64decode(envelope["encrypted"]), base64.b64decode(envelope["iv"])
    if envelope["alg"].endswith("-gcm"):
        return AESGCM(KEY).decrypt(iv, data, None)
    decryptor = Cipher(algorithms.AES(KEY), CFB(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()
'''

ENCRYPTION_DOC: dict[str, Any] = {
    # Read from the cipher code itself, so the document cannot drift from what is sent.
    "algorithms": {
        name: {
            "key_bytes": size,
            "iv_bytes": GCM_IV_BYTES if name.endswith("-gcm") else CFB_IV_BYTES,
            "tag_bytes": GCM_TAG_BYTES if name.endswith("-gcm") else 0,
        }
        for name, size in KEY_BYTES.items()
    },
    "key": "base64 of 16, 24 or 32 random bytes; its length must match the algorithm",
    "scopes": {
        "values": {
            "description": (
                "Every inserted variable value (URL path and query, headers, body) is "
                "replaced by base64(iv || ciphertext || tag) of its UTF-8 text, then escaped "
                "for where it lands. A fresh random IV is used for every value. The "
                "template's own text stays in clear."
            ),
            "layout": "base64(iv || ciphertext || tag)",
        },
        "body": {
            "description": (
                "The whole rendered body is encrypted with a fresh random IV and sent as "
                "this JSON with Content-Type: application/json. The signature covers the "
                "JSON sent."
            ),
            "layout": {
                "encrypted": "base64(ciphertext || tag)",
                "iv": "base64(iv)",
                "alg": "aes-256-gcm",
            },
        },
    },
    "example_python": _PYTHON_DECRYPT,
    "receiver_kit": {
        "description": (
            "Verify (v1, v1a, the timestamp tolerance, several signatures) and decrypt "
            "(every algorithm, both scopes) with standard libraries; see docs/receivers.md."
        ),
        "files": {
            "python": "receivers/python/callback_receiver.py",
            "node": "receivers/node/callback-receiver.js",
            "go": "receivers/go/receiver.go",
            "java": "receivers/java/src/callbacks/receiver/CallbackReceiver.java",
        },
    },
}


def encryption_document() -> dict[str, Any]:
    """Both encryption layouts with a decryption example (contract §6)."""
    return ENCRYPTION_DOC


_ENVELOPE_BY_NAME = {v.name: v for v in ENVELOPE_VARIABLES}


@lru_cache(maxsize=256)
def _variables(channel: str, events: tuple[str, ...]) -> dict[str, Variable]:
    found: dict[str, Variable] = {}
    if channel != "default":
        for name in events:
            spec = EVENTS.get(name)
            if spec is not None and spec.channel == channel:
                found.update((v.name, v) for v in spec.fields)
    # Envelope variables win a name clash (email.send's `attempt`): their meaning is
    # the same on every channel.
    found.update(_ENVELOPE_BY_NAME)
    return found


def variables_for(channel: str, events: Sequence[str]) -> dict[str, Variable]:
    """Variables a profile of ``channel`` subscribed to ``events`` may use, by name.

    ``default`` (no events) gets the envelope variables only; otherwise the union of the
    events' data fields and the envelope variables.
    """
    return dict(_variables(channel, tuple(events)))


def sample_values(channel: str, events: Sequence[str]) -> dict[str, Any]:
    """Every variable of ``variables_for`` mapped to its example (used to validate templates)."""
    values = {name: v.example for name, v in _variables(channel, tuple(events)).items()}
    if channel in CHANNELS and channel != "default":
        values["channel"] = channel
    if events:
        values["event"] = events[0]
    return values


def _variable_doc(variable: Variable) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": variable.name,
        "description": variable.description,
        "example": variable.example,
        "type": variable.type,
        "required": variable.required,
    }
    if variable.allowed is not None:
        doc["allowed"] = list(variable.allowed)
    return doc


def catalog_document() -> list[dict[str, Any]]:
    """The body of ``GET /v1/channels`` (contract §3), including encryption layouts.

    Built fresh on each call (cheap) so a caller may change its copy."""
    envelope = [_variable_doc(v) for v in ENVELOPE_VARIABLES]
    return [
        {
            "channel": channel.name,
            "title": channel.title,
            "methods": list(channel.methods),
            "events": [
                {
                    "name": EVENTS[name].name,
                    "description": EVENTS[name].description,
                    "topic": EVENTS[name].topic,
                    "variables": [
                        _variable_doc(v) for v in _variables(channel.name, (name,)).values()
                    ],
                }
                for name in channel.events
            ],
            # What every event of the channel carries; all a `default` profile may use.
            "envelope_variables": envelope,
            "encryption": ENCRYPTION_DOC,
        }
        for channel in CHANNELS.values()
    ]
