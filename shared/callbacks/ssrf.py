"""Which addresses a callback may reach (design: SSRF guard). Pure.

The dispatcher and the API's test call resolve the endpoint's host themselves, ask this
module about every address, and connect only to the addresses it accepts, so a customer
URL (or a DNS answer that changes between check and connect) cannot reach the
platform's own network, the cloud metadata service or loopback. IPv6 forms that carry an
IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by the address they carry.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS IPv6; Alibaba; Oracle).
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("192.0.0.192"),
    }
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` is refused (loopback, private, link-local, unique-local, multicast,
    metadata, unspecified, reserved, IPv4-mapped forms of those) or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return forbidden_reason(embedded)
        if address in _NAT64_LOCAL:
            return "private"
    if address in _METADATA:
        return "metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address):
        if address == _BROADCAST:
            return "broadcast"
        if address in _THIS_NETWORK:
            return "this_network"
        if address in _CGNAT:
            return "cgnat"
    elif address.is_site_local:
        return "site_local"
    elif address in _UNIQUE_LOCAL:
        return "unique_local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not_global"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the carrying forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client; the server part is the relay
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
