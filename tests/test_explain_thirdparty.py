"""explain() and translate_errors() on the errors httpx, requests, urllib3 and aiohttp raise.

Every error examined here comes from a real connection on 127.0.0.1 made by the real library,
with a stdlib context (``ssl.create_default_context(cafile=...)``, or a CA file for requests),
as code that never used securelink makes them: nothing depends on ``SSL_CERT_FILE`` or certifi.
The servers are started by each test and stopped by it (``serve`` joins its thread).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
import urllib3

import securelink
from securelink import (
    CertificateExpiredError,
    CertificateVerificationError,
    ClientAuth,
    ClientCertificateRequiredError,
    HostnameMismatchError,
    NothingListeningError,
    NotTLSError,
    UnknownAuthorityError,
)

from .explain_peers import (
    LOOPBACK,
    TIMEOUT,
    Pki,
    build_pki,
    closed_port,
    serve,
    stdlib_server_context,
    summary,
    tls_handler,
)


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests."""
    return build_pki(tmp_path_factory.mktemp("explain-thirdparty"))


# --- the clients, as code that never heard of securelink writes them ---------------------------


def _httpx(url: str, ca: Path) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    with httpx.Client(verify=ctx, trust_env=False, timeout=TIMEOUT) as client:
        client.get(url)


def _httpx_async(url: str, ca: Path) -> None:
    async def get() -> None:
        ctx = ssl.create_default_context(cafile=ca)
        async with httpx.AsyncClient(verify=ctx, trust_env=False, timeout=TIMEOUT) as client:
            await client.get(url)

    asyncio.run(get())


def _requests(url: str, ca: Path) -> None:
    with requests.Session() as session:
        session.trust_env = False  # no proxy or CA bundle from the environment
        session.get(url, verify=str(ca), timeout=TIMEOUT)


def _urllib3(url: str, ca: Path) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    with urllib3.PoolManager(ssl_context=ctx, retries=False, timeout=TIMEOUT) as pool:
        pool.request("GET", url)


def _aiohttp(url: str, ca: Path) -> None:
    async def get() -> None:
        ctx = ssl.create_default_context(cafile=ca)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=ctx) as response,
        ):
            await response.read()

    asyncio.run(get())


CLIENTS: dict[str, Callable[[str, Path], None]] = {
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "requests": _requests,
    "urllib3": _urllib3,
    "aiohttp": _aiohttp,
}


def _failure(client: str, url: str, ca: Path, *, raw_ok: bool = False) -> Exception:
    """The exception *client* raises for *url*: the library's own class, never securelink's.

    With *raw_ok*, the raw ssl error too: some libraries let it through at times (httpx's async
    client, when a TLS 1.3 server's alert arrives while the response is read).
    """
    with pytest.raises(Exception) as info:  # noqa: PT011 - each library has its own classes
        CLIENTS[client](url, ca)
    error = info.value
    assert not isinstance(error, securelink.SecureLinkError)
    library = client.split("-")[0]
    allowed = {library, "ssl"} if raw_ok else {library}
    assert type(error).__module__.split(".")[0] in allowed, repr(error)
    return error


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> str:
    """The name of each client library (httpx also through its async client)."""
    name: str = request.param
    return name


@pytest.fixture
def expired_server(xpki: Pki) -> Iterator[int]:
    """A server presenting an expired certificate for localhost."""
    with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _):
        yield port


@pytest.fixture
def stranger_server(xpki: Pki) -> Iterator[int]:
    """A server whose certificate comes from a CA the clients do not trust."""
    ctx = securelink.server_context(xpki.stranger_server.server_options())
    with serve(tls_handler(ctx)) as (port, _):
        yield port


@pytest.fixture
def dns_only_server(xpki: Pki) -> Iterator[int]:
    """A server whose certificate holds only the name localhost (no IP address)."""
    ctx = securelink.server_context(xpki.dns_only.server_options())
    with serve(tls_handler(ctx)) as (port, _):
        yield port


