"""Test vectors for the receiver kit, made by our own signing and encryption code.

``write_vectors`` writes them as tab-separated lines (every language reads that without
a JSON library, which Java's standard library lacks) and returns what each must give:

    sig  name expect now tolerance webhook-id webhook-timestamp webhook-signature
         base64(body) secrets(space-separated whsec_) public-keys(space-separated whpk_)
    dec  name expect algorithm scope base64(key) token-or-envelope-JSON base64(plaintext)

``expect`` is ``accept`` or ``reject``. Every vector is made fresh at test time.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from callbacks.encryption import KEY_BYTES, decrypt_body, decrypt_value, encrypt_body, encrypt_value
from callbacks.signing import generate_secret, generate_signing_key, public_key, signature_header

NOW = 1_700_000_000
TOLERANCE = 300
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_SIGNING_KEY = (
    "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
)
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = (
    "msg_p5jXN8AQM9LWM0D4loKWxJek",
    1614265330,
    b'{"test": 2432232314}',
)
BODY = '{"id": "ee8a:1", "status": "delivered", "to": "+91 98 «ünï» 👍", "x": "<&>"}'.encode()
TEXTS = ["delivered", "", 'नमस्ते 👍 <&> "quoted"\n', "x" * 300]


@dataclass(frozen=True)
class Expected:
    accept: bool
    plaintext: bytes | None = None  # a decryption vector that is accepted


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.expected: dict[str, Expected] = {}

    def _add(self, name: str, fields: list[str], expected: Expected) -> None:
        assert name not in self.expected, name
        assert all("\t" not in f and "\n" not in f for f in fields), name
        self.lines.append("\t".join(fields))
        self.expected[name] = expected

    def sig(
        self,
        name: str,
        accept: bool,
        *,
        body: bytes,
        msg_id: str,
        timestamp: str,
        signature: str,
        secrets: Sequence[str] = (),
        public_keys: Sequence[str] = (),
        now: int = NOW,
    ) -> None:
        expect = "accept" if accept else "reject"
        fields = ["sig", name, expect, str(now), str(TOLERANCE), msg_id, timestamp, signature]
        fields += [_b64(body), " ".join(secrets), " ".join(public_keys)]
        self._add(name, fields, Expected(accept))

    def dec(
        self,
        name: str,
        plaintext: bytes | None,
        *,
        algorithm: str,
        scope: str,
        key: bytes,
        token: str,
    ) -> None:
        expect = "accept" if plaintext is not None else "reject"
        fields = ["dec", name, expect, algorithm, scope, _b64(key), token, _b64(plaintext or b"")]
        self._add(name, fields, Expected(plaintext is not None, plaintext))


def _signature_vectors(w: _Writer) -> None:
    # The Standard Webhooks specification's own examples.
    for scheme, key, verifier in (
        ("v1", SPEC_SECRET, {"secrets": [SPEC_SECRET]}),
        ("v1a", SPEC_SIGNING_KEY, {"public_keys": [public_key(SPEC_SIGNING_KEY)]}),
    ):
        header = signature_header([key], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
        w.sig(
            f"spec-{scheme}",
            True,
            body=SPEC_BODY,
            msg_id=SPEC_ID,
            timestamp=str(SPEC_TIMESTAMP),
            signature=header,
            now=SPEC_TIMESTAMP,
            **verifier,
        )

    secret, old_secret = generate_secret(), generate_secret()
    key, old_key = generate_signing_key(), generate_signing_key()
    pub, old_pub = public_key(key), public_key(old_key)
    stamp = str(NOW)

    def signed(keys: list[str], body: bytes = BODY, msg_id: str = "dlv_1") -> str:
        return signature_header(keys, msg_id, NOW, body)

    base = {"body": BODY, "msg_id": "dlv_1", "timestamp": stamp}
    for scheme, keys, verifier in (
        ("v1", [secret], {"secrets": [secret]}),
        ("v1a", [key], {"public_keys": [pub]}),
    ):
        header = signed(keys)
        w.sig(f"{scheme}-good", True, signature=header, **base, **verifier)
        w.sig(
            f"{scheme}-empty-body",
            True,
            body=b"",
            msg_id="dlv_1",
            timestamp=stamp,
            signature=signed(keys, b""),
            **verifier,
        )
        w.sig(
            f"{scheme}-tampered-body",
            False,
            body=BODY + b" ",
            msg_id="dlv_1",
            timestamp=stamp,
            signature=header,
            **verifier,
        )
        w.sig(
            f"{scheme}-tampered-id",
            False,
            body=BODY,
            msg_id="dlv_2",
            timestamp=stamp,
            signature=header,
            **verifier,
        )
        w.sig(
            f"{scheme}-tampered-timestamp",
            False,
            body=BODY,
            msg_id="dlv_1",
            timestamp=str(NOW + 1),
            signature=header,
            **verifier,
        )
        w.sig(
            f"{scheme}-at-tolerance-past",
            True,
            signature=header,
            now=NOW + TOLERANCE,
            **base,
            **verifier,
        )
        w.sig(
            f"{scheme}-too-old",
            False,
            signature=header,
            now=NOW + TOLERANCE + 1,
            **base,
            **verifier,
        )
        w.sig(
            f"{scheme}-too-new",
            False,
            signature=header,
            now=NOW - TOLERANCE - 1,
            **base,
            **verifier,
        )
    w.sig("v1-wrong-secret", False, signature=signed([secret]), secrets=[old_secret], **base)
    w.sig("v1a-wrong-key", False, signature=signed([key]), public_keys=[old_pub], **base)
    # A v1a signature is no HMAC: a receiver holding only secrets refuses it, and back.
    w.sig("v1a-only-for-a-v1-receiver", False, signature=signed([key]), secrets=[secret], **base)
    w.sig(
        "v1-only-for-a-v1a-receiver", False, signature=signed([secret]), public_keys=[pub], **base
    )
    both = signed([secret, key])
    w.sig("both-v1-receiver", True, signature=both, secrets=[secret], **base)
    w.sig("both-v1a-receiver", True, signature=both, public_keys=[pub], **base)
    w.sig(
        "both-tampered",
        False,
        body=BODY[:-1],
        msg_id="dlv_1",
        timestamp=stamp,
        signature=both,
        secrets=[secret],
        public_keys=[pub],
    )
    # Rotation: old and new sign; a receiver with either one accepts.
    rotating = signed([secret, old_secret, key, old_key])
    w.sig("rotation-old-secret", True, signature=rotating, secrets=[old_secret], **base)
    w.sig("rotation-new-public-key", True, signature=rotating, public_keys=[pub], **base)
    w.sig(
        "receiver-with-two-secrets",
        True,
        signature=signed([secret]),
        secrets=[old_secret, secret],
        **base,
    )
    # Header forms.
    good = signed([secret])
    w.sig("unknown-version-skipped", True, signature=f"v9,abc {good}", secrets=[secret], **base)
    w.sig(
        "only-unknown-version",
        False,
        signature="v2," + good.partition(",")[2],
        secrets=[secret],
        **base,
    )
    w.sig("garbage-then-good", True, signature=f"v1,!!notbase64!! {good}", secrets=[secret], **base)
    w.sig("empty-signature-header", False, signature="", secrets=[secret], **base)
    w.sig("truncated-signature", False, signature=good[:-8], secrets=[secret], **base)
    w.sig(
        "timestamp-not-a-number",
        False,
        body=BODY,
        msg_id="dlv_1",
        timestamp="17e8",
        signature=good,
        secrets=[secret],
    )


def _decryption_vectors(w: _Writer) -> None:
    for algorithm, size in KEY_BYTES.items():
        key, other_key = os.urandom(size), os.urandom(size)
        gcm = algorithm.endswith("-gcm")
        for index, text in enumerate(TEXTS):
            plain = text.encode()
            token = encrypt_value(algorithm, key, plain)
            assert decrypt_value(algorithm, key, token) == plain
            w.dec(
                f"{algorithm}-values-{index}",
                plain,
                algorithm=algorithm,
                scope="values",
                key=key,
                token=token,
            )
        envelope = encrypt_body(algorithm, key, BODY)
        assert decrypt_body(algorithm, key, orjson.loads(envelope)) == BODY
        w.dec(
            f"{algorithm}-body",
            BODY,
            algorithm=algorithm,
            scope="body",
            key=key,
            token=envelope.decode(),
        )
        other = "aes-128-cfb" if algorithm != "aes-128-cfb" else "aes-128-gcm"
        w.dec(
            f"{algorithm}-body-alg-mismatch",
            None,
            algorithm=other,
            scope="body",
            key=os.urandom(KEY_BYTES[other]),
            token=envelope.decode(),
        )
        w.dec(
            f"{algorithm}-values-wrong-key-size",
            None,
            algorithm=algorithm,
            scope="values",
            key=os.urandom(size + 8 if size < 32 else 16),
            token=encrypt_value(algorithm, key, b"x"),
        )
        w.dec(
            f"{algorithm}-values-not-base64",
            None,
            algorithm=algorithm,
            scope="values",
            key=key,
            token="%%%",
        )
        w.dec(
            f"{algorithm}-values-too-short",
            None,
            algorithm=algorithm,
            scope="values",
            key=key,
            token=_b64(os.urandom(10)),
        )
        if not gcm:
            continue  # CFB has no tag: an altered value decrypts to other bytes, unnoticed
        raw = bytearray(base64.b64decode(encrypt_value(algorithm, key, b"delivered")))
        raw[14] ^= 1
        w.dec(
            f"{algorithm}-values-tampered",
            None,
            algorithm=algorithm,
            scope="values",
            key=key,
            token=_b64(bytes(raw)),
        )
        w.dec(
            f"{algorithm}-values-wrong-key",
            None,
            algorithm=algorithm,
            scope="values",
            key=other_key,
            token=encrypt_value(algorithm, key, b"delivered"),
        )
        parsed = orjson.loads(envelope)
        data = bytearray(base64.b64decode(parsed["encrypted"]))
        data[0] ^= 1
        tampered = orjson.dumps({**parsed, "encrypted": _b64(bytes(data))}).decode()
        w.dec(
            f"{algorithm}-body-tampered",
            None,
            algorithm=algorithm,
            scope="body",
            key=key,
            token=tampered,
        )


def write_vectors(path: Path) -> dict[str, Expected]:
    """Write fresh vectors to ``path``; the outcome each implementation must give."""
    writer = _Writer()
    _signature_vectors(writer)
    _decryption_vectors(writer)
    path.write_text(
        "# receiver kit test vectors (tests/receivers/vectors.py)\n"
        + "\n".join(writer.lines)
        + "\n",
        encoding="utf-8",
    )
    return writer.expected
