"""asyncio: failures explained through securelink.aio and through plain asyncio with our contexts.

Every test runs its own event loop under a timeout; servers are closed (``async with``) and
threaded peers joined before the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import securelink
import securelink.aio
from securelink import (
    CertificateExpiredError,
    CertificateRejectedError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    HostnameMismatchError,
    NothingListeningError,
    NotTLSError,
    ProtocolMismatchError,
    SecureLinkError,
    UnknownAuthorityError,
)

from .explain_peers import (
    HTTP_400,
    LOOPBACK,
    ONLY_CAFILE,
    OPENSSL,
    TIMEOUT,
    TLS12,
    TLS13,
    VERSIONS,
    Pki,
    assert_explained,
    build_pki,
    closed_port,
    open_sockets,
    plaintext_handler,
    reset_unless_certificate,
    s_server,
    serve,
    stdlib_server_context,
    summary,
    tls_handler,
)

requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is missing")
REPEAT = 5
MODES = ("write-then-read", "read-only")
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_T = TypeVar("_T")


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run *main* in a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(main, TIMEOUT))


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests, with the flawed ones as files."""
    return build_pki(tmp_path_factory.mktemp("explain-asyncio"))


@pytest.fixture
def client(xpki: Pki) -> ssl.SSLContext:
    """A securelink client that trusts the test root."""
    return securelink.client_context(ClientOptions(ca=xpki.ca_file))


def mtls_server(xpki: Pki, version: str) -> ssl.SSLContext:
    """A securelink server that requires client certificates from the test root."""
    return securelink.server_context(
        xpki.server.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=xpki.ca.certificate,
            max_version=VERSIONS[version],
        )
    )


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The servers' handler: read a chunk, answer, close."""
    await reader.read(1024)
    writer.write(b"pong")
    await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@contextlib.asynccontextmanager
async def aio_server(
    ctx: ssl.SSLContext, errors: list[SecureLinkError] | None = None
) -> AsyncIterator[int]:
    """Run securelink.aio.start_server on 127.0.0.1:0; collect handshake errors in *errors*."""
    server = await securelink.aio.start_server(
        echo,
        LOOPBACK,
        0,
        ctx,
        on_handshake_error=None if errors is None else errors.append,
    )
    async with server:
        yield server.sockets[0].getsockname()[1]


async def session(connect: Callable[[], Awaitable[Streams]], mode: str) -> BaseException:
    """Connect, then write and read (or only read); return what was raised."""
    try:
        reader, writer = await connect()
    except Exception as exc:
        return exc
    try:
        if mode == "write-then-read":
            writer.write(b"ping\n")
            await writer.drain()
        data = await reader.read(1024)
    except Exception as exc:
        return exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    raise AssertionError(f"no error; read {data!r}")


def helper(
    ctx: ssl.SSLContext, port: int, name: str = "localhost"
) -> Callable[[], Awaitable[Streams]]:
    """Connect through securelink.aio.open_connection."""
    return lambda: securelink.aio.open_connection(LOOPBACK, port, ctx, server_hostname=name)


def plain(
    ctx: ssl.SSLContext, port: int, name: str = "localhost"
) -> Callable[[], Awaitable[Streams]]:
    """Connect through asyncio.open_connection with a securelink context."""
    return lambda: asyncio.open_connection(LOOPBACK, port, ssl=ctx, server_hostname=name)


