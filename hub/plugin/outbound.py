"""Outbound connections for plugins: where an exporter may connect, judged
on the address the HTTP client really connects to.

Every exporter that takes a URL from hub.toml (``webhook``, and QuickBooks,
Odoo and the ones to come) uses this module, at both moments:

- **Checking the URL** (``hub check`` and the exporter's factory). A
  plugin's schema says ``"format": "outbound-url"`` for a URL option (or
  ``"outbound-url-private"`` when the operator set ``allow_private =
  true``), and the factory calls :func:`check_url`. The URL is read by the
  client's own parser (urllib3's ``parse_url``, what requests uses, on the
  URL requests prepares) *and* by ``urllib.parse``, and refused when the
  two read a different scheme, host or port, or when it holds what makes
  them differ or hides the destination: a backslash, a control character
  or space, user-info (``user@``), a percent sign in the host (an encoded
  host or an IPv6 zone id), a non-ASCII host (write its ``xn--`` form), an
  IPv4 address written other than in dotted decimal (``2130706433``,
  ``0177.0.0.1``, ``127.1``, ``0x7f.0.0.1``), an IPv4-mapped or
  -compatible IPv6 address (``[::ffff:127.0.0.1]``). Only ``https://`` is
  accepted, and plain ``http://`` to a loopback host written as such
  (``localhost``, 127.0.0.0/8, ``[::1]``). An address literal that is
  private, link-local (169.254.169.254, the cloud metadata service),
  shared, reserved, multicast or unspecified is refused unless
  ``allow_private``.
- **Sending** (:func:`guarded_session`). Every new connection resolves the
  host once, checks every address it got (:func:`refused_address`: the
  same classes, loopback only for a URL written as loopback; a plain
  ``http://`` URL reaches loopback only), and connects to the checked
  address itself, not to the name again; the peer of the socket is checked
  once more before a byte is sent. The request keeps the URL's host in its
  ``Host`` header, TLS its SNI and certificate verification. So a name that
  resolved public when checked and private when sent (DNS rebinding) gets
  nowhere. Redirects are never followed (the session refuses them),
  retries are the caller's (each attempt is a new check), and the
  environment's proxy variables and ``.netrc`` are ignored (a proxy would
  hide the destination, ``.netrc`` add credentials nobody configured).
  ``allow_private`` skips the address classes, never the URL's form.

A refusal is :class:`DestinationRefused` (permanent: the same URL is
refused again); its message names the host and the address.

This module knows URLs, addresses and connections; it must not know
events, invoices, signatures or what a receiver answers.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: the JSON-schema formats of a URL option that :func:`check_url` judges (hub check)
URL_FORMAT = "outbound-url"
PRIVATE_URL_FORMAT = "outbound-url-private"

#: what a refusal for server-side request forgery adds
_HINT = "refused against server-side request forgery (set allow_private = true for a receiver inside your network)"
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_FORBIDDEN_CHARACTER = re.compile(r"[\\\x00-\x20\x7f]")
_RAW_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_USER_INFO = "holds user-info (user@ before the host): put credentials in the exporter's secret, never in the URL"
_PERCENT = "has a percent sign in its host (an encoded host or an IPv6 zone id): write the host plainly"


class UrlRefused(ValueError):
    """A URL that may not be used; the message says why (never the path or query, which may hold a token)."""


class DestinationRefused(Exception):
    """A connection's destination that is not allowed; raised inside the
    connection (deliberately not an OSError, so neither urllib3 nor requests
    retries or rewraps it)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: what the HTTP client will connect to."""

    url: str
    scheme: str
    #: lower case; an IPv6 address without its brackets
    host: str
    port: int
    #: the host is written as a loopback name or address (plain http allowed, loopback reachable)
    loopback: bool
    allow_private: bool

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def is_loopback_name(host: str) -> bool:
    """``localhost``, an address of 127.0.0.0/8 or ``::1``, written canonically."""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback and str(ip) == host


def refused_address(address: str, *, loopback_ok: bool) -> str | None:
    """Why a connection may not go to ``address`` (None: it may): a word
    for its class: loopback, unspecified, link-local, multicast, private or
    non-public. An IPv4 address inside IPv6 (mapped, compatible, 6to4,
    Teredo, NAT64) is judged as that IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part of it
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _IPV4_COMPATIBLE and int(ip) > 1:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    if ip.is_loopback:
        return None if loopback_ok else "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:  # shared (100.64.0.0/10), reserved, unspecified, documentation ranges
        return "non-public"
    return None


