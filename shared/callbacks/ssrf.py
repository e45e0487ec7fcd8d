"""Which addresses a callback may reach (design: SSRF guard). Pure.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` is refused (loopback, private, link-local, unique-local, multicast,
    metadata, unspecified, reserved, IPv4-mapped forms of those) or None if public."""
    raise NotImplementedError