class TestClientVerification:
    """Certificate failures come out of both asyncio clients as the exact securelink class."""

    @pytest.mark.parametrize("how", ["securelink.aio", "asyncio"])
    def test_expired(self, xpki: Pki, client: ssl.SSLContext, how: str) -> None:
        """An expired server certificate, with its date, through asyncio."""
        files = xpki.files["expired"]
        connect = helper if how == "securelink.aio" else plain
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = run(session(connect(client, port), "read-only"))
        assert type(e) is CertificateExpiredError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
        )
        assert e.not_after == files.leaf.not_valid_after_utc
        assert e.certificate == summary(files.leaf)
        # Only securelink.aio knows the address: a bare SSLObject never learns it.
        assert e.peer == ((LOOPBACK, port) if how == "securelink.aio" else None)

    def test_failed_handshake_leaves_no_socket(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """After securelink.aio.open_connection fails, no socket of the client is left open."""
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, served):

            async def main() -> tuple[CertificateExpiredError, set[int]]:
                before = open_sockets()
                with pytest.raises(CertificateExpiredError) as info:
                    await securelink.aio.open_connection(
                        LOOPBACK, port, client, server_hostname="localhost"
                    )
                return info.value, before

            e, before = run(main())
            served.wait_idle()
            assert open_sockets() <= before
        assert e.peer == (LOOPBACK, port)

    @pytest.mark.parametrize("how", ["securelink.aio", "asyncio"])
    def test_unknown_authority_and_hostname(
        self, xpki: Pki, client: ssl.SSLContext, how: str
    ) -> None:
        """A foreign CA's chain, then a wrong name, both served by securelink.aio."""
        connect = helper if how == "securelink.aio" else plain

        async def main() -> tuple[BaseException, BaseException]:
            stranger = securelink.server_context(xpki.stranger_server.server_options())
            ours = securelink.server_context(xpki.server.server_options())
            async with aio_server(stranger) as port:
                unknown = await session(connect(client, port), "read-only")
            async with aio_server(ours) as port:
                mismatch = await session(connect(client, port, "api.example.test"), "read-only")
            return unknown, mismatch

        unknown, mismatch = run(main())
        assert type(unknown) is UnknownAuthorityError
        assert unknown.kind == "untrusted-root"
        assert unknown.issuer == xpki.stranger.certificate.subject.rfc4514_string()
        assert type(mismatch) is HostnameMismatchError
        assert_explained(
            mismatch,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="api.example.test",
        )
        assert mismatch.presented == ("localhost", "127.0.0.1")


class TestClientTransport:
    """Closed ports, plaintext servers and version mismatches through asyncio."""

    @pytest.mark.parametrize("host", [LOOPBACK, "localhost"])
    def test_closed_port(self, client: ssl.SSLContext, host: str) -> None:
        """Refused on every address (localhost may have two): NothingListeningError."""
        port = closed_port()

        async def main() -> BaseException:
            with pytest.raises(ConnectionRefusedError) as info:
                await securelink.aio.open_connection(host, port, client)
            return info.value

        e = run(main())
        assert type(e) is NothingListeningError
        assert_explained(e, cause=ConnectionRefusedError)
        assert (e.host, e.port) == (host, port)
        assert f"{host} port {port}" in e.message

    @pytest.mark.parametrize("how", ["securelink.aio", "asyncio"])
    def test_plaintext_server(self, client: ssl.SSLContext, how: str) -> None:
        """A plaintext HTTP server on the port: NotTLSError."""
        connect = helper if how == "securelink.aio" else plain
        with serve(plaintext_handler(HTTP_400)) as (port, _):
            e = run(session(connect(client, port), "read-only"))
        assert type(e) is NotTLSError
        assert_explained(
            e, cause=ssl.SSLError, side="local", role="client", server_hostname="localhost"
        )
        assert e.reason == "WRONG_VERSION_NUMBER"

    def test_version_mismatch_both_ends(self, xpki: Pki) -> None:
        """A TLS 1.3-only client and a TLS 1.2-only securelink.aio server each explain it."""
        cctx = securelink.client_context(ClientOptions(ca=xpki.ca_file, min_version=TLS13))
        sctx = securelink.server_context(xpki.server.server_options(max_version=TLS12))
        errors: list[SecureLinkError] = []

        async def main() -> BaseException:
            async with aio_server(sctx, errors) as port:
                e = await session(helper(cctx, port), "read-only")
                await wait_async(lambda: bool(errors))
            return e

        e = run(main())
        assert type(e) is ProtocolMismatchError
        assert (e.mismatch, e.side, e.local_versions) == ("version", "peer", ("TLSv1.3",))
        [server_error] = errors
        assert type(server_error) is ProtocolMismatchError
        assert_explained(server_error, cause=ssl.SSLError, side="local", role="server")
        assert (server_error.mismatch, server_error.local_versions) == ("version", ("TLSv1.2",))
        assert server_error.peer is not None and server_error.peer[0] == LOOPBACK
        assert f"The client {LOOPBACK} port" in server_error.message