@pytest.fixture
def mtls_server(xpki: Pki) -> Iterator[int]:
    """A server that requires a client certificate (TLS 1.3: it refuses after the handshake)."""
    ctx = securelink.server_context(
        xpki.server.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=xpki.ca.certificate
        )
    )
    with serve(tls_handler(ctx)) as (port, _):
        yield port


# --- the five failures, from each library -------------------------------------------------------


class TestEachLibrary:
    """Each library's real error is explained as the socket path explains the same failure."""

    def test_expired(self, client: str, xpki: Pki, expired_server: int) -> None:
        """An expired server certificate: CertificateExpiredError with the stdlib's code."""
        original = _failure(client, f"https://localhost:{expired_server}/", xpki.ca_file)
        e = securelink.explain(original, server_hostname="localhost")
        assert type(e) is CertificateExpiredError
        assert e.__cause__ is original
        assert (e.verify_code, e.verify_message) == (10, "certificate has expired")
        assert (e.server_hostname, e.role, e.side) == ("localhost", "client", "local")
        assert e.reason == "CERTIFICATE_VERIFY_FAILED"

    def test_expired_with_peer(self, client: str, xpki: Pki, expired_server: int) -> None:
        """Given the address, the explanation names it; the certificate stays unknown."""
        original = _failure(client, f"https://localhost:{expired_server}/", xpki.ca_file)
        e = securelink.explain(
            original, server_hostname="localhost", peer=(LOOPBACK, expired_server)
        )
        assert type(e) is CertificateExpiredError
        assert e.peer == (LOOPBACK, expired_server)
        assert (e.certificate, e.not_after) == (None, None)  # only a name mismatch looks it up
        assert e.message == (
            f"A certificate presented by the server 'localhost' port {expired_server} has expired."
        )

    def test_unknown_authority(self, client: str, xpki: Pki, stranger_server: int) -> None:
        """A certificate from a CA the client does not trust: UnknownAuthorityError."""
        original = _failure(client, f"https://localhost:{stranger_server}/", xpki.ca_file)
        e = securelink.explain(original)
        assert type(e) is UnknownAuthorityError
        assert e.__cause__ is original
        assert e.verify_code == 20
        assert e.kind == "unknown-issuer"
        assert e.server_hostname is None
        assert "Do not turn verification off" in e.hint

    def test_wrong_name(self, client: str, xpki: Pki, dns_only_server: int) -> None:
        """Connecting by an address the certificate does not hold: HostnameMismatchError."""
        original = _failure(client, f"https://{LOOPBACK}:{dns_only_server}/", xpki.ca_file)
        e = securelink.explain(original)
        assert type(e) is HostnameMismatchError
        assert e.__cause__ is original
        assert e.verify_code == 64
        assert e.expected == LOOPBACK  # from the stdlib's verify_message
        assert (e.presented, e.certificate) == ((), None)  # not known without the connection
        assert e.message == f"The server certificate of the server is not valid for {LOOPBACK!r}."

    def test_wrong_name_with_peer(self, client: str, xpki: Pki, dns_only_server: int) -> None:
        """Given the address, one diagnostic handshake says which names the certificate holds."""
        original = _failure(client, f"https://{LOOPBACK}:{dns_only_server}/", xpki.ca_file)
        e = securelink.explain(original, server_hostname=LOOPBACK, peer=(LOOPBACK, dns_only_server))
        assert type(e) is HostnameMismatchError
        assert e.presented == ("localhost",)
        assert e.certificate == summary(xpki.dns_only.certificate)
        assert (e.expected, e.server_hostname, e.verify_code) == (LOOPBACK, LOOPBACK, 64)
        assert e.message == (
            f"The server certificate of the server {LOOPBACK!r} port {dns_only_server} is valid"
            f" for localhost, not {LOOPBACK!r}."
        )

    def test_client_certificate_required(self, client: str, xpki: Pki, mtls_server: int) -> None:
        """A server requiring a client certificate: ClientCertificateRequiredError.

        With TLS 1.3 the server refuses after the handshake; depending on when the library
        writes and reads, it reports the server's alert or only a closed connection, which the
        diagnostic handshake to *peer* tells apart.
        """
        url = f"https://localhost:{mtls_server}/"
        original = _failure(client, url, xpki.ca_file, raw_ok=True)
        e = securelink.explain(original, server_hostname="localhost", peer=(LOOPBACK, mtls_server))
        assert type(e) is ClientCertificateRequiredError
        assert e.__cause__ is original
        assert e.alert in {"certificate required", None}
        assert (e.side, e.role, e.server_hostname) == ("peer", "client", "localhost")
        assert e.peer == (LOOPBACK, mtls_server)
        assert "ClientOptions(cert=..., key=...)" in e.hint

    def test_nothing_listening(self, client: str, xpki: Pki) -> None:
        """Nothing on the port: NothingListeningError, with the address when it is given."""
        port = closed_port()
        original = _failure(client, f"https://{LOOPBACK}:{port}/", xpki.ca_file)
        e = securelink.explain(original, peer=(LOOPBACK, port))
        assert type(e) is NothingListeningError
        assert e.__cause__ is original
        assert (e.host, e.port, e.errno) == (LOOPBACK, port, 111)
        blind = securelink.explain(original)
        assert type(blind) is NothingListeningError
        assert (blind.host, blind.port) == (None, None)


