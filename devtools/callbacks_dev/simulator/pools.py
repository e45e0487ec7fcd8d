"""Value pools that make simulated traffic look like an Indian CPaaS's: numbers, sender
ids, operators and circles, names (Latin, Devanagari, emoji), and the raw codes the
upstream gateways really send. Pure; every draw comes from the caller's ``Random``.
"""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")

# DLT-registered sender headers (6 letters), as Indian operators require.
SMS_SENDERS = ("KLRHXA", "HDFCBK", "AMZNIN", "SWIGGY", "IRCTCS", "FLPKRT", "ZOMATO", "AIRTEL")

# (operator, mcc, mnc, circle): mobile country code 404/405 are India's.
OPERATORS = (
    ("Reliance Jio", "405", "857", "Maharashtra"),
    ("Reliance Jio", "405", "861", "Karnataka"),
    ("Bharti Airtel", "404", "10", "Delhi NCR"),
    ("Bharti Airtel", "404", "40", "Tamil Nadu"),
    ("Vodafone Idea", "404", "20", "Mumbai"),
    ("Vodafone Idea", "404", "46", "Kerala"),
    ("BSNL", "404", "71", "Uttar Pradesh (East)"),
    ("BSNL", "404", "34", "Haryana"),
)

# Kaleyra-style SMS message types and their share of traffic.
SMS_TYPES = (("TXN", 0.55), ("OTP", 0.3), ("MKT", 0.15))

# Final SMS failures: (status, SMPP stat, error code, description). The codes are the
# operator DLR "err" values a customer sees most: absent subscriber, DND, DLT scrubbing.
SMS_UNDELIVERED = (
    ("undelivered", "UNDELIV", "027", "Absent subscriber"),
    ("undelivered", "UNDELIV", "001", "Unknown subscriber"),
    ("undelivered", "UNDELIV", "036", "Handset memory capacity exceeded"),
    ("undelivered", "UNDELIV", "006", "Subscriber switched off"),
)
SMS_EXPIRED = (("expired", "EXPIRED", "069", "Validity period expired"),)
SMS_REJECTED = (
    ("rejected", "REJECTD", "062", "Number is in the DND registry"),
    ("rejected", "REJECTD", "1002", "DLT template mismatch"),
    ("rejected", "REJECTD", "1003", "Sender id not registered on DLT"),
)

SMS_TEXT_PRICE_INR = 0.12  # per unit, a typical transactional route price

FIRST_NAMES = ("Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Meera")
LAST_NAMES = ("Sharma", "Iyer", "Verma", "Reddy", "Nair", "Gupta", "Singh", "Menon")
# Profile names as people set them: Devanagari, Tamil, emoji included.
PROFILE_NAMES = (
    "Priya Sharma",
    "प्रिया शर्मा",
    "राहुल वर्मा",
    "Ananya 🌸",
    "Vikram 🙏",
    "அருண் குமார்",
    "Meera N",
    "Sneha ✨",
)

MAIL_DOMAINS = ("gmail.com", "yahoo.co.in", "rediffmail.com", "outlook.com", "example.in")
MAIL_FROM = ("alerts@shop.example.in", "no-reply@bank.example.in", "orders@food.example.in")
MAIL_SUBJECTS = (
    "Your order #{n} has shipped",
    "Your OTP for login is ready",
    "आपका ऑर्डर #{n} भेज दिया गया है",
    "Statement for account ending {n}",
    "🎉 Festive offers just for you",
)
MAIL_LINKS = (
    "https://shop.example.in/orders/{n}?utm_source=email",
    "https://shop.example.in/offers/diwali?utm_campaign=festive",
    "https://bank.example.in/statements/{n}",
)
USER_AGENTS = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/124.0 Mobile",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
)

# (smtp_status, bounce_type, smtp_response)
MAIL_BOUNCES = (
    (
        "5.1.1",
        "hard",
        "550 5.1.1 The email account that you tried to reach does not exist",
    ),
    ("5.1.2", "hard", "550 5.1.2 Host unknown: domain does not exist"),
    ("4.2.2", "soft", "452 4.2.2 The recipient's mailbox is full"),
    ("5.7.1", "blocked", "550 5.7.1 Message rejected due to content policy"),
)
MAIL_DEFERRALS = (
    ("4.7.0", "421 4.7.0 Try again later, closing connection"),
    ("4.4.2", "421 4.4.2 Connection timed out"),
)

