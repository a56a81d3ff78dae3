"""Host names are checked before any connection, and read one way by every part of it.

Malformed names raise ConfigurationError (not the UnicodeError, TypeError or ssl.SSLError of the
standard library), IPv4 spellings the resolver and the certificate check read differently are
refused, a trailing dot matches the name without it, and the characters IDNA 2003 and 2008 read
apart are refused: through securelink.connect, wrap_client, securelink.aio.open_connection, the
contexts' own wrap_socket and wrap_bio, and HTTP clients given a securelink context.  The
wildcard rules docs/contexts.md states are checked on real handshakes too.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx
import pytest

import securelink
import securelink.aio
from securelink import ConfigurationError, HostnameMismatchError, _hostnames, devca

from .helpers import TIMEOUT, handshake, tls_server

T = TypeVar("T")

#: 305 characters in labels of at most 63: OpenSSL refused it (SSL3_EXT_INVALID_SERVERNAME).
LONG_305 = ".".join(["abcdefghi"] * 29) + ".abcdefghijklmno"
HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def run(coro: Awaitable[T]) -> T:
    """Run *coro* in a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


def server_ctx(ca: devca.CertificateAuthority, *names: str) -> ssl.SSLContext:
    """A securelink server context with a certificate for *names*, recording the SNI it gets."""
    ctx = securelink.server_context(ca.issue(*names, usage=devca.Usage.SERVER).server_options())
    ctx.sni_callback = _record_sni
    return ctx


SNI_SEEN: list[str | None] = []


def _record_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
    SNI_SEEN.append(name)


@pytest.fixture(autouse=True)
def _fresh_sni_record() -> None:
    SNI_SEEN.clear()


def plain_client(ca: devca.CertificateAuthority) -> ssl.SSLContext:
    """The standard library's client context trusting the test CA (the control in some tests)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no default paths: SSL_CERT_FILE is not read
    ctx.load_verify_locations(cadata=ca.cert_pem.decode())
    return ctx


@pytest.fixture
def client(ca: devca.CertificateAuthority) -> ssl.SSLContext:
    """A securelink client context trusting the test CA."""
    return securelink.client_context(ca.client_options())


@pytest.fixture
def options(ca: devca.CertificateAuthority) -> securelink.ClientOptions:
    """Client options trusting the test CA."""
    return ca.client_options()


@contextmanager
def idle_listener() -> Iterator[socket.socket]:
    """A socket listening on 127.0.0.1 that accepts nothing until asked (see nothing_arrived)."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener
    finally:
        listener.close()


