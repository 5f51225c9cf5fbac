"""The outbound guard (hub/plugin/outbound.py) against each known way
around an SSRF and clear-text check (issue 24, item 1).

Every case says exactly refused or allowed, and, with a loopback HTTP
server that records its hits and a record of every ``connect`` the process
makes, that no connection went to a refused address. Names resolve
through a stub (``socket.getaddrinfo`` patched), never through real DNS.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.plugin import DeliveryError
from hub.plugin.outbound import DestinationRefused, UrlRefused, check_url, guarded_session
from hub_plugins.exporters.webhook import WebhookExporter
from tests.test_webhook_exporter import BASE, SECRET, SECRET_ENV, _delivery, _instance

HINT = "refused against server-side request forgery (set allow_private = true for a receiver inside your network)"


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        status, location = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server recording every request it gets."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.hits = []  # type: ignore[attr-defined]
    srv.answer = (200, None)  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def net(monkeypatch):
    """A stub resolver (``net.names[host] = [addresses]``, asked names in
    ``net.asked``) and every address the process connects a TCP socket to
    (``net.connects``)."""

    class Net:
        names: dict[str, list[str]] = {}
        asked: list[str] = []
        connects: list[tuple[str, int]] = []

    n = Net()
    n.names, n.asked, n.connects = {}, [], []
    real_resolve, real_connect = socket.getaddrinfo, socket.socket.connect

    def resolve(host, port, *args, **kwargs):
        n.asked.append(host)
        if host in n.names:
            answer = n.names[host]
            if callable(answer):
                answer = answer()
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                    for a in answer]
        if host in ("127.0.0.1", "::1") or host.replace(".", "").isdigit() or host.startswith("0x"):
            return real_resolve(host, port, *args, **kwargs)  # an address (or what inet_aton reads as one)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connect(sock, address):
        n.connects.append((str(address[0]), int(address[1])))
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return n


def _refused_by_factory(url: str, **options) -> str:
    with pytest.raises(ValueError) as refused:
        WebhookExporter(_instance(url, **options))
    return str(refused.value)


def _refused_when_sent(url: str, **options) -> DeliveryError:
    with pytest.raises(DeliveryError) as refused:
        WebhookExporter(_instance(url, **options)).deliver(_delivery())
    return refused.value


# --------------------------------------------------------------------------
# Refused by the URL's form: the HTTP client and urllib.parse would disagree


def test_a_backslash_before_user_info_is_refused_and_nothing_reaches_the_host_requests_would_read(server, net):
    """The report: urllib.parse reads 127.0.0.1, requests reads evil.example."""
    port = server.server_address[1]
    net.names["evil.example"] = ["127.0.0.1"]  # were it connected, the request would land on the recorder
    url = f"http://evil.example\\@127.0.0.1:{port}/hook"
    assert _refused_by_factory(url) == ("url: holds a backslash, which HTTP clients and URL parsers read differently: "
                                        "write the URL without it")
    assert _refused_by_factory(url, allow_private=True).startswith("url: holds a backslash")
    assert (server.hits, net.asked, net.connects) == ([], [], [])


@pytest.mark.parametrize("url", [
    "http://user:secret@127.0.0.1:{port}/hook",
    "http://127.0.0.1:{port}@evil.example/hook",
    "https://crm.example.com@127.0.0.1:{port}/hook",
    "http://127.0.0.1%2f@evil.example/hook",
])
def test_user_info_in_the_url_is_refused(server, net, url):
    url = url.format(port=server.server_address[1])
    net.names["evil.example"] = ["127.0.0.1"]
    assert _refused_by_factory(url) == ("url: holds user-info (user@ before the host): put credentials in the "
                                        "exporter's secret, never in the URL")
    assert (server.hits, net.connects) == ([], [])


@pytest.mark.parametrize("url", [
    "http://%31%32%37.0.0.1:{port}/hook",
    "https://crm%2eexample.com/hook",
    "http://[fe80::1%25eth0]:{port}/hook",
    "http://[::1%25lo]:{port}/hook",
])
def test_a_percent_encoded_host_or_an_ipv6_zone_id_is_refused(server, net, url):
    url = url.format(port=server.server_address[1])
    assert _refused_by_factory(url) == ("url: has a percent sign in its host (an encoded host or an IPv6 zone id): "
                                        "write the host plainly")
    assert (server.hits, net.connects) == ([], [])


@pytest.mark.parametrize(("host", "what"), [
    ("2130706433", "'2130706433' is an IPv4 address written other than in dotted decimal (HTTP clients read it as an "
                   "address): write it as four decimal numbers, a.b.c.d"),
    ("0177.0.0.1", "'0177.0.0.1' is an IPv4 address written other than in dotted decimal (HTTP clients read it as an "
                   "address): write it as four decimal numbers, a.b.c.d"),
    ("127.1", "'127.1' is an IPv4 address written other than in dotted decimal (HTTP clients read it as an address): "
              "write it as four decimal numbers, a.b.c.d"),
    ("0x7f.0.0.1", "'0x7f.0.0.1' is an IPv4 address written other than in dotted decimal (HTTP clients read it as an "
                   "address): write it as four decimal numbers, a.b.c.d"),
    ("0xa9fea9fe", "'0xa9fea9fe' is an IPv4 address written other than in dotted decimal (HTTP clients read it as an "
                   "address): write it as four decimal numbers, a.b.c.d"),
])
def test_an_ipv4_address_in_decimal_octal_hex_or_short_form_is_refused(server, net, host, what):
    """The C resolver reads each of these as an address (2130706433 is 127.0.0.1)."""
    port = server.server_address[1]
    for scheme in ("http", "https"):
        assert _refused_by_factory(f"{scheme}://{host}:{port}/hook") == f"url: host {what}"
    assert (server.hits, net.connects) == ([], [])


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]",
                                  "[::127.0.0.1]"])
def test_an_ipv4_mapped_or_compatible_ipv6_address_is_refused(server, net, host):
    port = server.server_address[1]
    bare = host.strip("[]")
    for options in ({}, {"allow_private": True}):
        assert _refused_by_factory(f"https://{host}:{port}/hook", **options) == (
            f"url: host {bare} is an IPv4 address inside IPv6: write the IPv4 address itself")
    assert _refused_by_factory(f"http://{host}:{port}/hook").startswith("url: host ")
    assert (server.hits, net.connects) == ([], [])


@pytest.mark.parametrize(("url", "why"), [
    ("http://crm.example.com/hook", "plain http is refused except to a loopback host (localhost, 127.0.0.0/8, [::1]): "
                                    "use https://crm.example.com"),
    ("http://10.0.0.7:8080/hook", "plain http is refused except to a loopback host (localhost, 127.0.0.0/8, [::1]): "
                                  "use https://10.0.0.7:8080"),
    ("https://169.254.169.254/latest/meta-data", f"169.254.169.254 is a link-local address: {HINT}"),
    ("https://[fd00::1]/hook", f"fd00::1 is a private address: {HINT}"),
    ("https://0.0.0.0/hook", f"0.0.0.0 is an unspecified address: {HINT}"),
    ("https://100.64.0.1/hook", f"100.64.0.1 is a non-public address: {HINT}"),
    ("https://crm.example.com /hook", "holds a space, which HTTP clients and URL parsers read differently: "
                                      "write the URL without it"),
    ("https://crm.example.com\t/hook", "holds a control character, which HTTP clients and URL parsers read "
                                       "differently: write the URL without it"),
    ("https://bücher.example/hook", "holds a character outside ASCII: write a host in its xn-- form and "
                                    "percent-encode the path"),
    ("ftp://crm.example.com/hook", "is not an https:// URL"),
    ("https://crm.example.com:99999/hook", "is not a URL the HTTP client can read: Failed to parse"),
    ("https://crm_example..com/hook", "host 'crm_example..com' is neither a DNS name nor an IP address written "
                                      "canonically"),
])
def test_what_else_the_check_refuses_exactly(url, why):
    with pytest.raises(UrlRefused) as refused:
        check_url(url)
    assert str(refused.value) == why


@pytest.mark.parametrize(("url", "host", "port", "loopback"), [
    ("https://crm.example.com/hooks/billing?x=1", "crm.example.com", 443, False),
    ("HTTPS://CRM.Example.COM:8443/hooks", "crm.example.com", 8443, False),
    ("https://93.184.216.34/hooks", "93.184.216.34", 443, False),
    ("https://[2606:4700::6810:84e5]/hooks", "2606:4700::6810:84e5", 443, False),
    ("http://127.0.0.1:8080/hooks", "127.0.0.1", 8080, True),
    ("http://localhost/hooks", "localhost", 80, True),
    ("http://[::1]:9/hooks", "::1", 9, True),
    ("https://xn--bcher-kva.example/hooks", "xn--bcher-kva.example", 443, False),
])
def test_plain_urls_are_allowed_and_read_as_the_http_client_reads_them(url, host, port, loopback):
    target = check_url(url)
    assert (target.host, target.port, target.loopback) == (host, port, loopback)


def test_allow_private_admits_a_private_address_literal_but_never_clear_text_to_it():
    for url in ("https://10.0.0.7/hook", "https://169.254.169.254/x", "https://[fd00::1]/hook"):
        with pytest.raises(UrlRefused):
            check_url(url)
        assert check_url(url, allow_private=True).allow_private is True
    with pytest.raises(UrlRefused) as refused:
        check_url("http://10.0.0.7/hook", allow_private=True)
    assert str(refused.value).startswith("plain http is refused except to a loopback host")


# --------------------------------------------------------------------------
# Refused when sent: the name resolved at send time, once, and that address connected


@pytest.mark.parametrize(("address", "kind"), [("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"),
                                               ("10.1.2.3", "private"), ("::1", "loopback"),
                                               ("::ffff:127.0.0.1", "loopback"), ("fe80::1%2", "link-local")])
def test_a_name_that_resolves_to_a_refused_address_at_send_time_is_refused_without_connecting(server, net, address,
                                                                                              kind):
    port = server.server_address[1]
    net.names["crm.example.com"] = [address]
    refused = _refused_when_sent(f"https://crm.example.com:{port}/hook")
    assert (str(refused), refused.permanent) == (f"crm.example.com resolves to {address}, a {kind} address: {HINT}",
                                                 True)
    assert (net.asked, net.connects, server.hits) == (["crm.example.com"], [], [])


def test_one_refused_address_among_the_answers_refuses_the_name(net):
    net.names["crm.example.com"] = ["93.184.216.34", "127.0.0.1"]
    refused = _refused_when_sent("https://crm.example.com/hook")
    assert str(refused) == f"crm.example.com resolves to 127.0.0.1, a loopback address: {HINT}"
    assert net.connects == []


def test_each_attempt_resolves_once_and_connects_to_the_very_address_it_checked(server, net):
    """DNS rebinding: the name is asked once per attempt, and the socket goes
    to the address that answer gave (never to the name again)."""
    port = server.server_address[1]
    answers = iter([["127.0.0.1"], ["127.0.0.1"], ["93.184.216.34"]])
    net.names["localhost"] = lambda: next(answers)
    exporter = WebhookExporter(_instance(f"http://localhost:{port}/hook"))
    assert exporter.deliver(_delivery(key="msg_a")) == "msg_a"
    exporter._session = None  # a new connection, as a later run makes  # noqa: SLF001
    assert exporter.deliver(_delivery(key="msg_b")) == "msg_b"
    assert (net.asked, net.connects) == (["localhost", "localhost"], [("127.0.0.1", port), ("127.0.0.1", port)])
    assert server.hits == [("/hook", f"localhost:{port}"), ("/hook", f"localhost:{port}")]  # the Host kept
    exporter._session = None  # noqa: SLF001
    refused = _send(exporter)
    assert (str(refused), refused.permanent) == (
        f"localhost resolves to 93.184.216.34, not a loopback address: plain http is refused except to loopback", True)
    assert len(net.connects) == 2 and len(server.hits) == 2


def _send(exporter: WebhookExporter) -> DeliveryError:
    with pytest.raises(DeliveryError) as refused:
        exporter.deliver(_delivery(key="msg_c"))
    return refused.value


def test_allow_private_lets_a_name_reach_a_private_address(server, net):
    port = server.server_address[1]
    net.names["crm.internal.example"] = ["127.0.0.1"]
    target = check_url(f"https://crm.internal.example:{port}/hook", allow_private=True)
    seen: list[str] = []
    session = guarded_session(target, on_connect=seen.append)
    with pytest.raises(Exception) as failed:  # the recorder speaks plain HTTP: TLS fails, after connecting
        session.post(target.url, data=b"{}", timeout=2)
    assert not isinstance(failed.value, DestinationRefused)
    assert seen == ["127.0.0.1"] and net.connects == [("127.0.0.1", port)]


def test_a_redirect_to_a_private_address_is_not_followed(server, net):
    port = server.server_address[1]
    server.answer = (302, "http://169.254.169.254/latest/meta-data/iam")
    refused = _refused_when_sent(f"http://127.0.0.1:{port}/hook")
    assert (str(refused), refused.permanent) == (
        "HTTP 302 Found: redirect to http://169.254.169.254/latest/meta-data/iam not followed (webhooks never follow "
        "redirects; point url at the final address)", False)
    # the guarded session never follows one, even when asked to
    session = guarded_session(check_url(f"http://127.0.0.1:{port}/hook"))
    answer = session.get(f"http://127.0.0.1:{port}/hook", allow_redirects=True, timeout=2)
    assert answer.status_code == 302
    assert net.connects == [("127.0.0.1", port), ("127.0.0.1", port)]
    assert server.hits == [("/hook", f"127.0.0.1:{port}"), ("/hook", f"127.0.0.1:{port}")]


def test_the_guarded_session_connects_nowhere_but_its_checked_host(server, net):
    port = server.server_address[1]
    net.names["other.example"] = ["127.0.0.1"]
    session = guarded_session(check_url(f"http://127.0.0.1:{port}/hook"))
    with pytest.raises(DestinationRefused) as refused:
        session.post(f"http://other.example:{port}/hook", data=b"{}", timeout=2)
    assert str(refused.value) == f"a connection to other.example:{port} is not 127.0.0.1:{port}: refused"
    assert (net.connects, server.hits) == ([], [])


def test_proxy_variables_of_the_environment_are_ignored(server, net, monkeypatch):
    port = server.server_address[1]
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    assert WebhookExporter(_instance(f"http://127.0.0.1:{port}/hook")).deliver(_delivery()) == "msg_unit"
    assert net.connects == [("127.0.0.1", port)]


# --------------------------------------------------------------------------
# hub check


CHECKED = [
    ("http://evil.example\\\\@127.0.0.1/hook",
     "'http://evil.example\\\\@127.0.0.1/hook': holds a backslash, which HTTP clients and URL parsers read "
     "differently: write the URL without it"),
    ("http://2130706433/hook", "'http://2130706433/hook': host '2130706433' is an IPv4 address written other than in "
                               "dotted decimal (HTTP clients read it as an address): write it as four decimal "
                               "numbers, a.b.c.d"),
    ("https://u@crm.example.com/hook", "'https://u@crm.example.com/hook': holds user-info (user@ before the host): "
                                       "put credentials in the exporter's secret, never in the URL"),
    ("https://10.0.0.7/hook", f"'https://10.0.0.7/hook': 10.0.0.7 is a private address: {HINT}"),
]


def test_hub_check_refuses_each_bypass_naming_the_exporter_table_and_key_url(workspace, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)
    for url, message in CHECKED:
        workspace.config(BASE + f'[[exporters]]\nname = "crm"\ntype = "webhook"\nurl = "{url}"\n'
                                f'secret_env = "{SECRET_ENV}"\n')
        checked = workspace.hub("check")
        assert checked.exit_code == 2, checked.output
        assert f'exporters[1] "crm": url: {message}' in " ".join(checked.output.split()), checked.output
    workspace.config(BASE + f'[[exporters]]\nname = "crm"\ntype = "webhook"\nurl = "https://10.0.0.7/hook"\n'
                            f'secret_env = "{SECRET_ENV}"\nallow_private = true\n')
    assert workspace.hub("check").exit_code == 0


# --------------------------------------------------------------------------
# TLS: connected to the checked address, verified for the name


def _self_signed(folder, name: str):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_goes_to_the_checked_address_with_the_names_sni_host_header_and_certificate_check(tmp_path, net):
    import ssl

    cert, key = _self_signed(tmp_path, "crm.test")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.hits, srv.answer = [], (200, None)  # type: ignore[attr-defined]
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        port = srv.server_address[1]
        net.names["crm.test"] = ["127.0.0.1"]
        net.names["other.test"] = ["127.0.0.1"]
        exporter = WebhookExporter(_instance(f"https://crm.test:{port}/hook", allow_private=True, ca_file=str(cert)))
        assert exporter.deliver(_delivery()) == "msg_unit"
        assert (net.connects, names, srv.hits) == ([("127.0.0.1", port)], ["crm.test"],  # type: ignore[attr-defined]
                                                   [("/hook", f"crm.test:{port}")])
        # the certificate is checked for the URL's name, not for the address connected to
        wrong = WebhookExporter(_instance(f"https://other.test:{port}/hook", allow_private=True, ca_file=str(cert)))
        with pytest.raises(DeliveryError) as failed:
            wrong.deliver(_delivery())
        assert str(failed.value).startswith("TLS failed: ") and failed.value.permanent is False
        assert len(srv.hits) == 1  # type: ignore[attr-defined]
    finally:
        srv.shutdown()
        srv.server_close()
