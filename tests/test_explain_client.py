"""A securelink client explains every failure it meets, through every blocking consumer.

Real handshakes on 127.0.0.1: each test starts the server it needs (a thread, or a bare stdlib
server context for certificates securelink refuses to serve) and ends it.  Each failure is
provoked through ``securelink.connect``, a context's own ``wrap_socket``, ``http.client`` and
``urllib`` where the name allows, and must come out as exactly one securelink class with its
facts as attributes and the original ``ssl`` exception as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import socket
import ssl
import urllib.error
import urllib.request

import pytest

import securelink
from securelink import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateVerificationError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    HostnameMismatchError,
    NothingListeningError,
    NotTLSError,
    ProtocolMismatchError,
    ServerOptions,
    UnknownAuthorityError,
)

from .explain_peers import (
    DAY,
    HTTP_400,
    LOOPBACK,
    TIMEOUT,
    TLS12,
    TLS13,
    Pki,
    assert_explained,
    build_pki,
    closed_port,
    open_sockets,
    plaintext_handler,
    reset_unless_certificate,
    serve,
    stdlib_server_context,
    summary,
    tls_handler,
    wrap_server_handler,
)

#: The consumers a failure is provoked through.
VIAS = ("connect", "wrap_socket", "http.client", "urllib")


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests, with the flawed ones as files."""
    return build_pki(tmp_path_factory.mktemp("explain-client"))


@pytest.fixture
def client(xpki: Pki) -> ssl.SSLContext:
    """A securelink client that trusts the test root, given as a file."""
    return securelink.client_context(ClientOptions(ca=xpki.ca_file))


def provoke(via: str, ctx: ssl.SSLContext, port: int, *, name: str = "localhost") -> BaseException:
    """Connect to 127.0.0.1:*port* through *via*; return what the caller catches.

    For urllib that is the ``URLError``'s reason (asserted to be wrapped as urllib does).
    """
    if via == "connect":
        with pytest.raises(securelink.SecureLinkError) as info:
            securelink.connect(LOOPBACK, port, ctx, server_hostname=name, timeout=TIMEOUT)
        return info.value
    if via == "wrap_socket":
        with (
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
            pytest.raises(securelink.SecureLinkError) as info,
        ):
            ctx.wrap_socket(raw, server_hostname=name)
        return info.value
    if via == "http.client":
        conn = http.client.HTTPSConnection(name, port, context=ctx, timeout=TIMEOUT)
        try:
            with pytest.raises(securelink.SecureLinkError) as info:
                conn.request("GET", "/")
        finally:
            conn.close()
        return info.value
    assert via == "urllib"
    # No proxy handler: the environment's proxies must not be used for loopback tests.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    with pytest.raises(urllib.error.URLError) as urlinfo:
        opener.open(f"https://{name}:{port}/", timeout=TIMEOUT)
    assert type(urlinfo.value) is urllib.error.URLError
    reason = urlinfo.value.reason
    assert isinstance(reason, BaseException)
    return reason