def nothing_arrived(listener: socket.socket) -> bool:
    """Whether no TCP connection reached *listener* (the kernel completes them before accept)."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def refusal(exc: pytest.ExceptionInfo[ConfigurationError], field: str) -> ConfigurationError:
    """The ConfigurationError itself, after checking its exact class and field."""
    assert type(exc.value) is ConfigurationError
    assert exc.value.field == field
    return exc.value


# --- the rules, one name at a time -----------------------------------------------------------

ACCEPTED = [
    ("localhost", "localhost"),
    ("example.com", "example.com"),
    ("example.com.", "example.com"),  # one trailing dot: the same name (Go, browsers)
    ("LOCALHOST.", "LOCALHOST"),
    ("a_b.example", "a_b.example"),  # underscores: internal names have them (Go accepts them)
    ("1e100.net", "1e100.net"),
    ("127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", "0.0.0.0"),
    ("::1", "::1"),
    ("2001:db8::1", "2001:db8::1"),
    ("fe80::1%eth0", "fe80::1"),  # a certificate holds no zone
    ("xn--strae-oqa.example", "xn--strae-oqa.example"),  # A-labels as they are
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),  # IDNA maps case, as 2008's UTS #46 does
    ("bücher.example\u3002", "xn--bcher-kva.example"),  # an ideographic full stop is a dot
    ("\uff11\uff12\uff17.0.0.1", "127.0.0.1"),  # fullwidth digits: the resolver reads the same
    ("a" * 63 + ".example", "a" * 63 + ".example"),
    (".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61])),  # 253
    (b"example.com", "example.com"),
]


@pytest.mark.parametrize(("name", "expected"), ACCEPTED)
def test_accepted(name: str | bytes, expected: str) -> None:
    """A well-formed name comes back as the form to verify and send, and is stable."""
    assert _hostnames.checked(name) == expected
    assert _hostnames.checked(expected) == expected


#: (name, words in the message, words in the hint)
REFUSED = [
    ("", "is an empty string", "Pass the "),
    ("a..", "empty label", "one trailing dot"),
    (".x", "empty label", "single dots"),
    ("example.com..", "empty label", "one trailing dot"),
    (".", "empty label", "single dots"),
    ("a" * 64 + ".example", "label of 64 characters", "between two dots"),
    (".".join(["a" * 63] * 3 + ["b" * 62]), "254 characters long", "came from"),
    (LONG_305, "305 characters", "came from"),
    ("x" * 5000, "5000 characters", "came from"),
    ("\udcff.example", "lone surrogate (U+DCFF) at position 0", "surrogateescape"),
    ("exa\x00mple.com", "NUL character (U+0000) at position 3", "came from"),
    ("example.com\n", "control character (U+000A)", "line ends"),
    ("exa mple.com", "a space at position 3", "without spaces"),
    ("0177.0.0.1", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("0x7f.0.0.1", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("127.1", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("2130706433", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("127.000.0.1", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("010.0.0.1", "resolver reads it as 8.0.0.1", "'8.0.0.1'"),
    ("\uff10\uff11\uff17\uff17.0.0.1", "resolver reads it as 127.0.0.1", "'127.0.0.1'"),
    ("127.0.0.1.", "trailing dot", "'127.0.0.1'"),
    ("256.1.1.1", "ends in a number but is not an IPv4 address", "192.0.2.1"),
    ("1.2.3.4.5", "ends in a number but is not an IPv4 address", "192.0.2.1"),
    ("example.123", "ends in a number", "cannot be a number"),
    ("[::1]", "in brackets", "without brackets: '::1'"),
    ("[example.com]", "in brackets", "such as '2001:db8::1'"),
    ("example.com:443", "a host and a port", "('example.com') and the port separately"),
    ("https://example.com/", "looks like a URL", "without a scheme"),
    ("1:2:3", "not an IPv6 address", "2001:db8::1"),
    ("*.example.com", "contains '*'", "pattern certificates use"),
    ("exa$mple.com", "contains '$'", "letters, digits"),
    ("-example.com", "starts or ends with '-'", "hyphen"),
    ("example-.com", "starts or ends with '-'", "hyphen"),
    ("straße.example", "'ß' (sharp s)", "'xn--strae-oqa.example'"),
    ("STRASSE.straße.example", "IDNA 2003", "'strasse.xn--strae-oqa.example'"),
    ("ς.example", "'ς' (final sigma)", "'xn--3xa.example'"),
    ("\u1e9e.example", "'ẞ' (capital sharp s)", "'xn--zca.example'"),
    ("a\u0221.example", "U+0221, which IDNA 2003", "A-label"),  # new in Unicode 4.0
    ("\u2c00.example", "U+2C00, which IDNA 2003", "A-label"),  # Unicode 4.1
    ("a\u200db.example", "zero width joiner (U+200D)", "A-label (the xn-- form)"),
    ("a\u200cb.example", "zero width non-joiner (U+200C)", "A-label (the xn-- form)"),
    ("a\u2028b.example", "cannot be encoded as an internationalised name", "A-label"),
    ("a\u05d0.example", "cannot be encoded as an internationalised name", "A-label"),  # bidi
    ("\u00ad.example", "maps to nothing", "soft hyphens"),
    ("\u00e9" * 60 + ".example", "once encoded", "between two dots"),
    (b"\xff.example", "bytes that are not ASCII", "as a str"),
]


@pytest.mark.parametrize(("name", "message", "hint"), REFUSED)
@pytest.mark.parametrize("field", ["server_hostname", "host"])
def test_refused(name: str | bytes, message: str, hint: str, field: str) -> None:
    """A name that is malformed or could be read two ways: what is wrong, and what to write."""
    with pytest.raises(ConfigurationError) as exc:
        _hostnames.checked(name, field)
    error = refusal(exc, field)
    assert error.message.startswith(f"{field} ")
    assert message in error.message
    assert hint in error.hint


def test_not_a_string() -> None:
    """A name of another type is a TypeError, as the standard library's own arguments are."""
    with pytest.raises(TypeError, match="server_hostname must be a str, not int"):
        _hostnames.checked(127)  # type: ignore[arg-type]