# WhatsApp Cloud API error codes a business meets in practice: (code, title, message).
WHATSAPP_ERRORS = (
    (131026, "Message undeliverable", "Unable to deliver message: receiver is incapable"),
    (
        131047,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied",
    ),
    (
        131049,
        "Meta chose not to deliver",
        "This message was not delivered to maintain healthy ecosystem engagement",
    ),
    (131051, "Unsupported message type", "Message type is not currently supported"),
    (131053, "Media upload error", "Unable to upload the media used in the message"),
    (131000, "Something went wrong", "Message failed to send due to an unknown error"),
)
WHATSAPP_TEMPLATES = (
    ("order_shipped", "en"),
    ("otp_login", "en"),
    ("payment_reminder", "hi"),
    ("appointment_confirmation", "en_US"),
)
CONVERSATION_ORIGINS = ("marketing", "utility", "authentication", "service")
# INR per conversation, roughly Meta's India rate card.
CONVERSATION_PRICES = {
    "marketing": 0.7846,
    "utility": 0.115,
    "authentication": 0.115,
    "service": 0.0,
}
TEMPLATE_REJECTIONS = ("INVALID_FORMAT", "TAG_CONTENT_MISMATCH", "ABUSIVE_CONTENT", "SCAM")
MESSAGING_LIMITS = ("TIER_1K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")

INCOMING_TEXTS = (
    "Hi, where is my order?",
    "नमस्ते, मेरा ऑर्डर कब आएगा?",
    "Please call me back 🙏",
    'Payment done ✅ — ref "UPI/4312" & receipt attached',
    "मुझे रिफंड चाहिए",
    "Thanks! 😊👍",
    "Can I change the delivery address?\nNew: Flat 4B, Koramangala",
)
IMAGE_CAPTIONS = ("Damaged box 📦", "पैकेज की फोटो", "Screenshot of the payment", "")
PLACES = (
    (12.9352, 77.6245, "Forum Mall", "Hosur Rd, Koramangala, Bengaluru, Karnataka 560029"),
    (19.0760, 72.8777, "Chhatrapati Shivaji Terminus", "Fort, Mumbai, Maharashtra 400001"),
    (28.6139, 77.2090, "इंडिया गेट", "Rajpath, New Delhi, Delhi 110001"),
    (13.0827, 80.2707, "Marina Beach", "Chennai, Tamil Nadu 600005"),
)
INTERACTIVE_REPLIES = (
    ("track_order", "Track order 📦"),
    ("talk_to_agent", "Talk to an agent"),
    ("cancel", "रद्द करें"),
)
BUTTON_PAYLOADS = ("YES_CONFIRM", "NO_RESCHEDULE", "STOP_PROMOTIONS")
MEDIA_TYPES = {
    "image": ("image/jpeg", "IMG-20261124-WA0007.jpg"),
    "video": ("video/mp4", "VID-20261124-WA0002.mp4"),
    "audio": ("audio/ogg; codecs=opus", "PTT-20261124-WA0011.opus"),
    "document": ("application/pdf", "invoice_रसीद_4312.pdf"),
    "sticker": ("image/webp", "sticker.webp"),
}

CHATBOT_INTENTS = {
    "book_appointment": (
        "Book a table for 4 tomorrow at 8pm",
        {"party_size": 4, "date": "2026-11-25", "time": "20:00"},
    ),
    "order_status": ("मेरा ऑर्डर कहाँ है?", {"order_id": "OD4312"}),
    "cancel_order": ("Cancel my order please 🙁", {"order_id": "OD4312", "reason": "late"}),
    "change_address": (
        "Deliver to Flat 4B, Koramangala instead",
        {"address": {"line1": "Flat 4B", "city": "Bengaluru", "pin": "560034"}},
    ),
}


def pick(rng: random.Random, options: tuple[T, ...] | list[T]) -> T:
    return options[rng.randrange(len(options))]


def weighted(rng: random.Random, options: tuple[tuple[T, float], ...]) -> T:
    """One value of ``(value, weight)`` pairs."""
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights, k=1)[0]


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, length: int = 32) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def indian_mobile(rng: random.Random, *, plus: bool = True) -> str:
    """A plausible Indian mobile number: +91 and ten digits starting 6-9."""
    number = f"91{rng.choice('6789')}{rng.randrange(10**9):09d}"
    return f"+{number}" if plus else number


def person(rng: random.Random) -> tuple[str, str]:
    """(first name, last name) in Latin letters, e.g. for an email address."""
    return pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)


def wamid(rng: random.Random, number: str) -> str:
    """A WhatsApp message id in the Cloud API's shape: ``wamid.`` + base64 of a blob
    that embeds the recipient's number."""
    blob = b"\x18\x0c" + number.lstrip("+").encode() + b"\x15\x02\x00\x11\x18\x12"
    blob += hex_id(rng, 18).upper().encode() + b"\x00"
    return "wamid." + base64.b64encode(b"\x08" + blob).decode()


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, milliseconds, as the gateways write it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