# --- aiohttp's certificate error, and errors holding none ---------------------------------------


class TestUnusualErrors:
    """Errors built without the ssl module's fields, and exceptions holding no TLS error."""

    def test_aiohttp_certificate_error_through_translate_errors(
        self, xpki: Pki, expired_server: int
    ) -> None:
        """The ssl.CertificateError subclass of aiohttp (no verify_code) becomes the right error."""
        url = f"https://localhost:{expired_server}/"
        with (
            pytest.raises(CertificateExpiredError) as info,
            securelink.translate_errors(server_hostname="localhost"),
        ):
            _aiohttp(url, xpki.ca_file)
        e = info.value
        assert type(e) is CertificateExpiredError
        original = e.__cause__
        assert type(original) is aiohttp.ClientConnectorCertificateError
        assert isinstance(original, ssl.SSLCertVerificationError)
        assert not hasattr(original, "verify_code")  # what used to crash explain()
        assert e.verify_code == 10

    def test_verification_error_without_its_fields(self, xpki: Pki, expired_server: int) -> None:
        """A copy made from a real error's args keeps only the text: what it says is recovered."""
        original = _failure("aiohttp", f"https://localhost:{expired_server}/", xpki.ca_file)
        assert isinstance(original, aiohttp.ClientConnectorCertificateError)
        real = original.certificate_error
        assert type(real) is ssl.SSLCertVerificationError
        copy = ssl.SSLCertVerificationError(*real.args)
        assert not hasattr(copy, "verify_code")
        e = securelink.explain(copy, server_hostname="localhost")
        assert type(e) is CertificateVerificationError
        assert (e.verify_code, e.verify_message) == (1, "certificate has expired")
        assert e.reason == "CERTIFICATE_VERIFY_FAILED"
        assert e.__cause__ is copy

    def test_key_error_is_a_type_error(self) -> None:
        """explain() of an exception that holds no TLS or connection error raises TypeError."""
        with pytest.raises(TypeError, match="holds none") as info:
            securelink.explain(KeyError("x"))
        assert type(info.value) is TypeError
        assert "KeyError('x')" in str(info.value)

    def test_error_raised_while_handling_is_not_a_wrapper(
        self, xpki: Pki, expired_server: int
    ) -> None:
        """A KeyError raised while a TLS error was handled holds none: TypeError, not a guess."""
        original = _failure("urllib3", f"https://localhost:{expired_server}/", xpki.ca_file)
        try:
            try:
                raise original
            except urllib3.exceptions.SSLError:
                raise KeyError("x") from None
        except KeyError as exc:
            later = exc
        assert later.__context__ is original
        with pytest.raises(TypeError):
            securelink.explain(later)
        with pytest.raises(KeyError) as info, securelink.translate_errors():
            raise later
        assert info.value is later

    def test_cycles_end(self) -> None:
        """Exceptions whose causes form a cycle are walked once: TypeError, no recursion."""
        first, second = ValueError("first"), RuntimeError("second")
        first.__cause__, second.__cause__ = second, first
        with pytest.raises(TypeError):
            securelink.explain(first)

    def test_translate_errors_passes_key_error_through(self) -> None:
        """translate_errors() re-raises what is not a TLS or connection error, the same object."""
        error = KeyError("x")
        with pytest.raises(KeyError) as info, securelink.translate_errors():
            raise error
        assert info.value is error
        assert info.value.__cause__ is None

    def test_translate_errors_passes_timeouts_through(self, xpki: Pki) -> None:
        """A timeout is not explained by translate_errors(): it stays what the library raised."""
        listener = socket.create_server((LOOPBACK, 0))
        with listener:  # accepts (the backlog) but never answers: the handshake times out
            port = listener.getsockname()[1]
            ctx = ssl.create_default_context(cafile=xpki.ca_file)
            with (
                pytest.raises(httpx.ConnectTimeout) as info,
                securelink.translate_errors(),
                httpx.Client(verify=ctx, trust_env=False, timeout=0.2) as client,
            ):
                client.get(f"https://localhost:{port}/")
        assert type(info.value) is httpx.ConnectTimeout

    def test_translate_errors_on_requests(self, xpki: Pki, stranger_server: int) -> None:
        """translate_errors() around requests raises the explanation from requests' error."""
        with (
            pytest.raises(UnknownAuthorityError) as info,
            securelink.translate_errors(peer=(LOOPBACK, stranger_server)),
        ):
            _requests(f"https://localhost:{stranger_server}/", xpki.ca_file)
        assert type(info.value) is UnknownAuthorityError
        assert type(info.value.__cause__) is requests.exceptions.SSLError
        assert (info.value.verify_code, info.value.peer) == (20, (LOOPBACK, stranger_server))

    def test_securelink_error_inside_httpx(self, xpki: Pki, expired_server: int) -> None:
        """Through httpx with a securelink context: the explanation inside is given back as is."""
        ctx = securelink.client_context(securelink.ClientOptions(ca=xpki.ca_file))
        with (
            pytest.raises(httpx.ConnectError) as info,
            httpx.Client(verify=ctx, trust_env=False, timeout=TIMEOUT) as client,
        ):
            client.get(f"https://localhost:{expired_server}/")
        inner = securelink.explain(info.value)
        assert type(inner) is CertificateExpiredError
        assert type(inner.__cause__) is ssl.SSLCertVerificationError
        assert inner.certificate == summary(xpki.files["expired"].leaf)


class TestServerSide:
    """explain() of what a stdlib server raises, without its context."""

    def test_plaintext_http_request(self, xpki: Pki) -> None:
        """The raw HTTP_REQUEST error of a server-side handshake is NotTLSError, as the server."""
        plain_server = stdlib_server_context(xpki.files["server"])
        with serve(tls_handler(plain_server)) as (port, served):
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            raw_error = served.first_error()
        assert type(raw_error) is ssl.SSLError
        assert raw_error.reason == "HTTP_REQUEST"
        e = securelink.explain(raw_error, peer=(LOOPBACK, 4242))
        assert type(e) is NotTLSError
        assert (e.side, e.role, e.peer) == ("local", "server", (LOOPBACK, 4242))
        assert e.reason == "HTTP_REQUEST"
        assert e.message == (
            f"The client {LOOPBACK} port 4242 sent a plaintext HTTP request to this TLS server."
        )
        assert e.__cause__ is raw_error