# --- what the standard library raised, now ConfigurationError ---------------------------------

#: The crashes the issue listed: the name, and what a plain context raises for it.
CRASHES = [
    ("a..", UnicodeError),
    (".x", UnicodeError),
    ("a" * 64 + ".example", UnicodeError),
    ("\udcff.example", UnicodeError),
    ("exa\x00mple.com", TypeError),
    (LONG_305, ssl.SSLError),
    ("", ValueError),
]


class TestStandardLibraryCrashes:
    """The crash cases, through the contexts' own wrap_socket and wrap_bio."""

    @pytest.mark.parametrize("name", [name for name, _ in CRASHES])
    def test_wrap_socket(self, client: ssl.SSLContext, name: str) -> None:
        """wrap_socket refuses before it takes the socket over (which is left to the caller)."""
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ConfigurationError) as exc:
                client.wrap_socket(a, server_hostname=name)
            refusal(exc, "server_hostname")
            assert a.fileno() != -1  # not detached into a half-built SSLSocket: still usable
            a.sendall(b"x")
            assert b.recv(1) == b"x"

    @pytest.mark.parametrize(("name", "foreign"), CRASHES)
    def test_wrap_bio(self, client: ssl.SSLContext, name: str, foreign: type) -> None:
        """wrap_bio (what asyncio and so aiohttp use) refuses the same names."""
        plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with pytest.raises(foreign) as before:  # the control: what the stdlib raises
            plain.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=name)
        assert not isinstance(before.value, securelink.SecureLinkError)
        with pytest.raises(ConfigurationError) as exc:
            client.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=name)
        refusal(exc, "server_hostname")

    def test_wrap_bio_deviation(self, client: ssl.SSLContext) -> None:
        """wrap_bio sees straße before the IDNA 2003 codec turns it into strasse."""
        plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        obj = plain.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="straße.example")
        assert obj.server_hostname == "strasse.example"  # the control: silently another name
        with pytest.raises(ConfigurationError) as exc:
            client.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="straße.example")
        assert "xn--strae-oqa.example" in refusal(exc, "server_hostname").hint

    def test_wrap_bio_trailing_dot(self, client: ssl.SSLContext) -> None:
        """wrap_bio verifies and sends the name without its trailing dot."""
        obj = client.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.test.")
        assert obj.server_hostname == "example.test"

    def test_server_side_unchanged(self, ca: devca.CertificateAuthority) -> None:
        """A server-side wrap has no name to check: the standard library's own rule stands."""
        ctx = server_ctx(ca, "localhost")
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ValueError, match="only be specified in client mode") as exc:
                ctx.wrap_socket(a, server_side=True, server_hostname="localhost")
            assert type(exc.value) is ValueError
            with ctx.wrap_socket(a, server_side=True, do_handshake_on_connect=False) as tls:
                assert tls.server_hostname is None


# --- trailing dot: real handshakes ------------------------------------------------------------


