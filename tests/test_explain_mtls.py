"""Mutual TLS failures explained on both ends, against ``openssl s_server`` and our own servers.

The client's view depends on the TLS version: TLS 1.2 refuses a client in the handshake, TLS 1.3
after it (the verdict arrives on the first read), and a Python server that closes at once often
resets the connection before its alert can be read.  Each of those races must still produce one
and the same securelink class, so the tests against our own servers run several times.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import securelink
from securelink import (
    CertificateExpiredError,
    CertificateRejectedError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    UnknownAuthorityError,
)

from .explain_peers import (
    LOOPBACK,
    ONLY_CAFILE,
    OPENSSL,
    TIMEOUT,
    TLS13,
    VERSIONS,
    Pki,
    assert_explained,
    build_pki,
    reset_unless_certificate,
    s_client,
    s_server,
    serve,
    stdlib_client_context,
    summary,
    tls_handler,
    wait_for,
    wrap_server_handler,
)

requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is missing")
#: How often a test against a racy peer runs, to show the outcome does not depend on the race.
REPEAT = 5
#: What the client does after the handshake.
MODES = ("write-then-read", "read-only")


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests, with the flawed ones as files."""
    return build_pki(tmp_path_factory.mktemp("explain-mtls"))


def mtls_server(xpki: Pki, version: str) -> ssl.SSLContext:
    """A securelink server that requires client certificates from the test root."""
    return securelink.server_context(
        xpki.server.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=xpki.ca.certificate,
            max_version=VERSIONS[version],
        )
    )


def s_server_args(xpki: Pki, version: str) -> tuple[str, ...]:
    """s_server arguments: this TLS version only, client certificates required from the root."""
    flag = "-tls1_2" if version == "TLSv1.2" else "-tls1_3"
    return (flag, "-Verify", "1", "-verify_return_error", "-CAfile", str(xpki.ca_file),
            *ONLY_CAFILE)  # fmt: skip


def session(ctx: ssl.SSLContext, port: int, mode: str) -> BaseException:
    """Connect, then write and read (or only read) as *mode* says; return what was raised."""
    with (  # noqa: PT012 - any step may fail
        pytest.raises(securelink.SecureLinkError) as info,
        securelink.connect(
            LOOPBACK, port, ctx, server_hostname="localhost", timeout=TIMEOUT
        ) as tls,
    ):
        if mode == "write-then-read":
            tls.sendall(b"ping\n")
        tls.recv(1024)
    return info.value


def unwrap_urlerror(e: BaseException) -> BaseException:
    """Return the reason of a URLError: urllib wraps errors raised while sending (not reading)."""
    if isinstance(e, urllib.error.URLError):
        assert type(e) is urllib.error.URLError
        assert isinstance(e.reason, BaseException)
        return e.reason
    return e


def assert_certificate_required(
    e: BaseException, version: str, port: int | None, *, raced: bool = False
) -> None:
    """Check the client's explanation of "the server requires a certificate, none was sent"."""
    assert type(e) is ClientCertificateRequiredError
    alert = "handshake failure" if version == "TLSv1.2" else "certificate required"
    if raced and version == "TLSv1.3" and e.alert is None:
        # The server's reset beat its alert: the cause is the reset or EOF, found out by the
        # diagnostic handshake.
        assert isinstance(e.__cause__, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError)
        assert e.side == "peer" and e.role == "client"
        assert "asked for a client certificate" in e.message
    else:
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.alert == alert
        assert f"'{alert}' alert" in e.message
    assert "requires a client certificate" in str(e) or "asked for a client certificate" in str(e)
    assert "ClientOptions(cert=..., key=...)" in e.hint