class TestUnknownAuthority:
    """A chain that does not reach a trusted CA names the untrusted issuer and what is trusted."""

    @pytest.mark.parametrize("via", VIAS)
    def test_chain_from_an_untrusted_ca(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Leaf and intermediate of a foreign CA: the root they lead to is named."""
        sctx = securelink.server_context(xpki.stranger_server.server_options())
        with serve(tls_handler(sctx)) as (port, _served):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        root = xpki.stranger.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "untrusted-root"
        assert e.issuer == root
        assert str(xpki.ca_file) in e.trusted
        assert "CN=explain root CA" in e.trusted
        assert e.certificate == summary(xpki.stranger_server.certificate)
        assert e.chain == (
            summary(xpki.stranger_server.certificate),
            summary(xpki.stranger_inter.certificate),
        )
        assert root in e.message
        assert str(xpki.ca_file) in e.message
        assert f"port {port}" in e.message

    def test_self_signed(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A self-signed server certificate is called that, with code 18."""
        with serve(tls_handler(stdlib_server_context(xpki.files["self-signed"]))) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 18
        assert e.kind == "self-signed"
        assert e.issuer == "CN=localhost"
        assert e.certificate == summary(xpki.files["self-signed"].leaf)
        assert e.certificate is not None and e.certificate.self_signed
        assert e.chain == (summary(xpki.files["self-signed"].leaf),)
        assert "self-signed" in e.message
        assert str(xpki.ca_file) in e.message
        assert "Do not turn verification off" in e.hint

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_untrusted_root_sent_in_the_chain(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A chain that includes its own (untrusted) root: code 19, the root named."""
        with serve(tls_handler(stdlib_server_context(xpki.files["root-sent"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        root = xpki.stranger.certificate.subject.rfc4514_string()
        assert e.verify_code == 19
        assert e.kind == "untrusted-root"
        assert e.issuer == root
        assert [c.subject for c in e.chain] == [
            xpki.stranger_server.certificate.subject.rfc4514_string(),
            xpki.stranger_inter.certificate.subject.rfc4514_string(),
            root,
        ]
        assert e.chain[-1].self_signed
        assert f"the root {root!r}" in e.message
        assert root in e.hint

    @pytest.mark.parametrize("via", VIAS)
    def test_incomplete_chain(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """A leaf with an AIA caIssuers URL sent without its intermediate: incomplete-chain."""
        with serve(tls_handler(stdlib_server_context(xpki.files["aia-leaf-only"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        inter = xpki.inter.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "incomplete-chain"
        assert e.issuer == inter
        assert e.chain == (summary(xpki.files["aia-leaf-only"].leaf),)
        assert f"not the intermediate {inter!r}" in e.message
        assert "full chain" in e.hint

    def test_leaf_alone_is_ambiguous(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A lone leaf without AIA may lack an intermediate or come from a foreign CA."""
        leaf = xpki.inter.issue("localhost")
        sctx = securelink.server_context(ServerOptions(cert=leaf.certificate, key=leaf.private_key))
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("wrap_socket", client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        inter = xpki.inter.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "unknown-issuer"
        assert e.issuer == inter
        assert e.chain == (summary(leaf.certificate),)
        assert f"was issued by {inter!r}" in e.message
        assert "trust it" in e.hint
        assert "incomplete chain" in e.hint

    def test_leaf_straight_from_an_untrusted_root(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A leaf issued by a foreign root names that root as the unknown issuer."""
        sctx = securelink.server_context(xpki.stranger_direct.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is UnknownAuthorityError
        assert e.kind == "unknown-issuer"
        assert e.issuer == xpki.stranger.certificate.subject.rfc4514_string()
        assert e.certificate == summary(xpki.stranger_direct.certificate)


class TestValidity:
    """Expired and not-yet-valid certificates name their dates and how far off they are."""

    @pytest.mark.parametrize("via", VIAS)
    def test_expired(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """An expired server certificate: when it expired, how long ago, who issued it."""
        files = xpki.files["expired"]
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateExpiredError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        not_after = files.leaf.not_valid_after_utc
        assert e.verify_code == 10
        assert e.not_after == not_after
        assert e.expired_for is not None
        assert 3 * DAY <= e.expired_for < 3 * DAY + datetime.timedelta(minutes=5)
        assert e.certificate == summary(files.leaf)
        assert [c.subject for c in e.chain] == [
            files.leaf.subject.rfc4514_string(),
            xpki.inter.certificate.subject.rfc4514_string(),
        ]
        assert f"{not_after:%Y-%m-%d %H:%M:%S} UTC" in e.message
        assert "3 days ago" in e.message
        assert xpki.inter.certificate.subject.rfc4514_string() in e.message
        assert "renew" in e.hint

    @pytest.mark.parametrize("via", ["connect", "urllib"])
    def test_not_yet_valid(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """A certificate valid only from next week: its start date, and check the clock."""
        files = xpki.files["future"]
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateNotYetValidError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        not_before = files.leaf.not_valid_before_utc
        assert e.verify_code == 9
        assert e.not_before == not_before
        assert e.valid_in is not None
        assert 5 * DAY - datetime.timedelta(minutes=5) < e.valid_in <= 5 * DAY
        assert e.certificate == summary(files.leaf)
        assert f"{not_before:%Y-%m-%d %H:%M:%S} UTC" in e.message
        assert "5 days from now" in e.message
        assert "clock" in e.hint


class TestNames:
    """A certificate for other names says which names it holds and which was asked for."""

    @pytest.mark.parametrize("via", ["connect", "wrap_socket"])
    def test_hostname_mismatch(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Asking for api.example.test of a localhost certificate: code 62, both sides named."""
        sctx = securelink.server_context(xpki.server.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port, name="api.example.test")
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="api.example.test",
            port=port,
        )
        assert e.verify_code == 62
        assert e.expected == "api.example.test"
        assert e.presented == ("localhost", "127.0.0.1")
        assert e.common_name is None
        assert e.certificate == summary(xpki.server.certificate)
        assert "is valid for localhost, 127.0.0.1, not 'api.example.test'" in e.message
        assert "'api.example.test' as a SubjectAltName" in e.hint

    @pytest.mark.parametrize("via", VIAS)
    def test_ip_mismatch(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Asking for 127.0.0.1 of a certificate that names only localhost: code 64."""
        sctx = securelink.server_context(xpki.dns_only.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port, name=LOOPBACK)
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname=LOOPBACK,
            port=port,
        )
        assert e.verify_code == 64
        assert e.expected == LOOPBACK
        assert e.presented == ("localhost",)
        assert "is valid for localhost, not '127.0.0.1'" in e.message
        assert "IP SubjectAltName" in e.hint

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_common_name_only(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """CN=localhost without SAN: Common Names are not checked, and the message says why."""
        with serve(tls_handler(stdlib_server_context(xpki.files["cn-only"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 62
        assert e.expected == "localhost"
        assert e.presented == ()
        assert e.common_name == "localhost"
        assert "only the Common Name 'localhost'" in e.message
        assert "Common Names are not checked" in e.message
        assert "RFC 6125" in e.message
        assert "SubjectAltName" in e.hint


class TestPurpose:
    """A certificate not meant for servers fails with its own explanation (code 26)."""

    @pytest.mark.parametrize("via", ["connect", "urllib"])
    def test_client_only_certificate_served(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A clientAuth-only certificate on a server: CertificateVerificationError itself."""
        sctx = securelink.server_context(xpki.wrong_eku.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateVerificationError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 26
        assert e.verify_message == "unsuitable certificate purpose"
        assert e.certificate == summary(xpki.wrong_eku.certificate)
        assert "extended key usage" in e.message
        assert "serverAuth" in e.hint


class TestNotTLS:
    """A plaintext server on the port is named as such, whichever consumer connects."""

    @pytest.mark.parametrize("via", VIAS)
    def test_plaintext_http_server(self, client: ssl.SSLContext, via: str) -> None:
        """An HTTP server answering the ClientHello with '400 Bad Request'."""
        with serve(plaintext_handler(HTTP_400)) as (port, served):
            e = provoke(via, client, port)
            served.wait_idle()
        assert type(e) is NotTLSError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "WRONG_VERSION_NUMBER"
        assert served.received[0].startswith(b"\x16\x03")  # it did get our ClientHello
        assert "did not answer in TLS" in e.message
        assert "plaintext HTTP server" in e.message
        assert "http://" in e.hint


class TestPlaintextClient:
    """A plaintext client on our TLS port: the server names it, from its own side."""

    @pytest.mark.parametrize("handler", ["wrap_socket", "wrap_server"])
    def test_http_request(self, xpki: Pki, handler: str) -> None:
        """An HTTP request where a ClientHello belongs: NotTLSError, side local, role server."""
        sctx = securelink.server_context(xpki.server.server_options())
        handle = tls_handler(sctx) if handler == "wrap_socket" else wrap_server_handler(sctx)
        with serve(handle) as (port, served):
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as plain:
                plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                client_port = plain.getsockname()[1]
                with contextlib.suppress(ConnectionResetError):
                    assert plain.recv(1024) == b""  # no answer in plaintext, only the close
            e = served.first_error()
        assert type(e) is NotTLSError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server", port=client_port)
        assert e.reason == "HTTP_REQUEST"
        assert e.server_hostname is None
        assert f"The client {LOOPBACK} port {client_port} sent a plaintext HTTP request" in (
            e.message
        )
        assert "https://" in e.hint


class TestNothingListening:
    """A closed port is reported before any TLS, and old except clauses still catch it."""

    def test_closed_port(self, client: ssl.SSLContext) -> None:
        """securelink.connect to a port nobody listens on names host and port."""
        port = closed_port()
        with pytest.raises(NothingListeningError) as info:
            securelink.connect(LOOPBACK, port, client, timeout=TIMEOUT)
        e = info.value
        assert type(e) is NothingListeningError
        assert_explained(e, cause=ConnectionRefusedError)
        assert (e.host, e.port) == (LOOPBACK, port)
        assert isinstance(e, ConnectionRefusedError)
        assert e.errno == 111
        assert f"{LOOPBACK} port {port}" in e.message
        assert "running" in e.hint

    def test_caught_as_connection_refused(self, client: ssl.SSLContext) -> None:
        """`except ConnectionRefusedError` written for the stdlib still catches it."""
        with pytest.raises(ConnectionRefusedError) as info:
            securelink.connect(LOOPBACK, closed_port(), client, timeout=TIMEOUT)
        assert type(info.value) is NothingListeningError


class TestProtocolMismatch:
    """No common version or cipher suite: each end says what it allows, and which mismatch."""

    @pytest.mark.parametrize(
        ("client_versions", "server_versions", "allowed", "server_allowed"),
        [
            ((TLS13, None), (None, TLS12), ("TLSv1.3",), ("TLSv1.2",)),
            ((None, TLS12), (TLS13, None), ("TLSv1.2",), ("TLSv1.3",)),
        ],
        ids=["client-1.3-only", "server-1.3-only"],
    )
    def test_no_common_version(
        self,
        xpki: Pki,
        client_versions: tuple[ssl.TLSVersion | None, ssl.TLSVersion | None],
        server_versions: tuple[ssl.TLSVersion | None, ssl.TLSVersion | None],
        allowed: tuple[str, ...],
        server_allowed: tuple[str, ...],
    ) -> None:
        """Both ends of a version mismatch explain it, each from its own side."""
        cmin, cmax = client_versions
        smin, smax = server_versions
        cctx = securelink.client_context(
            ClientOptions(ca=xpki.ca_file, min_version=cmin or TLS12, max_version=cmax)
        )
        sctx = securelink.server_context(
            xpki.server.server_options(min_version=smin or TLS12, max_version=smax)
        )
        with serve(tls_handler(sctx)) as (port, served):
            e = provoke("connect", cctx, port)
            server_error = served.first_error()
        assert type(e) is ProtocolMismatchError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert e.mismatch == "version"
        assert e.local_versions == allowed
        assert f"this end allows only {allowed[0]}" in e.message
        assert type(server_error) is ProtocolMismatchError
        assert_explained(server_error, cause=ssl.SSLError, side="local", role="server")
        assert server_error.reason == "UNSUPPORTED_PROTOCOL"
        assert server_error.mismatch == "version"
        assert server_error.local_versions == server_allowed
        assert server_error.peer is not None and server_error.peer[0] == LOOPBACK
        assert f"this end allows only {server_allowed[0]}" in server_error.message

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_server_offers_only_a_cbc_suite(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A TLS 1.2 server that allows only a CBC suite: mismatch 'cipher', its suite named."""
        sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)
        sctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is ProtocolMismatchError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        assert e.mismatch == "cipher"
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert "no cipher suite in common" in e.message
        assert "ECDHE-ECDSA-AES128-SHA (TLSv1.2)" in e.message
        assert "AEAD" in e.hint

    def test_client_offers_only_a_cbc_suite(self, xpki: Pki) -> None:
        """The server's side of the same mismatch: NO_SHARED_CIPHER, this end local."""
        sctx = securelink.server_context(xpki.server.server_options())
        legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        legacy.load_verify_locations(xpki.ca_file)
        legacy.maximum_version = TLS12
        legacy.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        with serve(tls_handler(sctx)) as (port, served):
            with (
                socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
                pytest.raises(ssl.SSLError),
            ):
                legacy.wrap_socket(raw, server_hostname="localhost")
            e = served.first_error()
        assert type(e) is ProtocolMismatchError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server")
        assert e.reason == "NO_SHARED_CIPHER"
        assert e.mismatch == "cipher"
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert "no cipher suite" in e.message
        assert "AEAD" in e.hint


class TestHelpers:
    """connect() and wrap_client() finish the handshake and never leave a socket open."""

    def test_connect_success(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """The control: connect() returns a socket whose handshake is done."""
        sctx = securelink.server_context(xpki.server.server_options())
        with (
            serve(tls_handler(sctx)) as (port, served),
            securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert served.received == [b"ping"]

    @pytest.mark.parametrize("helper", ["connect", "wrap_client"])
    def test_failed_handshake_closes_every_socket(
        self, xpki: Pki, client: ssl.SSLContext, helper: str
    ) -> None:
        """After a failed handshake no socket of this process is left open, on either end."""
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, served):
            before = open_sockets()
            if helper == "connect":
                with pytest.raises(CertificateExpiredError) as info:
                    securelink.connect(LOOPBACK, port, client, server_hostname="localhost")
            else:
                raw = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
                with pytest.raises(CertificateExpiredError) as info:
                    securelink.wrap_client(raw, client, server_hostname="localhost")
                assert raw.fileno() == -1
            served.wait_idle()
            # The exception (and its traceback's frames) is still alive: nothing was left to
            # the garbage collector.
            assert info.value.peer == (LOOPBACK, port)
            assert open_sockets() <= before

    @pytest.mark.parametrize("case", ["cipher-diagnosis", "reset-diagnosis", "wrap_server"])
    def test_diagnosis_and_server_close_their_sockets(self, xpki: Pki, case: str) -> None:
        """Diagnostic handshakes, and a server whose handshake failed, leave no socket open."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        if case == "cipher-diagnosis":
            sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)
            sctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
            handler = tls_handler(sctx)
        elif case == "reset-diagnosis":
            sctx = securelink.server_context(
                xpki.server.server_options(
                    client_auth=ClientAuth.VERIFY_IF_GIVEN, client_ca=xpki.ca.certificate
                )
            )
            handler = reset_unless_certificate(sctx)
        else:
            handler = wrap_server_handler(securelink.server_context(xpki.server.server_options()))
        with serve(handler) as (port, served):
            before = open_sockets()
            if case == "wrap_server":
                with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as plain:
                    plain.sendall(b"GET / HTTP/1.1\r\n\r\n")
                    with contextlib.suppress(ConnectionResetError):  # unread data: a reset
                        plain.recv(1024)
                assert type(served.first_error()) is NotTLSError
            else:
                with (  # noqa: PT012 - the handshake, the write or the read may fail
                    pytest.raises(securelink.HandshakeError) as info,
                    securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as tls,
                ):
                    tls.sendall(b"ping")
                    tls.recv(1024)
                assert served.accepted == 2  # the diagnostic handshake happened
                assert type(info.value) in (ProtocolMismatchError, ClientCertificateRequiredError)
            served.wait_idle()
            assert open_sockets() <= before

    def test_stdlib_context_through_connect(self, xpki: Pki) -> None:
        """connect() explains failures of a context securelink did not build, too."""
        plain = ssl.create_default_context(cafile=str(xpki.ca_file))
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _):
            e = provoke("connect", plain, port)
        assert type(e) is CertificateExpiredError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        # Without securelink's socket class the certificate is out of reach: no dates.
        assert e.not_after is None
        assert "expired" in e.message