class TestTrailingDot:
    """example.test. is example.test: it matches the certificate, and SNI goes without the dot."""

    def test_wrap_socket(self, ca: devca.CertificateAuthority, client: ssl.SSLContext) -> None:
        """The context's own wrap_socket (http.client, urllib3, requests) matches it."""
        srv = server_ctx(ca, "example.test")
        plain = plain_client(ca)
        _, before = handshake(srv, plain, server_hostname="example.test.")
        assert isinstance(before.error, ssl.SSLCertVerificationError)  # the control
        SNI_SEEN.clear()
        _, after = handshake(srv, client, server_hostname="example.test.")
        assert after.error is None
        assert after.received == b"pong"
        assert SNI_SEEN == ["example.test"]

    def test_connect(
        self, ca: devca.CertificateAuthority, options: securelink.ClientOptions
    ) -> None:
        """securelink.connect to 127.0.0.1 with server_hostname='example.test.'."""
        with (
            tls_server(server_ctx(ca, "example.test")) as (port, server),
            securelink.connect(
                "127.0.0.1", port, options, server_hostname="example.test.", timeout=TIMEOUT
            ) as tls,
        ):
            assert tls.server_hostname == "example.test"
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert server.error is None
        assert SNI_SEEN == ["example.test"]

    def test_wrap_client(
        self, ca: devca.CertificateAuthority, options: securelink.ClientOptions
    ) -> None:
        """securelink.wrap_client with 'example.test.'."""
        with tls_server(server_ctx(ca, "example.test")) as (port, server):
            raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            with securelink.wrap_client(raw, options, server_hostname="example.test.") as tls:
                tls.sendall(b"ping")
                assert tls.recv(4) == b"pong"
        assert server.error is None
        assert SNI_SEEN == ["example.test"]

    def test_open_connection(
        self, ca: devca.CertificateAuthority, options: securelink.ClientOptions
    ) -> None:
        """securelink.aio.open_connection with 'example.test.'."""

        async def exchange(port: int) -> bytes:
            reader, writer = await securelink.aio.open_connection(
                "127.0.0.1", port, options, server_hostname="example.test."
            )
            assert writer.get_extra_info("ssl_object").server_hostname == "example.test"
            writer.write(b"ping")
            data = await reader.read(4)
            writer.close()
            await writer.wait_closed()
            return data

        with tls_server(server_ctx(ca, "example.test")) as (port, server):
            assert run(exchange(port)) == b"pong"
        assert server.error is None
        assert SNI_SEEN == ["example.test"]

    def test_wildcard(self, ca: devca.CertificateAuthority, client: ssl.SSLContext) -> None:
        """A name with a trailing dot matches a wildcard as the name without it does."""
        _, side = handshake(
            server_ctx(ca, "*.example.test"), client, server_hostname="a.example.test."
        )
        assert side.error is None

    def test_httpx(self, ca: devca.CertificateAuthority, client: ssl.SSLContext) -> None:
        """httpx, given the name as its sni_hostname, connects (its wrap_socket strips the dot)."""
        with tls_server(server_ctx(ca, "example.test"), reply=HTTP_OK) as (port, server):
            with httpx.Client(verify=client, timeout=TIMEOUT) as http:
                response = http.get(
                    f"https://127.0.0.1:{port}/", extensions={"sni_hostname": "example.test."}
                )
            assert response.text == "ok"
        assert server.error is None
        assert SNI_SEEN == ["example.test"]


# --- refused before any connection -----------------------------------------------------------

#: Hosts the resolver reads as 127.0.0.1, and OpenSSL's check as something else (or a name).
NOT_DOTTED_QUAD = ["0177.0.0.1", "0x7f.0.0.1", "127.1", "2130706433", "127.000.0.1"]