class TestServersWithoutAlerts:
    """Servers that close without an alert (plain asyncio ones): a diagnosis finds out why."""

    @pytest.mark.parametrize("how", ["securelink.aio", "blocking"])
    def test_client_certificate_required(self, xpki: Pki, how: str) -> None:
        """TLS 1.2, no client certificate: plain asyncio.start_server just closes; still named.

        The server's context is a stdlib one: with securelink's, asyncio sends the alert.
        """
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = stdlib_server_context(
            xpki.files["server"], max_version=TLS12, client_ca=xpki.ca_file
        )

        def blocking(port: int) -> BaseException:
            with pytest.raises(ClientCertificateRequiredError) as info:
                securelink.connect(LOOPBACK, port, client, server_hostname="localhost")
            return info.value

        async def main() -> BaseException:
            server = await asyncio.start_server(echo, LOOPBACK, 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                if how == "blocking":
                    return await asyncio.to_thread(blocking, port)
                return await session(helper(client, port), "read-only")

        e = run(main())
        assert type(e) is ClientCertificateRequiredError
        assert (e.side, e.role, e.alert) == ("peer", "client", None)
        assert e.peer is not None and e.peer[0] == LOOPBACK
        # The bare cause: asyncio reports the EOF as ConnectionResetError, a socket as SSLEOFError.
        assert type(e.__cause__) is (
            ConnectionResetError if how == "securelink.aio" else ssl.SSLEOFError
        )
        assert "without an alert, after asking for one" in e.message

    @pytest.mark.parametrize("mode", MODES)
    def test_reset_after_the_handshake(self, xpki: Pki, mode: str) -> None:
        """TLS 1.3, a server that resets cert-less clients: securelink.aio explains the reset."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = securelink.server_context(
            xpki.server.server_options(
                client_auth=ClientAuth.VERIFY_IF_GIVEN, client_ca=xpki.ca.certificate
            )
        )
        for _ in range(REPEAT):
            with serve(reset_unless_certificate(sctx)) as (port, served):
                e = run(session(helper(client, port), mode))
                served.wait_idle()
            assert type(e) is ClientCertificateRequiredError
            assert type(e.__cause__) is ConnectionResetError
            assert (e.side, e.role, e.alert) == ("peer", "client", None)
            assert e.peer == (LOOPBACK, port)
            assert "closed the connection right after the handshake" in e.message
            assert served.accepted == 2  # the connection, and the diagnostic handshake

    def test_reset_after_the_handshake_plain_asyncio(self, xpki: Pki) -> None:
        """Plain asyncio's transport reset stays a ConnectionResetError (no SSLObject sees it)."""
        # The limit of explaining through the context alone: the error is never swallowed, and
        # securelink.aio.open_connection explains it (test above).
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = securelink.server_context(
            xpki.server.server_options(
                client_auth=ClientAuth.VERIFY_IF_GIVEN, client_ca=xpki.ca.certificate
            )
        )
        with serve(reset_unless_certificate(sctx)) as (port, _):
            e = run(session(plain(client, port), "read-only"))
        assert type(e) is ConnectionResetError

    def test_version_mismatch(self, xpki: Pki) -> None:
        """A TLS 1.3-only securelink.aio client and a TLS 1.2-only plain asyncio server.

        The server's context is a stdlib one: with securelink's, asyncio sends the alert.
        """
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file, min_version=TLS13))
        sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)

        async def main() -> BaseException:
            server = await asyncio.start_server(echo, LOOPBACK, 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                return await session(helper(client, port), "read-only")

        e = run(main())
        assert type(e) is ProtocolMismatchError
        assert (e.mismatch, e.local_versions, e.side) == ("version", ("TLSv1.3",), "peer")
        assert "speaks TLSv1.2, while this end allows only TLSv1.3" in e.message
        assert e.peer_version == "TLSv1.2"
        assert e.peer_cipher is not None

    @pytest.mark.parametrize("how", ["securelink.aio", "asyncio"])
    def test_cipher_mismatch(self, xpki: Pki, how: str) -> None:
        """A CBC-only TLS 1.2 server: securelink.aio diagnoses in a thread; plain asyncio can't."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)
        sctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        connect = helper if how == "securelink.aio" else plain
        with serve(tls_handler(sctx)) as (port, _):
            e = run(session(connect(client, port), "read-only"))
        assert type(e) is ProtocolMismatchError
        assert e.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        assert type(e.__cause__) is ssl.SSLError
        if how == "securelink.aio":
            assert e.mismatch == "cipher"
            assert "ECDHE-ECDSA-AES128-SHA (TLSv1.2)" in e.message
            assert (e.peer_version, e.peer_cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA")
        else:
            # Inside an event loop no diagnostic handshake is made: the honest answer.
            assert e.mismatch == "unknown"
            assert "cipher suite or signature algorithm" in e.message
            assert (e.peer_version, e.peer_cipher) == (None, None)


async def wait_async(predicate: Callable[[], bool]) -> None:
    """Let the loop run until *predicate* holds (bounded by the test's timeout)."""
    while not predicate():
        await asyncio.sleep(0.005)


class TestClientCertificateRequired:
    """A server that requires a client certificate, none sent: the same class, in every race."""

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_securelink_aio_both_ends(self, xpki: Pki, version: str, mode: str) -> None:
        """securelink.aio on both ends: the client always gets ClientCertificateRequiredError."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = mtls_server(xpki, version)

        async def main() -> list[tuple[BaseException, list[SecureLinkError]]]:
            outcomes = []
            for _ in range(REPEAT):
                errors: list[SecureLinkError] = []
                async with aio_server(sctx, errors) as port:
                    e = await session(helper(client, port), mode)
                    await wait_async(lambda: bool(errors))  # noqa: B023 - awaited right here
                outcomes.append((e, errors))
            return outcomes

        for e, errors in run(main()):
            assert type(e) is ClientCertificateRequiredError
            assert (e.side, e.role, e.server_hostname) == ("peer", "client", "localhost")
            assert e.peer is not None and e.peer[0] == LOOPBACK
            assert e.alert in ("handshake failure", "certificate required", None)
            if e.alert is None:  # the reset won the race; TLS 1.3 only
                assert version == "TLSv1.3"
                assert isinstance(e.__cause__, ConnectionResetError | ssl.SSLEOFError)
            else:
                assert e.alert == (
                    "handshake failure" if version == "TLSv1.2" else "certificate required"
                )
                assert type(e.__cause__) is ssl.SSLError
            assert "ClientOptions(cert=..., key=...)" in e.hint
            [server_error] = errors
            assert type(server_error) is ClientCertificateRequiredError
            assert_explained(server_error, cause=ssl.SSLError, side="local", role="server")
            assert server_error.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"

    def test_reset_before_the_alert(self, xpki: Pki) -> None:
        """TLS 1.3 against a threaded server that resets at once: explained after the reset too."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        seen = set()
        for _ in range(REPEAT):
            with serve(tls_handler(mtls_server(xpki, "TLSv1.3"))) as (port, _):
                e = run(session(helper(client, port), "write-then-read"))
            assert type(e) is ClientCertificateRequiredError
            assert (e.side, e.role, e.peer) == ("peer", "client", (LOOPBACK, port))
            if e.alert is None:
                assert type(e.__cause__) is ConnectionResetError
                assert "asked for a client certificate" in e.message
            else:
                assert e.alert == "certificate required"
            seen.add(e.alert)
        # Which of the two happened is up to the race; both are the same class.
        assert seen <= {None, "certificate required"}

    @pytest.mark.parametrize("version", VERSIONS)
    def test_plain_asyncio_reader(self, xpki: Pki, version: str) -> None:
        """Plain asyncio.open_connection that only reads: the alert, explained, every time."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = mtls_server(xpki, version)

        async def main() -> list[BaseException]:
            outcomes = []
            for _ in range(REPEAT):
                async with aio_server(sctx, []) as port:
                    outcomes.append(await session(plain(client, port), "read-only"))
            return outcomes

        alert = "handshake failure" if version == "TLSv1.2" else "certificate required"
        for e in run(main()):
            assert type(e) is ClientCertificateRequiredError
            assert_explained(
                e, cause=ssl.SSLError, side="peer", role="client", server_hostname="localhost"
            )
            assert e.alert == alert

    @requires_openssl
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_plain_asyncio_against_s_server(
        self, tmp_path: Path, xpki: Pki, version: str, mode: str
    ) -> None:
        """Plain asyncio against openssl s_server -Verify 1: TLS 1.2 and 1.3 alerts explained."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        flag = "-tls1_2" if version == "TLSv1.2" else "-tls1_3"
        args = (flag, "-Verify", "1", "-verify_return_error", "-CAfile", str(xpki.ca_file),
                *ONLY_CAFILE)  # fmt: skip
        with s_server(tmp_path, xpki.files["server"], *args) as server:
            e = run(session(plain(client, server.port), mode))
        assert type(e) is ClientCertificateRequiredError
        assert_explained(
            e, cause=ssl.SSLError, side="peer", role="client", server_hostname="localhost"
        )
        assert e.alert == ("handshake failure" if version == "TLSv1.2" else "certificate required")

    @pytest.mark.parametrize("version", VERSIONS)
    def test_rejected_certificate(self, xpki: Pki, version: str) -> None:
        """A client certificate from a foreign CA: each end names it, every time."""
        client = securelink.client_context(
            xpki.stranger_client.client_options(ca=xpki.ca.certificate)
        )
        sctx = mtls_server(xpki, version)
        ours = summary(xpki.stranger_client.certificate)

        async def main() -> list[tuple[BaseException, list[SecureLinkError]]]:
            outcomes = []
            for _ in range(REPEAT):
                errors: list[SecureLinkError] = []
                async with aio_server(sctx, errors) as port:
                    e = await session(helper(client, port), "write-then-read")
                    await wait_async(lambda: bool(errors))  # noqa: B023 - awaited right here
                outcomes.append((e, errors))
            return outcomes

        for e, errors in run(main()):
            assert type(e) is CertificateRejectedError
            assert (e.side, e.role) == ("peer", "client")
            assert e.alert in ("unknown CA", None)
            assert e.certificate == ours
            assert "the certificate for client.test" in e.message
            [server_error] = errors
            assert type(server_error) is UnknownAuthorityError
            assert (server_error.side, server_error.role) == ("local", "server")
            assert server_error.certificate == ours


class TestServer:
    """securelink.aio.start_server: one log line and a callback per failed client handshake."""

    def test_plaintext_client(
        self, xpki: Pki, client: ssl.SSLContext, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A plaintext HTTP client: NotTLSError, logged once, then the server keeps serving."""
        sctx = securelink.server_context(xpki.server.server_options())
        errors: list[SecureLinkError] = []

        async def main() -> tuple[int, bytes, bytes, set[int], set[int]]:
            async with aio_server(sctx, errors) as port:
                before = open_sockets()
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                await writer.drain()
                answer = b""
                with contextlib.suppress(ConnectionResetError):
                    answer = await reader.read()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                await wait_async(lambda: bool(errors))
                await wait_async(lambda: open_sockets() <= before)
                after = open_sockets()
                # A good client is still served.
                good_reader, good_writer = await securelink.aio.open_connection(
                    LOOPBACK, port, client, server_hostname="localhost"
                )
                good_writer.write(b"ping")
                pong = await good_reader.read(4)
                good_writer.close()
                await good_writer.wait_closed()
            return port, answer, pong, before, after

        with caplog.at_level(logging.WARNING, logger="securelink"):
            _port, _answer, pong, before, after = run(main())
        assert pong == b"pong"
        assert after <= before
        [e] = errors
        assert type(e) is NotTLSError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server")
        assert e.reason == "HTTP_REQUEST"
        assert e.peer is not None and e.peer[0] == LOOPBACK
        assert "plaintext HTTP request" in e.message
        records = [r for r in caplog.records if r.name == "securelink"]
        assert len(records) == 1
        [record] = records
        assert record.levelno == logging.WARNING
        line = record.getMessage()
        assert "\n" not in line
        # The explanation names the client already: not twice.
        assert line == f"TLS handshake failed: {e}"
        assert line.count(f"{LOOPBACK} port {e.peer[1]}") == 1
        assert record.exc_info is None  # one line, not asyncio's traceback

    def test_client_rejects_server(self, xpki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """A blocking client that does not trust the server: its alert, named by the server."""
        sctx = securelink.server_context(xpki.server.server_options())
        distrustful = securelink.client_context(ClientOptions(ca=xpki.stranger_file))
        errors: list[SecureLinkError] = []

        def blocking_client(port: int) -> BaseException:
            with pytest.raises(UnknownAuthorityError) as info:
                securelink.connect(LOOPBACK, port, distrustful, server_hostname="localhost")
            return info.value

        async def main() -> BaseException:
            async with aio_server(sctx, errors) as port:
                e = await asyncio.to_thread(blocking_client, port)
                await wait_async(lambda: bool(errors))
            return e

        with caplog.at_level(logging.WARNING, logger="securelink"):
            e = run(main())
        assert type(e) is UnknownAuthorityError
        [server_error] = errors
        assert type(server_error) is CertificateRejectedError
        assert_explained(server_error, cause=ssl.SSLError, side="peer", role="server")
        assert server_error.alert == "unknown CA"
        assert server_error.certificate == summary(xpki.server.certificate)
        assert "the certificate for localhost, 127.0.0.1" in server_error.message
        assert "does not trust its issuer" in server_error.message
        assert len([r for r in caplog.records if r.name == "securelink"]) == 1

    def test_asyncio_client_rejects_server(self, xpki: Pki) -> None:
        """securelink.aio sends the alert CPython would drop: the server names the rejection."""
        sctx = securelink.server_context(xpki.server.server_options())
        distrustful = securelink.client_context(ClientOptions(ca=xpki.stranger_file))
        errors: list[SecureLinkError] = []

        async def main() -> BaseException:
            async with aio_server(sctx, errors) as port:
                e = await session(helper(distrustful, port), "read-only")
                await wait_async(lambda: bool(errors))
            return e

        e = run(main())
        assert type(e) is UnknownAuthorityError
        [server_error] = errors
        assert type(server_error) is CertificateRejectedError
        assert_explained(server_error, cause=ssl.SSLError, side="peer", role="server")
        assert server_error.alert == "unknown CA"
        assert "does not trust its issuer" in server_error.message

    def test_expired_client_certificate(self, xpki: Pki) -> None:
        """A bare stdlib client with an expired certificate: the server names it."""
        files = xpki.files["expired-client"]
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.load_verify_locations(xpki.ca_file)
        bare.load_cert_chain(files.cert, files.key)
        errors: list[SecureLinkError] = []

        async def main() -> BaseException:
            async with aio_server(mtls_server(xpki, "TLSv1.3"), errors) as port:
                e = await session(plain(bare, port), "read-only")
                await wait_async(lambda: bool(errors))
            return e

        e = run(main())
        assert isinstance(e, ssl.SSLError)  # the bare client's error stays the stdlib's
        assert not isinstance(e, SecureLinkError)
        [server_error] = errors
        assert type(server_error) is CertificateExpiredError
        assert_explained(
            server_error, cause=ssl.SSLCertVerificationError, side="local", role="server"
        )
        assert server_error.not_after == files.leaf.not_valid_after_utc
        assert "client.test" in server_error.message

    def test_plain_asyncio_start_server(self, xpki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """asyncio.start_server with a securelink context: the explanation reaches its log."""
        sctx = securelink.server_context(xpki.server.server_options())

        async def main() -> None:
            asyncio.get_running_loop().set_debug(True)  # asyncio logs handshake errors in debug
            server = await asyncio.start_server(echo, LOOPBACK, 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                writer.write(b"GET / HTTP/1.1\r\n\r\n")
                await writer.drain()
                with contextlib.suppress(ConnectionResetError):
                    await reader.read()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

                def logged() -> bool:
                    return any(
                        r.exc_info and isinstance(r.exc_info[1], SecureLinkError)
                        for r in caplog.records
                    )

                await wait_async(logged)

        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            run(main())
        # asyncio logs it twice in debug mode (the protocol, then the server): one exception.
        [e] = {
            id(r.exc_info[1]): r.exc_info[1]
            for r in caplog.records
            if r.name == "asyncio" and r.exc_info and isinstance(r.exc_info[1], SecureLinkError)
        }.values()
        assert type(e) is NotTLSError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server")
        # The SSLObject finds asyncio's transport up the stack, and so the client's address.
        assert e.peer is not None and e.peer[0] == LOOPBACK