_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_url(url: str, *, allow_private: bool = False) -> Target:
    """The URL checked as the module's docstring says.

    :raises UrlRefused: with the reason.
    """
    if not isinstance(url, str) or not url:
        raise UrlRefused("is not a URL")
    bad = _FORBIDDEN_CHARACTER.search(url)
    if bad is not None:
        what = "a backslash" if bad.group() == "\\" else ("a space" if bad.group() == " " else "a control character")
        raise UrlRefused(f"holds {what}, which HTTP clients and URL parsers read differently: write the URL without it")
    if not url.isascii():
        raise UrlRefused("holds a character outside ASCII: write a host in its xn-- form and percent-encode the path")
    raw = _RAW_AUTHORITY.match(url)
    if raw is None:
        raise UrlRefused("is not an https:// URL")
    if "@" in raw.group(1):
        raise UrlRefused(_USER_INFO)
    if "%" in raw.group(1):
        raise UrlRefused(_PERCENT)
    client = _client_view(url)
    try:
        split = urlsplit(url)
        split_port = split.port
    except ValueError as exc:
        raise UrlRefused(f"is not a URL this hub can read: {exc}") from None
    scheme = (client[0] or "").lower()
    if scheme not in ("https", "http"):
        raise UrlRefused("is not an https:// URL")
    authority = split.netloc
    if "@" in authority or client[1] is not None or split.username is not None:
        raise UrlRefused(_USER_INFO)
    host = (client[2] or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise UrlRefused("has no host")
    if "%" in host or "%" in authority:
        raise UrlRefused(_PERCENT)
    port = client[3] or (443 if scheme == "https" else 80)
    if (split.scheme.lower(), (split.hostname or "").lower(), split_port or port) != (scheme, host, port):
        raise UrlRefused("reads differently to the HTTP client and to other URL parsers: write it plainly "
                         "(scheme://host[:port]/path)")
    literal = _literal(host)
    if literal is None:
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if not all(_LABEL.match(label) for label in labels):
            raise UrlRefused(f"host {host!r} is neither a DNS name nor an IP address written canonically")
        if _NUMERIC_LABEL.match(labels[-1]):
            raise UrlRefused(f"host {host!r} is an IPv4 address written other than in dotted decimal "
                             f"(HTTP clients read it as an address): write it as four decimal numbers, a.b.c.d")
    loopback = is_loopback_name(host)
    if scheme == "http" and not loopback:
        raise UrlRefused("plain http is refused except to a loopback host (localhost, 127.0.0.0/8, [::1]): "
                         f"use https://{_authority(host, port, 80)}")
    if literal is not None and not allow_private:
        why = refused_address(host, loopback_ok=True)
        if why is not None:
            raise UrlRefused(f"{host} is {_a(why)} address: {_HINT}")
    return Target(url=url, scheme=scheme, host=host, port=port, loopback=loopback, allow_private=allow_private)


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _authority(host: str, port: int, default: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def _client_view(url: str) -> tuple[str | None, str | None, str | None, int | None]:
    """Scheme, user-info, host and port as requests and urllib3 read the URL
    requests prepares from it."""
    import requests
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        parsed = parse_url(prepared.url or "")
        original = parse_url(url)
    except (requests.RequestException, LocationParseError, ValueError) as exc:
        raise UrlRefused(f"is not a URL the HTTP client can read: {_no_url(exc)}") from None
    if (original.host or "").lower() != (parsed.host or "").lower() or original.auth != parsed.auth:
        raise UrlRefused("reads differently to the HTTP client once prepared: write it plainly")
    return parsed.scheme, parsed.auth, parsed.host, parsed.port


def _no_url(exc: BaseException) -> str:
    """An error's text without the URL (which may hold a token)."""
    text = str(exc)
    if "://" not in text:
        return text
    if text.startswith("Failed to parse"):
        return "Failed to parse"
    last = text.rsplit(": ", 1)[-1]
    return last if "://" not in last else type(exc).__name__


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    inside = isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped is not None
                                                         or (ip in _IPV4_COMPATIBLE and int(ip) > 1))
    if inside:
        raise UrlRefused(f"host {host} is an IPv4 address inside IPv6: write the IPv4 address itself")
    if isinstance(ip, ipaddress.IPv4Address) and str(ip) != host:
        raise UrlRefused(f"host {host!r} is an IPv4 address written other than in dotted decimal: write {ip}")
    return ip


# --------------------------------------------------------------------------
# Sending


def destination_problem(target: Target, address: str) -> str | None:
    """Why a connection for ``target`` may not go to ``address`` (None: it may)."""
    if target.scheme == "http":  # clear text: loopback only, whatever allow_private says
        if refused_address(address, loopback_ok=False) == "loopback":
            return None
        return f"{target.host} resolves to {address}, not a loopback address: plain http is refused except to loopback"
    if target.allow_private:
        return None
    why = refused_address(address, loopback_ok=target.loopback)
    if why is None:
        return None
    return f"{target.host} resolves to {address}, {_a(why)} address: {_HINT}"


def resolve(target: Target) -> list[tuple[int, str]]:
    """The host's addresses (family, address), each checked; resolved once.

    :raises DestinationRefused: an address is refused (all of them are checked: one refused refuses the host).
    :raises OSError: the name does not resolve.
    """
    literal = _literal(target.host)
    if literal is not None:
        found = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
    else:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        found = []
        for family, _type, _proto, _name, sockaddr in infos:
            item = (family, str(sockaddr[0]))
            if item not in found:
                found.append(item)
    if not found:
        raise OSError(f"{target.host} has no address")
    for _family, address in found:
        why = destination_problem(target, address)
        if why is not None:
            raise DestinationRefused(why)
    return found


def guarded_session(target: Target, ca_file: str | None = None,
                    on_connect: Callable[[str], None] | None = None) -> Any:
    """A ``requests.Session`` for ``target`` whose every new connection
    resolves the host once, checks the addresses, connects to a checked one
    and checks the socket's peer before anything is sent; redirects are
    refused (``allow_redirects`` is forced off), proxies and ``.netrc``
    ignored. ``on_connect`` is told each address connected to (tests)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    class Checked:
        host: str
        port: int
        timeout: Any
        source_address: Any
        socket_options: Any

        def _new_conn(self) -> socket.socket:
            if (self.host or "").lower().strip("[]").rstrip(".") != target.host.rstrip(".") or self.port != target.port:
                raise DestinationRefused(f"a connection to {self.host}:{self.port} is not {target.authority}: refused")
            try:
                addresses = resolve(target)
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
            except OSError as exc:
                why = f"cannot resolve {target.host}: {exc}"
                raise NewConnectionError(self, why) from exc  # type: ignore[arg-type]
            last: OSError | None = None
            for family, address in addresses:
                sock = socket.socket(family, socket.SOCK_STREAM)
                try:
                    for option in self.socket_options or ():
                        sock.setsockopt(*option)
                    if isinstance(self.timeout, (int, float)):
                        sock.settimeout(self.timeout)
                    sock.connect((address, target.port))
                except TimeoutError as exc:
                    sock.close()
                    raise ConnectTimeoutError(self, f"Connection to {target.host} timed out") from exc
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                peer = str(sock.getpeername()[0])
                why = destination_problem(target, peer)
                if why is not None:
                    sock.close()
                    raise DestinationRefused(why)
                if on_connect is not None:
                    on_connect(peer)
                return sock
            assert last is not None
            why = f"Failed to establish a new connection: {last}"
            raise NewConnectionError(self, why) from last  # type: ignore[arg-type]

    class Conn(Checked, HTTPConnection):
        pass

    class TLSConn(Checked, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}


    class Session(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

        def rebuild_proxies(self, prepared_request: Any, proxies: Any) -> dict[str, str]:
            return {}

    session = Session()
    session.trust_env = False  # no proxy or .netrc from the environment: see the module's docstring
    if ca_file is not None:
        session.verify = ca_file
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter(max_retries=0))
    return session


__all__ = ["PRIVATE_URL_FORMAT", "URL_FORMAT", "DestinationRefused", "Target", "UrlRefused", "check_url",
           "destination_problem", "guarded_session", "is_loopback_name", "refused_address", "resolve"]