class TestRefusedBeforeConnecting:
    """No TCP connection is made for a name that is refused."""

    @pytest.mark.parametrize("host", NOT_DOTTED_QUAD)
    def test_connect_host(self, options: securelink.ClientOptions, host: str) -> None:
        """connect('0177.0.0.1', ...) would reach 127.0.0.1: refused, nothing connected."""
        with idle_listener() as listener:
            port = listener.getsockname()[1]
            with pytest.raises(ConfigurationError) as exc:
                securelink.connect(host, port, options, timeout=TIMEOUT)
            error = refusal(exc, "host")
            assert error.hint == "Write it as '127.0.0.1'."
            assert nothing_arrived(listener)

    def test_the_hole_it_closes(self, ca: devca.CertificateAuthority) -> None:
        """The standard library connects to 127.0.0.1 and accepts a certificate for 177.0.0.1."""
        if socket.getaddrinfo("0177.0.0.1", 0, socket.AF_INET)[0][4][0] != "127.0.0.1":
            pytest.skip("this resolver does not read leading zeros as octal")
        srv = server_ctx(ca, "177.0.0.1")
        plain = plain_client(ca)
        with (
            tls_server(srv) as (port, server),
            socket.create_connection(("0177.0.0.1", port), timeout=TIMEOUT) as raw,
            plain.wrap_socket(raw, server_hostname="0177.0.0.1") as tls,
        ):
            assert tls.getpeername()[0] == "127.0.0.1"  # verified 177.0.0.1 instead
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert server.error is None
        with idle_listener() as listener:
            with pytest.raises(ConfigurationError) as exc:
                securelink.connect(
                    "127.0.0.1",
                    listener.getsockname()[1],
                    ca.client_options(),
                    server_hostname="0177.0.0.1",
                )
            refusal(exc, "server_hostname")
            assert nothing_arrived(listener)

    @pytest.mark.parametrize(
        ("server_hostname", "hint"),
        [
            ("", "not replaced by the host"),
            ("straße.example", "xn--strae-oqa.example"),
            ("[::1]", "'::1'"),
            ("a..", "single dots"),
            ("exa\x00mple.com", "came from"),
        ],
    )
    def test_connect_server_hostname(
        self, options: securelink.ClientOptions, server_hostname: str, hint: str
    ) -> None:
        """A refused server_hostname: nothing connected, and an empty one is not the host."""
        with idle_listener() as listener:
            port = listener.getsockname()[1]
            with pytest.raises(ConfigurationError) as exc:
                securelink.connect(
                    "127.0.0.1", port, options, server_hostname=server_hostname, timeout=TIMEOUT
                )
            assert hint in refusal(exc, "server_hostname").hint
            assert nothing_arrived(listener)

    def test_wrap_client_closes_the_socket(self, options: securelink.ClientOptions) -> None:
        """wrap_client closes the socket it was given, as on every failure."""
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(ConfigurationError) as exc:
                securelink.wrap_client(a, options, server_hostname="straße.example")
            refusal(exc, "server_hostname")
            assert a.fileno() == -1

    @pytest.mark.parametrize(
        ("host", "server_hostname", "field"),
        [
            ("0177.0.0.1", None, "host"),
            ("127.1", "localhost", "host"),
            ("127.0.0.1", "", "server_hostname"),
            ("127.0.0.1", "straße.example", "server_hostname"),
            ("127.0.0.1", "0x7f.0.0.1", "server_hostname"),
        ],
    )
    def test_open_connection(
        self,
        options: securelink.ClientOptions,
        host: str,
        server_hostname: str | None,
        field: str,
    ) -> None:
        """securelink.aio.open_connection refuses the same names, before connecting."""
        with idle_listener() as listener:
            port = listener.getsockname()[1]
            with pytest.raises(ConfigurationError) as exc:
                run(
                    securelink.aio.open_connection(
                        host, port, options, server_hostname=server_hostname
                    )
                )
            refusal(exc, field)
            assert nothing_arrived(listener)

    def test_httpx(self, client: ssl.SSLContext) -> None:
        """An HTTP client that passes the name to wrap_socket gets ConfigurationError as is."""
        with idle_listener() as listener:
            port = listener.getsockname()[1]
            with (
                httpx.Client(verify=client, timeout=TIMEOUT) as http,
                pytest.raises(ConfigurationError) as exc,
            ):
                http.get(
                    f"https://127.0.0.1:{port}/", extensions={"sni_hostname": "straße.example"}
                )
            refusal(exc, "server_hostname")
            # httpx connects before it wraps: the connection arrived, and was closed unused.
            assert not nothing_arrived(listener)


