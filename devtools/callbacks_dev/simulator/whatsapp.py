"""WhatsApp as the Cloud API reports it: message statuses (``sent`` → ``delivered`` →
``read``, or ``failed`` with Meta's real error codes), incoming messages of every type,
template review results and phone-number quality changes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from callbacks_dev.simulator import pools
from callbacks_dev.simulator.steps import DataStep

STATUS = "whatsapp.status"
INCOMING = "whatsapp.incoming"
TEMPLATE_STATUS = "whatsapp.template_status"
PHONE_QUALITY = "whatsapp.phone_quality"

STATUS_SHARES = (("read", 0.6), ("delivered", 0.3), ("failed", 0.08), ("not_sent", 0.02))
INCOMING_TYPES = (
    ("text", 0.5),
    ("image", 0.12),
    ("location", 0.07),
    ("contacts", 0.05),
    ("interactive", 0.1),
    ("button", 0.05),
    ("document", 0.03),
    ("audio", 0.03),
    ("video", 0.02),
    ("sticker", 0.01),
    ("reaction", 0.02),
)

# One business line per simulator run is enough for a demo; its ids look like Meta's.
BUSINESS_NUMBER = "918045678901"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


def status_lifecycle(
    rng: random.Random, start: datetime, *, outcome: str | None = None
) -> list[DataStep]:
    """Every status of one outgoing template message, in order."""
    final = outcome or pools.weighted(rng, STATUS_SHARES)
    to = pools.indian_mobile(rng, plus=False)
    message_id = pools.wamid(rng, to)
    origin = pools.weighted(rng, (("utility", 0.5), ("marketing", 0.3), ("authentication", 0.2)))
    template, language = pools.pick(rng, pools.WHATSAPP_TEMPLATES)
    base: dict[str, Any] = {
        "message_id": message_id,
        "to": to,
        "business_number": BUSINESS_NUMBER,
        "phone_number_id": PHONE_NUMBER_ID,
        "waba_id": WABA_ID,
        "template_name": template,
        "template_language": language,
        "custom": {"campaign": f"cmp_{rng.randrange(1000):03d}"},
    }
    if final in ("failed", "not_sent"):
        code, title, message = pools.pick(rng, pools.WHATSAPP_ERRORS)
        data = {
            **base,
            "status": final,
            "error_code": str(code),
            "error_title": title,
            "error_message": message,
        }
        return [DataStep(0.0, STATUS, message_id, data)]
    billing = {
        "conversation_id": pools.hex_id(rng),
        "conversation_origin": origin,
        "conversation_expires_at": pools.iso(start + timedelta(hours=24)),
        "pricing_billable": True,
        "pricing_category": origin,
        "price": pools.CONVERSATION_PRICES[origin],
        "currency": "INR",
    }
    steps = [DataStep(0.0, STATUS, message_id, {**base, **billing, "status": "sent"})]
    offset = rng.uniform(0.5, 4.0)
    steps.append(DataStep(offset, STATUS, message_id, {**base, **billing, "status": "delivered"}))
    if final == "read":
        offset += rng.uniform(5.0, 900.0)
        steps.append(DataStep(offset, STATUS, message_id, {**base, **billing, "status": "read"}))
    return steps


def incoming(rng: random.Random, start: datetime, *, kind: str | None = None) -> DataStep:
    """One message a customer sent to the business number."""
    kind = kind or pools.weighted(rng, INCOMING_TYPES)
    sender = pools.indian_mobile(rng, plus=False)
    message_id = pools.wamid(rng, sender)
    data: dict[str, Any] = {
        "message_id": message_id,
        "from": sender,
        "name": pools.pick(rng, pools.PROFILE_NAMES),
        "business_number": BUSINESS_NUMBER,
        "type": kind,
        "received_at": pools.iso(start),
    }
    if kind == "text":
        data["body"] = pools.pick(rng, pools.INCOMING_TEXTS)
    elif kind in pools.MEDIA_TYPES:
        mime, filename = pools.MEDIA_TYPES[kind]
        media_id = rng.randrange(10**15, 10**16)
        data["media_url"] = (
            f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={media_id}"
        )
        data["mime_type"] = mime
        if kind == "document":
            data["filename"] = filename
        if kind in ("image", "video", "document"):
            data["body"] = pools.pick(rng, pools.IMAGE_CAPTIONS)
    elif kind == "location":
        latitude, longitude, name, address = pools.pick(rng, pools.PLACES)
        data["location"] = {
            "latitude": latitude,
            "longitude": longitude,
            "name": name,
            "address": address,
        }
    elif kind == "contacts":
        first, last = pools.person(rng)
        # The Cloud API's contact card: a structured name, typed phones and emails.
        first, last = pools.person(rng)
        phone = pools.indian_mobile(rng)
        data["contacts"] = [
            {
                "name": {
                    "formatted_name": f"{first} {last}",
                    "first_name": first,
                    "last_name": last,
                },
                "phones": [{"phone": phone, "type": "CELL", "wa_id": phone.lstrip("+")}],
                "emails": [{"email": f"{first.lower()}@example.in", "type": "WORK"}],
            }
        ]
    elif kind == "interactive":
        data["reply_id"], data["reply_title"] = pools.pick(rng, pools.INTERACTIVE_REPLIES)
        data["context_message_id"] = pools.wamid(rng, BUSINESS_NUMBER)
    elif kind == "button":
        data["button_payload"] = pools.pick(rng, pools.BUTTON_PAYLOADS)
        data["body"] = data["button_payload"].replace("_", " ").title()
        data["context_message_id"] = pools.wamid(rng, BUSINESS_NUMBER)
    elif kind == "reaction":
        data["body"] = pools.pick(rng, ("👍", "❤️", "🙏", "😂"))
        data["context_message_id"] = pools.wamid(rng, BUSINESS_NUMBER)
    return DataStep(0.0, INCOMING, message_id, data)


def template_status(rng: random.Random, *, status: str | None = None) -> DataStep:
    """A template review result, keyed by the template id."""
    status = status or pools.weighted(
        rng, (("approved", 0.7), ("rejected", 0.2), ("paused", 0.07), ("disabled", 0.03))
    )
    template, language = pools.pick(rng, pools.WHATSAPP_TEMPLATES)
    template_id = str(rng.randrange(10**15, 10**16))
    data: dict[str, Any] = {
        "template_id": template_id,
        "template_name": template,
        "template_language": language,
        "status": status,
    }
    if status == "rejected":
        data["reason"] = pools.pick(rng, pools.TEMPLATE_REJECTIONS)
    elif status in ("paused", "disabled"):
        data["reason"] = "Low quality rating from customer feedback"
    return DataStep(0.0, TEMPLATE_STATUS, template_id, data)


def phone_quality(rng: random.Random, *, flagged: bool | None = None) -> DataStep:
    """A quality change of the business number, keyed by that number."""
    flagged = rng.random() < 0.5 if flagged is None else flagged
    data = {
        "business_number": BUSINESS_NUMBER,
        "quality_event": "flagged" if flagged else "unflagged",
        "current_limit": pools.pick(rng, pools.MESSAGING_LIMITS),
    }
    return DataStep(0.0, PHONE_QUALITY, BUSINESS_NUMBER, data)