@requires_openssl
class TestCertificateRequiredByOpenSSL:
    """openssl s_server -Verify 1 refuses a client without a certificate, in every form."""

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_blocking_client(self, tmp_path: Path, xpki: Pki, version: str, mode: str) -> None:
        """TLS 1.2 fails in the handshake, TLS 1.3 on the first read: the same class."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        with s_server(tmp_path, xpki.files["server"], *s_server_args(xpki, version)) as server:
            e = session(client, server.port, mode)
            # s_server's own account of it (it may still be writing it).
            assert wait_for(lambda: "peer did not return a certificate" in server.log())
        assert_certificate_required(e, version, server.port)

    @pytest.mark.parametrize("version", VERSIONS)
    def test_http_client(self, tmp_path: Path, xpki: Pki, version: str) -> None:
        """http.client sends a request and reads the answer: the refusal comes out explained."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        with s_server(tmp_path, xpki.files["server"], *s_server_args(xpki, version)) as server:
            conn = http.client.HTTPSConnection("localhost", server.port, context=client, timeout=5)
            try:
                with pytest.raises(ClientCertificateRequiredError) as info:  # noqa: PT012
                    conn.request("GET", "/")
                    conn.getresponse()
            finally:
                conn.close()
        assert_certificate_required(info.value, version, server.port)

    @pytest.mark.parametrize("version", VERSIONS)
    def test_urllib(self, tmp_path: Path, xpki: Pki, version: str) -> None:
        """Through urllib: the TLS 1.2 refusal wrapped in URLError, the TLS 1.3 one maybe bare."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=client)
        )
        with (
            s_server(tmp_path, xpki.files["server"], *s_server_args(xpki, version)) as server,
            pytest.raises(OSError) as info,  # noqa: PT011 - URLError or the bare error
        ):
            opener.open(f"https://localhost:{server.port}/", timeout=TIMEOUT)
        if version == "TLSv1.2":
            assert type(info.value) is urllib.error.URLError
        assert_certificate_required(unwrap_urlerror(info.value), version, server.port)


class TestCertificateRequiredByOurServer:
    """Our own server refuses a client without a certificate; both ends explain it, every time."""

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_blocking(self, xpki: Pki, version: str, mode: str) -> None:
        """Alert or reset, whichever wins the race: ClientCertificateRequiredError on both ends."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        for _ in range(REPEAT):
            with serve(tls_handler(mtls_server(xpki, version))) as (port, served):
                e = session(client, port, mode)
                server_error = served.first_error()
                served.wait_idle()
            assert_certificate_required(e, version, port, raced=True)
            assert isinstance(e, ClientCertificateRequiredError)
            assert e.peer == (LOOPBACK, port)
            assert type(server_error) is ClientCertificateRequiredError
            assert_explained(server_error, cause=ssl.SSLError, side="local", role="server")
            assert server_error.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
            assert server_error.alert is None
            assert server_error.peer is not None and server_error.peer[0] == LOOPBACK
            assert "sent no certificate" in server_error.message
            assert "client_ca" in server_error.hint

    @pytest.mark.parametrize("version", VERSIONS)
    def test_wrap_server_and_urllib(self, xpki: Pki, version: str) -> None:
        """securelink.wrap_server on the server, urllib on the client."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=client)
        )
        for _ in range(REPEAT):
            with serve(wrap_server_handler(mtls_server(xpki, version))) as (port, served):
                with pytest.raises(OSError) as info:  # noqa: PT011 - URLError or the bare error
                    opener.open(f"https://localhost:{port}/", timeout=TIMEOUT)
                server_error = served.first_error()
            assert_certificate_required(unwrap_urlerror(info.value), version, port, raced=True)
            assert type(server_error) is ClientCertificateRequiredError
            assert (server_error.side, server_error.role) == ("local", "server")


class TestResetInsteadOfAlert:
    """A server that resets cert-less clients after a TLS 1.3 handshake: still explained."""

    @pytest.mark.parametrize("mode", MODES)
    def test_blocking(self, xpki: Pki, mode: str) -> None:
        """The reset (no alert at all) becomes ClientCertificateRequiredError, every time."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        sctx = securelink.server_context(
            xpki.server.server_options(
                client_auth=ClientAuth.VERIFY_IF_GIVEN,
                client_ca=xpki.ca.certificate,
                min_version=TLS13,
            )
        )
        for _ in range(REPEAT):
            with serve(reset_unless_certificate(sctx)) as (port, served):
                e = session(client, port, mode)
                served.wait_idle()
            assert type(e) is ClientCertificateRequiredError
            # A reset (3.13), or what 3.12 and older make of it: an EOF, on the write or read.
            cause = e.__cause__
            assert isinstance(cause, ConnectionResetError | ssl.SSLEOFError | BrokenPipeError)
            assert_explained(
                e,
                cause=type(cause),
                side="peer",
                role="client",
                server_hostname="localhost",
                port=port,
            )
            assert e.alert is None
            assert "closed the connection right after the handshake" in e.message
            assert "asked for a client certificate" in e.message
            assert served.accepted == 2  # the connection, and the diagnostic handshake

    def test_control(self, xpki: Pki) -> None:
        """The control: with a certificate, the same server answers."""
        client = securelink.client_context(xpki.client.client_options(ca=xpki.ca_file))
        sctx = securelink.server_context(
            xpki.server.server_options(
                client_auth=ClientAuth.VERIFY_IF_GIVEN, client_ca=xpki.ca.certificate
            )
        )
        with (
            serve(reset_unless_certificate(sctx)) as (port, served),
            securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert served.accepted == 1


class TestCertificateFromAnUnknownCA:
    """A client certificate from a CA the server does not trust: both ends name it."""

    @pytest.mark.parametrize("version", VERSIONS)
    def test_both_ends(self, xpki: Pki, version: str) -> None:
        """The server names the client's certificate and issuer; the client hears 'unknown CA'."""
        client = securelink.client_context(
            xpki.stranger_client.client_options(ca=xpki.ca.certificate)
        )
        ours = summary(xpki.stranger_client.certificate)
        stranger = xpki.stranger.certificate.subject.rfc4514_string()
        for _ in range(REPEAT):
            with serve(tls_handler(mtls_server(xpki, version))) as (port, served):
                e = session(client, port, "write-then-read")
                server_error = served.first_error()
            # The server's view: its own verification failed.
            assert type(server_error) is UnknownAuthorityError
            assert_explained(
                server_error, cause=ssl.SSLCertVerificationError, side="local", role="server"
            )
            assert server_error.verify_code == 20
            assert server_error.kind == "unknown-issuer"
            assert server_error.issuer == stranger
            assert server_error.certificate == ours
            assert server_error.chain == (ours,)
            # The client sent SNI (localhost); as documented, a server's errors never carry it.
            assert server_error.server_hostname is None
            assert "Always ``None`` on a server" in (securelink.HandshakeError.__doc__ or "")
            root = xpki.ca.certificate.subject.rfc4514_string()
            assert server_error.trusted == f"the CA certificate {root}"
            assert f"(the CA certificate {root})" in server_error.message
            assert "client.test" in server_error.message
            assert "presented by the client 127.0.0.1 port" in server_error.message
            assert stranger in server_error.message
            # The client's view: the peer rejected our certificate.
            assert type(e) is CertificateRejectedError
            assert (e.side, e.role, e.peer) == ("peer", "client", (LOOPBACK, port))
            assert e.certificate == ours
            assert e.alert in ("unknown CA", None)  # None: the reset won (TLS 1.3 only)
            if e.alert is None:
                assert version == "TLSv1.3"
                assert isinstance(e.__cause__, ssl.SSLEOFError | ConnectionResetError)
            else:
                assert_explained(
                    e,
                    cause=ssl.SSLError,
                    side="peer",
                    role="client",
                    server_hostname="localhost",
                    port=port,
                )
                assert e.reason == "TLSV1_ALERT_UNKNOWN_CA"
                assert "does not trust its issuer" in e.message
            assert "the certificate for client.test" in e.message
            assert stranger in e.message
            assert "must trust" in e.hint and stranger in e.hint

    @requires_openssl
    @pytest.mark.parametrize("version", VERSIONS)
    def test_against_s_server(self, tmp_path: Path, xpki: Pki, version: str) -> None:
        """The alert of openssl s_server always arrives: CertificateRejectedError, 'unknown CA'."""
        client = securelink.client_context(
            xpki.stranger_client.client_options(ca=xpki.ca.certificate)
        )
        with s_server(tmp_path, xpki.files["server"], *s_server_args(xpki, version)) as server:
            e = session(client, server.port, "write-then-read")
        assert type(e) is CertificateRejectedError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=server.port,
        )
        assert e.alert == "unknown CA"
        assert e.certificate == summary(xpki.stranger_client.certificate)
        assert "the certificate for client.test" in e.message