# --- internationalised names: real handshakes -------------------------------------------------


class TestInternationalisedNames:
    """A-labels are accepted as they are; Unicode names are encoded where 2003 and 2008 agree."""

    def test_a_label(
        self, ca: devca.CertificateAuthority, options: securelink.ClientOptions
    ) -> None:
        """The IDNA 2008 A-label matches a certificate issued for it."""
        with (
            tls_server(server_ctx(ca, "xn--strae-oqa.example")) as (port, server),
            securelink.connect(
                "127.0.0.1",
                port,
                options,
                server_hostname="xn--strae-oqa.example",
                timeout=TIMEOUT,
            ) as tls,
        ):
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert server.error is None
        assert SNI_SEEN == ["xn--strae-oqa.example"]

    def test_unicode_name(
        self, ca: devca.CertificateAuthority, options: securelink.ClientOptions
    ) -> None:
        """bücher.example (no deviation characters) matches a certificate for its A-label."""
        with (
            tls_server(server_ctx(ca, "xn--bcher-kva.example")) as (port, server),
            securelink.connect(
                "127.0.0.1", port, options, server_hostname="bücher.example", timeout=TIMEOUT
            ) as tls,
        ):
            assert tls.server_hostname == "xn--bcher-kva.example"
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert server.error is None

    def test_deviation_through_wrap_socket(
        self, ca: devca.CertificateAuthority, client: ssl.SSLContext
    ) -> None:
        """straße.example through wrap_socket: refused, where the stdlib would check strasse."""
        srv = server_ctx(ca, "xn--strae-oqa.example")
        plain = plain_client(ca)
        _, before = handshake(srv, plain, server_hostname="straße.example")
        assert isinstance(before.error, ssl.SSLCertVerificationError)  # the control
        assert "strasse.example" in str(before.error)
        a, b = socket.socketpair()
        with a, b, pytest.raises(ConfigurationError) as exc:
            client.wrap_socket(a, server_hostname="straße.example")
        assert "'xn--strae-oqa.example'" in refusal(exc, "server_hostname").hint


# --- wildcards (docs/contexts.md, "Host names") -----------------------------------------------


class TestWildcards:
    """What a wildcard covers, as OpenSSL (and so every securelink client) matches it."""

    @pytest.mark.parametrize(
        ("pattern", "name"),
        [
            ("*.co.uk", "example.co.uk"),  # no public suffix list: a private CA can issue this
            ("*.example.test", "www.example.test"),
            ("*.example.test", "WWW.Example.Test"),  # names match without regard to case
        ],
    )
    def test_matches(
        self, ca: devca.CertificateAuthority, client: ssl.SSLContext, pattern: str, name: str
    ) -> None:
        """The wildcard covers exactly one left-most label."""
        _, side = handshake(server_ctx(ca, pattern), client, server_hostname=name)
        assert side.error is None

    @pytest.mark.parametrize(
        ("pattern", "name"),
        [
            ("*.example.test", "a.b.example.test"),  # one label, not two
            ("*.example.test", "example.test"),  # not the parent itself
            ("*.test", "example.test"),  # a wildcard needs two labels after it
            ("f*.example.test", "foo.example.test"),  # no partial wildcards
            ("www.*.test", "www.example.test"),  # only in the left-most label
        ],
    )
    def test_does_not_match(
        self, ca: devca.CertificateAuthority, client: ssl.SSLContext, pattern: str, name: str
    ) -> None:
        """Everything else is a mismatch."""
        _, side = handshake(server_ctx(ca, pattern), client, server_hostname=name)
        assert type(side.error) is HostnameMismatchError
        assert side.error.expected == name
        assert side.error.presented == (pattern,)
