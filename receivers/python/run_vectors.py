"""Run the kit's test vectors through callback_receiver.py (see tests/receivers).

Usage: python run_vectors.py VECTORS.tsv — prints ``name<TAB>accept<TAB>plaintext-b64``
or ``name<TAB>reject<TAB>reason`` for every vector.
"""

from __future__ import annotations

import base64
import json
import sys

from callback_receiver import (
    DecryptionError,
    VerificationError,
    decrypt_body,
    decrypt_value,
    verify,
)


def run(fields: list[str]) -> str:
    if fields[0] == "sig":
        now, tolerance, msg_id, stamp, signature, body, secrets, public_keys = fields[3:]
        headers = {"Webhook-Id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        verify(
            base64.b64decode(body),
            headers,
            secrets=secrets.split(),
            public_keys=public_keys.split(),
            tolerance_s=int(tolerance),
            now=int(now),
        )
        return ""
    algorithm, scope, key, token = fields[3:7]
    raw_key = base64.b64decode(key)
    if scope == "values":
        plain = decrypt_value(algorithm, raw_key, token)
    else:
        plain = decrypt_body(algorithm, raw_key, json.loads(token))
    return base64.b64encode(plain).decode()


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as vectors:
        for line in vectors:
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                result = "accept\t" + run(fields)
            except (VerificationError, DecryptionError) as exc:
                result = f"reject\t{exc}"
            print(f"{fields[1]}\t{result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
