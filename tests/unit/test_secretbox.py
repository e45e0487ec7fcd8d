import os

import pytest
from callbacks.secretbox import PREFIX, SecretBox


@pytest.mark.parametrize("plaintext", ["", "p@ss:word", "नमस्ते 👍", "whsec_" + "A" * 44, "x" * 5000])
def test_round_trip(plaintext: str) -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal(plaintext)
    assert token.startswith(PREFIX)
    assert plaintext not in token.removeprefix(PREFIX) or plaintext == ""
    assert box.open(token) == plaintext
    assert box.seal(plaintext) != token  # fresh nonce
    assert SecretBox.is_sealed(token)


def test_other_key_or_tampering_is_refused() -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal("secret")
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(os.urandom(32)).open(token)
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(ValueError, match="does not open"):
        box.open(tampered)
    with pytest.raises(ValueError, match="does not open"):
        box.open(PREFIX + "not base64!")
    with pytest.raises(ValueError, match="does not open"):
        box.open(PREFIX + "AAAA")
    with pytest.raises(ValueError, match="not a sealed secret"):
        box.open("secret")


def test_master_key_size() -> None:
    with pytest.raises(ValueError, match="master key"):
        SecretBox(b"short")
