"""The variables of every event (contract §5): the envelope every event carries and each
event's ``data`` fields, with descriptions, examples, types and value sets.

This is the dictionary the catalog is built from: ``callbacks.catalog`` groups it into
channels and events, answers "which variables may this profile use", and serves it as
``GET /v1/channels``; the event parser enforces its required fields and value sets.

Examples are realistic for Kaleyra's traffic (Indian numbers, DLT sender ids, SMPP
codes, WhatsApp ``wamid`` ids) because users copy them into their test calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

VarType = Literal["string", "number", "integer", "boolean", "object", "list", "datetime"]


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    example: Any
    type: VarType = "string"
    required: bool = False  # required in the event's data (bold in contract §5)
    allowed: tuple[str, ...] | None = None  # the value set, where the contract gives one


def _v(
    name: str,
    example: Any,
    description: str,
    type_: VarType = "string",
    *,
    required: bool = False,
    allowed: tuple[str, ...] | None = None,
) -> Variable:
    return Variable(name, description, example, type_, required, allowed)


ENVELOPE_VARIABLES: tuple[Variable, ...] = (
    _v(
        "event_id",
        "c0f1a7e2-5b1d-4c3e-9f7a-2d8e6b4a1c90",
        "Unique per status change; the idempotency key of the event.",
        required=True,
    ),
    _v("event", "sms.send", "The event name, e.g. sms.send or whatsapp.status.", required=True),
    _v(
        "occurred_at",
        "2026-11-24T10:00:00Z",
        "When the status changed (ISO 8601).",
        "datetime",
        required=True,
    ),
    _v("account_id", "3f2b8c1e-7d4a-4e5b-8c6d-9a0b1c2d3e4f", "Your account id.", required=True),
    _v(
        "callback_profile_id",
        "8d6e4f2a-1b3c-4d5e-9f8a-7b6c5d4e3f2a",
        "The callback profile chosen when the message was sent.",
        required=True,
    ),
    _v("ref", "order_123", "Your own reference from the send request, echoed back."),
    _v("ref1", "customer_42", "Your second reference from the send request, if any."),
    _v("ref2", "campaign_diwali", "Your third reference from the send request, if any."),
    _v(
        "channel",
        "sms",
        "The channel of the event: sms, email, whatsapp or chatbot.",
        required=True,
    ),
    _v(
        "attempt",
        1,
        "The delivery attempt of this callback: 1 on the first try, 2 on the first retry.",
        "integer",
        required=True,
    ),
    _v("is_test", False, "True only in the Test call of the API.", "boolean", required=True),
)

SMS_STATUSES = (
    "accepted", "sent", "delivered", "undelivered", "expired", "rejected", "failed", "unknown",
)  # fmt: skip
DLR_STATUSES = (
    "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "ACCEPTD", "UNKNOWN", "ENROUTE",
)  # fmt: skip
EMAIL_STATUSES = (
    "processed", "delivered", "deferred", "bounced", "dropped", "opened", "clicked", "spam",
    "unsubscribed",
)  # fmt: skip
WHATSAPP_INCOMING_TYPES = (
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction",
)  # fmt: skip

SMS_SEND: tuple[Variable, ...] = (
    _v(
        "message_id",
        "ee8a1c3b4d5e6f708192a3b4c5d6e30d:1",
        "Message id (one per SMS part).",
        required=True,
    ),
    _v("batch_id", "b7c2d9e4-0a1f-4b3c-8d5e-6f7a8b9c0d1e", "Batch of a bulk send request."),
    _v("to", "+919876543210", "Recipient number in E.164.", required=True),
    _v("sender", "KLRHXA", "Sender id (DLT header) the SMS went out with."),
    _v("status", "delivered", "Normalized status.", required=True, allowed=SMS_STATUSES),
    _v("dlr_status", "DELIVRD", "Raw SMPP delivery receipt stat.", allowed=DLR_STATUSES),
    _v("status_code", "000", "Operator status code; 000 on success."),
    _v("status_description", "Delivered to handset", "Human-readable status."),
    _v("error_code", "001", "Operator error code (SMPP err) when not delivered."),
    _v("error_message", "Absent subscriber", "Error text when not delivered."),
    _v("submitted_at", "2026-11-24T09:59:58Z", "When the SMS was submitted.", "datetime"),
    _v("sent_at", "2026-11-24T09:59:59Z", "When it was handed to the operator.", "datetime"),
    _v("done_at", "2026-11-24T10:00:00Z", "When the final receipt arrived.", "datetime"),
    _v("units", 1, "Billable units.", "integer"),
    _v("part", 1, "This part's number in a multi-part SMS.", "integer"),
    _v("parts", 1, "Number of parts of the message.", "integer"),
    _v("price", 0.12, "Price charged for this message.", "number"),
    _v("currency", "INR", "Currency of the price (ISO 4217)."),
    _v("mcc", "404", "Mobile country code of the recipient's network."),
    _v("mnc", "45", "Mobile network code of the recipient's network."),
    _v("operator", "Airtel", "Recipient's operator."),
    _v("circle", "Karnataka", "Telecom circle of the recipient."),
    _v(
        "type",
        "TXN",
        "Message type: transactional, OTP or marketing.",
        allowed=("TXN", "OTP", "MKT"),
    ),
    _v("dlt_template_id", "1107161234567890123", "DLT template id registered for the text."),
    _v("custom", {"order_id": "123"}, "Custom data passed in the send request.", "object"),
)

EMAIL_SEND: tuple[Variable, ...] = (
    _v("message_id", "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f70", "Message id.", required=True),
    _v("smtp_message_id", "<20261124100000.1a2b3c@mail.kaleyra.io>", "SMTP Message-ID header."),
    _v("to", "priya.sharma@example.in", "Recipient address.", required=True),
    _v("from", "alerts@shop.example.in", "Sender address."),
    _v("subject", "Your order has shipped", "Subject line."),
    _v(
        "status",
        "delivered",
        "Email status.",
        required=True,
        allowed=EMAIL_STATUSES,
    ),
    _v("reason", "Mailbox full", "Why the email was bounced, dropped or deferred."),
    _v("smtp_response", "250 2.0.0 OK queued as 4F2A1", "Receiving server's SMTP reply."),
    _v("smtp_status", "5.1.1", "Enhanced SMTP status code."),
    _v("bounce_type", "hard", "Kind of bounce.", allowed=("hard", "soft", "blocked")),
    _v(
        "attempt",
        2,
        "The gateway's SMTP delivery attempt. As a template variable, {{attempt}} is the "
        "callback attempt, which takes precedence.",
        "integer",
    ),
    _v("url", "https://shop.example.in/track/123", "The link clicked (clicked events)."),
    _v("ip", "49.207.10.20", "IP address of the opener or clicker."),
    _v("user_agent", "Mozilla/5.0 (Linux; Android 14)", "User agent of the opener or clicker."),
    _v("tags", ["order", "shipping"], "Tags given in the send request.", "list"),
    _v("custom", {"order_id": "123"}, "Custom data passed in the send request.", "object"),
)

WHATSAPP_STATUS: tuple[Variable, ...] = (
    _v(
        "message_id",
        "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSMkE3RjQ0QjI2RUU5QzBDQjEA",
        "WhatsApp message id (wamid).",
        required=True,
    ),
    _v("to", "+919876543210", "Recipient number.", required=True),
    _v("business_number", "+918047180000", "Your WhatsApp business number."),
    _v("phone_number_id", "109876543210987", "Meta phone number id."),
    _v("waba_id", "102345678901234", "WhatsApp Business Account id."),
    _v(
        "status",
        "read",
        "Message status.",
        required=True,
        allowed=("sent", "delivered", "read", "failed", "not_sent"),
    ),
    _v("conversation_id", "6f1e2d3c4b5a69788796a5b4c3d2e1f0", "Conversation id."),
    _v(
        "conversation_origin",
        "utility",
        "Category that opened the conversation.",
        allowed=("marketing", "utility", "authentication", "service"),
    ),
    _v(
        "conversation_expires_at",
        "2026-11-25T10:00:00Z",
        "When the conversation window ends.",
        "datetime",
    ),
    _v("pricing_billable", True, "Whether the conversation is billable.", "boolean"),
    _v("pricing_category", "utility", "Pricing category of the conversation."),
    _v("price", 0.115, "Price charged.", "number"),
    _v("currency", "INR", "Currency of the price (ISO 4217)."),
    _v("error_code", "131026", "Meta error code when failed."),
    _v("error_title", "Message undeliverable", "Meta error title."),
    _v("error_message", "Receiver is incapable of receiving this message", "Error details."),
    _v("template_name", "order_shipped", "Template the message used."),
    _v("template_language", "en", "Language of the template."),
    _v("custom", {"order_id": "123"}, "Custom data passed in the send request.", "object"),
)

WHATSAPP_INCOMING: tuple[Variable, ...] = (
    _v(
        "message_id",
        "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggNUI3QzBFRDlBRTRGM0Q2NkE5MDc0QjVEAA==",
        "Id of the incoming message (wamid).",
        required=True,
    ),
    _v("from", "+919876543210", "Sender's number.", required=True),
    _v("name", "Priya Sharma", "Sender's WhatsApp profile name."),
    _v("business_number", "+918047180000", "Your business number that received it."),
    _v(
        "type",
        "text",
        "Message type.",
        required=True,
        allowed=WHATSAPP_INCOMING_TYPES,
    ),
    _v("body", "Where is my order?", "Message text, or the media caption."),
    _v("media_url", "https://media.kaleyra.io/wa/8f3e2d1c.jpg", "Download URL of the media."),
    _v("mime_type", "image/jpeg", "MIME type of the media."),
    _v("filename", "invoice.pdf", "File name of a document."),
    _v(
        "location",
        {"latitude": 12.9716, "longitude": 77.5946, "name": "Kaleyra", "address": "Bengaluru"},
        "Shared location: latitude, longitude, name, address.",
        "object",
    ),
    _v(
        "contacts",
        [{"name": {"formatted_name": "Rahul Verma"}, "phones": [{"phone": "+919812345678"}]}],
        "Shared contacts.",
        "list",
    ),
    _v("reply_id", "track_order", "Id of the chosen interactive reply."),
    _v("reply_title", "Track order", "Title of the chosen interactive reply."),
    _v("button_payload", "TRACK_ORDER_123", "Payload of the quick-reply button pressed."),
    _v(
        "context_message_id",
        "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSMkE3RjQ0QjI2RUU5QzBDQjEA",
        "The message this one replies to.",
    ),
    _v("received_at", "2026-11-24T10:00:00Z", "When the message was received.", "datetime"),
)

WHATSAPP_TEMPLATE_STATUS: tuple[Variable, ...] = (
    _v("template_id", "1234567890123456", "Template id.", required=True),
    _v("template_name", "order_shipped", "Template name.", required=True),
    _v("template_language", "en", "Template language."),
    _v(
        "status",
        "approved",
        "Review status.",
        required=True,
        allowed=("approved", "rejected", "disabled", "paused"),
    ),
    _v("reason", "INVALID_FORMAT", "Why it was rejected, disabled or paused."),
)

WHATSAPP_PHONE_QUALITY: tuple[Variable, ...] = (
    _v("business_number", "+918047180000", "The business number concerned.", required=True),
    _v(
        "quality_event",
        "flagged",
        "Quality change.",
        required=True,
        allowed=("flagged", "unflagged"),
    ),
    _v("current_limit", "TIER_10K", "Current messaging limit tier."),
)

CHATBOT_ACTION: tuple[Variable, ...] = (
    _v("session_id", "sess_7f3a9c2e1b4d", "Chat session id.", required=True),
    _v("from", "+919876543210", "The user's number.", required=True),
    _v("source_channel", "whatsapp", "Channel the user wrote on.", allowed=("whatsapp", "sms")),
    _v("intent", "track_order", "Detected intent."),
    _v("text", "Where is order 123?", "The user's message text."),
    _v("slots", {"order_id": "123"}, "Slots filled by the bot.", "object"),
    _v(
        "action", "update", "Action asked of your endpoint.", allowed=("create", "update", "delete")
    ),
)

# event name → (description, data fields)
EVENT_FIELDS: dict[str, tuple[str, tuple[Variable, ...]]] = {
    "sms.send": ("Status of an SMS: accepted, sent, delivered or failed.", SMS_SEND),
    "email.send": ("Status of an email: delivered, bounced, opened, clicked…", EMAIL_SEND),
    "whatsapp.status": ("Status of an outgoing WhatsApp message.", WHATSAPP_STATUS),
    "whatsapp.incoming": ("A message a user sent to your business number.", WHATSAPP_INCOMING),
    "whatsapp.template_status": (
        "A template was approved, rejected, disabled or paused.",
        WHATSAPP_TEMPLATE_STATUS,
    ),
    "whatsapp.phone_quality": (
        "The quality rating of a business number changed.",
        WHATSAPP_PHONE_QUALITY,
    ),
    "chatbot.action": ("An action the chatbot asks your endpoint to take.", CHATBOT_ACTION),
}
