"""Which addresses `web_fetch` may reach (SSRF): resolve the host, refuse every address that is not
public, and hand back the address that was checked so the connection goes there and nowhere else.

Every spelling of a forbidden address is caught because the check runs on what the resolver returns
(`127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1` all resolve to 127.0.0.1), and IPv6 forms that carry an
IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, 6to4, Teredo, NAT64) are checked by the
IPv4 address inside them too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")


class FetchRefused(Exception):
    """A URL web_fetch will not open; the message says why, for the model to read."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`ips`, every address checked, tried in order), and what to ask
    for there."""

    url: str
    scheme: str
    host: str  # as written (IDNA-encoded), for the Host header and TLS
    port: int
    ips: tuple[IPAddress, ...]
    path: str  # path and query

    def connect_url(self, ip: IPAddress) -> str:
        shown = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{shown}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_blocked(ip: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = why_blocked(inner)
            if reason:
                return f"{reason} (inside the IPv6 address {ip})"
    for kind, flag in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                       ("link-local (cloud metadata lives here)", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if flag:
            return f"a {kind} address"
    if not ip.is_global:
        return "not a public address"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a host written as an IP means, in any spelling the resolver accepts (`127.1`, `0x7f.1`,
    `2130706433`, `[::1]`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def shown(url: str) -> str:
    """The URL as a message may show it: without a user or password, never sent anyway."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:200]
    if "@" not in parts.netloc:
        return url[:500]
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()[:500]


def allow_key(host: str, port: int) -> str:
    ip = literal_ip(host)
    name = str(ip) if ip is not None else host.lower().rstrip(".")
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def normalize_allow(entries: list[str]) -> frozenset[str]:
    """`fetch_allow` entries as host:port keys (an IP in any spelling becomes its plain form)."""
    out = set()
    for entry in entries:
        parts = urlsplit(f"//{entry}")
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{entry!r} must be host:port, e.g. 127.0.0.1:8888 or intranet.example:443")
        out.add(allow_key(parts.hostname, parts.port))
    return frozenset(out)


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an http(s) URL; FetchRefused for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https URLs can be fetched, not {scheme or 'a URL without a scheme'}")
    host = parts.hostname or ""
    if not host:
        raise FetchRefused("the URL has no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise FetchRefused("the URL's host is not a valid name") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


async def resolve(host: str, port: int) -> list[IPAddress]:
    ip = literal_ip(host)
    if ip is not None:
        return [ip]
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc}") from None
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise FetchRefused(f"{host} has no address")
    return out


async def check(url: str, allow: frozenset[str]) -> Target:
    """The URL's target, pinned to a checked address; FetchRefused when any address it resolves to is not
    public, unless its host:port is in `fetch_allow`."""
    scheme, host, port, path = parse(url)
    addresses = await resolve(host, port)
    if allow_key(host, port) not in allow:
        for ip in addresses:
            reason = why_blocked(ip)
            if reason:
                shown = host if str(ip) == host else f"{host} ({ip})"
                raise FetchRefused(f"{shown} is {reason}: web_fetch only opens public addresses "
                                   "(an operator can list host:port in the ensemble's [web] fetch_allow)")
    return Target(url=url, scheme=scheme, host=host, port=port, ips=tuple(addresses), path=path)