class TestExpiredClientCertificate:
    """An expired client certificate (served from bare stdlib or openssl: securelink refuses it)."""

    @pytest.mark.parametrize("version", VERSIONS)
    def test_server_side(self, xpki: Pki, version: str) -> None:
        """Our server names the client's certificate, when it expired, and how long ago."""
        files = xpki.files["expired-client"]
        client = stdlib_client_context(ca=xpki.ca_file, identity=files)
        with serve(tls_handler(mtls_server(xpki, version))) as (port, served):
            with pytest.raises(OSError):  # noqa: PT011 - the bare client's error is the stdlib's
                session_raw(client, port)
            e = served.first_error()
        assert type(e) is CertificateExpiredError
        assert_explained(e, cause=ssl.SSLCertVerificationError, side="local", role="server")
        assert e.verify_code == 10
        assert e.server_hostname is None
        assert e.not_after == files.leaf.not_valid_after_utc
        assert e.certificate == summary(files.leaf)
        assert "client.test" in e.message
        assert "presented by the client 127.0.0.1 port" in e.message
        assert "3 days ago" in e.message

    @requires_openssl
    def test_server_side_against_s_client(self, xpki: Pki) -> None:
        """The same, with openssl s_client presenting the expired certificate."""
        files = xpki.files["expired-client"]
        with serve(tls_handler(mtls_server(xpki, "TLSv1.3"))) as (port, served):
            run = s_client(
                port, "-cert", str(files.cert), "-key", str(files.key),
                "-CAfile", str(xpki.ca_file), *ONLY_CAFILE,
            )  # fmt: skip
            e = served.first_error()
        assert run.returncode != 0
        assert "alert certificate expired" in run.stderr
        assert type(e) is CertificateExpiredError
        assert e.certificate == summary(files.leaf)

    def test_client_side_tls12(self, xpki: Pki) -> None:
        """A bare stdlib client through securelink.connect: the server's verdict, explained."""
        client = stdlib_client_context(ca=xpki.ca_file, identity=xpki.files["expired-client"])
        with (
            serve(tls_handler(mtls_server(xpki, "TLSv1.2"))) as (port, _),
            pytest.raises(CertificateRejectedError) as info,
        ):
            securelink.connect(LOOPBACK, port, client, server_hostname="localhost")
        e = info.value
        assert type(e) is CertificateRejectedError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.alert == "certificate expired"
        assert e.reason == "SSLV3_ALERT_CERTIFICATE_EXPIRED"
        assert e.certificate is None  # a context securelink did not build: unknown
        assert "rejected this client's certificate" in e.message
        assert "considers it expired" in e.message

    @requires_openssl
    def test_client_side_tls13_explained(self, tmp_path: Path, xpki: Pki) -> None:
        """The raw TLS 1.3 read error of a bare stdlib client, given to securelink.explain()."""
        client = stdlib_client_context(ca=xpki.ca_file, identity=xpki.files["expired-client"])
        with (
            s_server(tmp_path, xpki.files["server"], *s_server_args(xpki, "TLSv1.3")) as server,
            pytest.raises(ssl.SSLError) as info,
        ):
            session_raw(client, server.port)
        raw = info.value
        assert type(raw) is ssl.SSLError
        assert raw.reason == "SSLV3_ALERT_CERTIFICATE_EXPIRED"
        e = securelink.explain(
            raw, server_hostname="localhost", context=client, peer=(LOOPBACK, server.port)
        )
        assert type(e) is CertificateRejectedError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=server.port,
        )
        assert e.alert == "certificate expired"


def session_raw(ctx: ssl.SSLContext, port: int) -> None:
    """A bare stdlib client's session: handshake, write a line, read the answer."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"ping\n")
        tls.recv(1024)
