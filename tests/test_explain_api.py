"""explain(), translate_errors(), pickling, and the stdlib classes every explanation still is.

The exceptions examined here come from real failures on 127.0.0.1 (only the base class and the
hooks' ConnectionRejectedError are made by hand): a module fixture provokes each kind once.
"""

from __future__ import annotations

import http.server
import pickle
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import securelink
from securelink import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateProblemError,
    CertificateVerificationError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    ConfigurationError,
    HandshakeError,
    HandshakeTimeoutError,
    HostnameMismatchError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    NothingListeningError,
    NotTLSError,
    ProtocolMismatchError,
    SecureLinkError,
    ServerOptions,
    UnknownAuthorityError,
    errors,
)

from .explain_peers import (
    HTTP_400,
    LOOPBACK,
    ONLY_CAFILE,
    OPENSSL,
    TIMEOUT,
    TLS12,
    TLS13,
    Pki,
    Served,
    assert_explained,
    build_pki,
    closed_port,
    flawed_chain,
    plaintext_handler,
    s_server,
    serve,
    stdlib_client_context,
    stdlib_server_context,
    tls_handler,
)

requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is missing")


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests, with the flawed ones as files."""
    return build_pki(tmp_path_factory.mktemp("explain-api"))


def _connect_error(ctx: ssl.SSLContext, port: int, name: str = "localhost") -> BaseException:
    with pytest.raises(SecureLinkError) as info:
        securelink.connect(LOOPBACK, port, ctx, server_hostname=name, timeout=TIMEOUT)
    return info.value


def _stdlib_error(ctx: ssl.SSLContext, port: int, name: str = "localhost") -> ssl.SSLError:
    """What a bare stdlib client raises (nothing securelink touched)."""
    with (
        socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLError) as info,
    ):
        ctx.wrap_socket(raw, server_hostname=name)
    assert not isinstance(info.value, SecureLinkError)
    return info.value


def _silent(conn: socket.socket, served: Served) -> None:
    """A server that reads whatever comes and never answers, until the client hangs up."""
    while data := conn.recv(65536):
        served.received.append(data)


@pytest.fixture(scope="module")
def real(xpki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BaseException]:
    """One real instance of every securelink exception class, by class name."""
    found: dict[str, BaseException] = {}
    client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
    server = securelink.server_context(xpki.server.server_options())

    def server_ctx(options: ServerOptions) -> ssl.SSLContext:
        return securelink.server_context(options)

    with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _):
        found["CertificateExpiredError"] = _connect_error(client, port)
    with serve(tls_handler(stdlib_server_context(xpki.files["future"]))) as (port, _):
        found["CertificateNotYetValidError"] = _connect_error(client, port)
    with serve(tls_handler(server_ctx(xpki.stranger_server.server_options()))) as (port, _):
        found["UnknownAuthorityError"] = _connect_error(client, port)
    with serve(tls_handler(server)) as (port, _):
        found["HostnameMismatchError"] = _connect_error(client, port, "api.example.test")
    with serve(tls_handler(server_ctx(xpki.wrong_eku.server_options()))) as (port, _):
        found["CertificateVerificationError"] = _connect_error(client, port)
    with serve(plaintext_handler(HTTP_400)) as (port, _):
        found["NotTLSError"] = _connect_error(client, port)
    only13 = securelink.client_context(ClientOptions(ca=xpki.ca_file, min_version=TLS13))
    with serve(tls_handler(server_ctx(xpki.server.server_options(max_version=TLS12)))) as (
        port,
        _,
    ):
        found["ProtocolMismatchError"] = _connect_error(only13, port)
    mtls = server_ctx(
        xpki.server.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=xpki.ca.certificate,
            max_version=TLS12,
        )
    )
    with serve(tls_handler(mtls)) as (port, _):
        found["ClientCertificateRequiredError"] = _connect_error(client, port)
    stranger = securelink.client_context(xpki.stranger_client.client_options(ca=xpki.ca_file))
    with serve(tls_handler(mtls)) as (port, _):
        found["CertificateRejectedError"] = _connect_error(stranger, port)
    with serve(tls_handler(server)) as (port, served):  # a client that hangs up at once
        socket.create_connection((LOOPBACK, port), timeout=TIMEOUT).close()
        found["RemoteError"] = served.first_error()
    with pytest.raises(NothingListeningError) as refused:
        securelink.connect(LOOPBACK, closed_port(), client, timeout=TIMEOUT)
    found["NothingListeningError"] = refused.value
    with serve(_silent) as (port, _):
        # A silent server: the handshake times out, which nothing recognises.
        with pytest.raises(TimeoutError) as timeout:
            securelink.connect(LOOPBACK, port, client, timeout=0.2)
        found["HandshakeError"] = securelink.explain(
            timeout.value, server_hostname="localhost", peer=(LOOPBACK, port)
        )
    with (
        socket.create_server((LOOPBACK, 0)) as listener,
        socket.create_connection(listener.getsockname(), timeout=TIMEOUT),  # says nothing
    ):
        conn, _ = listener.accept()
        with pytest.raises(HandshakeTimeoutError) as gave_up:
            securelink.wrap_server(conn, server, handshake_timeout=0.2)
        found["HandshakeTimeoutError"] = gave_up.value
    with pytest.raises(ConfigurationError) as config:
        ServerOptions(cert=xpki.server.certificate, key=xpki.server.private_key,
                      min_version=TLS13, max_version=TLS12)  # fmt: skip
    found["ConfigurationError"] = config.value
    missing = tmp_path_factory.mktemp("missing") / "nothing-here.pem"
    with pytest.raises(MaterialError) as material:
        securelink.client_context(ClientOptions(ca=missing))
    found["MaterialError"] = material.value
    with pytest.raises(KeyMismatchError) as mismatch:
        securelink.server_context(
            ServerOptions(cert=xpki.server.certificate, key=xpki.client.private_key)
        )
    found["KeyMismatchError"] = mismatch.value
    with pytest.raises(KeyPasswordError) as password:
        securelink.server_context(
            ServerOptions(cert=xpki.server.certificate, key=xpki.server.encrypted_key_pem("pw"))
        )
    found["KeyPasswordError"] = password.value
    with pytest.raises(errors.InputTooLargeError) as too_large:
        securelink.client_context(ClientOptions(ca=b"\n" * (securelink.MAX_INPUT_SIZE + 1)))
    found["InputTooLargeError"] = too_large.value
    with pytest.raises(CertificateProblemError) as problem:
        securelink.server_context(ServerOptions(cert=xpki.files["expired"].cert,
                                                key=xpki.files["expired"].key))  # fmt: skip
    found["CertificateProblemError"] = problem.value
    # Made by hand: the base class, and the class this end's own hooks raise.
    found["SecureLinkError"] = SecureLinkError("the base class, made by hand.", hint="None.")
    found["ConnectionRejectedError"] = errors.ConnectionRejectedError(
        "verify_connection refused the server 'localhost'.",
        hook="verify_connection",
        hook_reason="not on the list",
        side="local",
        role="client",
        server_hostname="localhost",
        peer=(LOOPBACK, 4242),
        hint="Check the hook.",
    )
    # A real one: peer_identity() on a socket whose handshake has not been done.
    import socket as socket_module

    from securelink import peer_identity

    left, right = socket_module.socketpair()
    with left, right:
        unstarted = securelink.client_context().wrap_socket(
            left, server_hostname="localhost", do_handshake_on_connect=False
        )
        with pytest.raises(errors.IdentityUnavailableError) as unavailable:
            peer_identity(unstarted)
        unstarted.close()
    found["IdentityUnavailableError"] = unavailable.value
    # A real one: assigning to a field of frozen options.
    client_options = ClientOptions(ca=xpki.ca_file)
    with pytest.raises(errors.FrozenInstanceError) as frozen:
        client_options.ca = securelink.Trust.SYSTEM  # type: ignore[misc]
    found["FrozenInstanceError"] = frozen.value
    for name, e in found.items():
        assert type(e).__name__ == name
    return found


EXCEPTIONS = sorted(
    name
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), Exception)
    and not issubclass(getattr(errors, name), Warning)
)  # fmt: skip


class TestPickle:
    """Every securelink exception survives pickle with its class, text and facts."""

    def test_every_class_is_covered(self, real: dict[str, BaseException]) -> None:
        """The fixture holds a real instance of each exception class securelink.errors exports."""
        assert sorted(real) == EXCEPTIONS

    @pytest.mark.parametrize("name", EXCEPTIONS)
    def test_round_trip(self, real: dict[str, BaseException], name: str) -> None:
        """Class, message, hint, args, errno and every attribute come back equal."""
        e = real[name]
        back = pickle.loads(pickle.dumps(e))  # noqa: S301 - our own bytes
        assert type(back) is type(e)
        assert str(back) == str(e)
        assert back.args == e.args
        assert isinstance(back, SecureLinkError) and isinstance(e, SecureLinkError)
        assert (back.message, back.hint) == (e.message, e.hint)
        assert vars(back) == vars(e)
        if isinstance(e, OSError):
            assert isinstance(back, OSError)
            assert back.errno == e.errno
        if isinstance(e, HandshakeError):
            assert isinstance(back, ssl.SSLError)
            assert (back.library, back.reason) == (e.library, e.reason)

    def test_errno_of_the_original(self, real: dict[str, BaseException]) -> None:
        """`e.errno` is the original's (1: an SSL error; 8: an EOF), also after pickle."""
        kept = {}
        for name, e in real.items():
            cause = e.__cause__
            if not isinstance(e, HandshakeError) or not isinstance(cause, OSError):
                continue
            if cause.errno is None:  # a handshake timeout has none
                assert e.errno is None
                continue
            assert e.errno == cause.errno, name
            assert pickle.loads(pickle.dumps(e)).errno == cause.errno  # noqa: S301
            kept[name] = e.errno
        for name in ("CertificateExpiredError", "UnknownAuthorityError", "NotTLSError",
                     "ProtocolMismatchError", "ClientCertificateRequiredError"):  # fmt: skip
            assert kept[name] == ssl.SSL_ERROR_SSL, name

    def test_facts_are_attributes(self, real: dict[str, BaseException]) -> None:
        """The rich facts (summaries, dates, durations) are there after the round trip."""
        expired = pickle.loads(pickle.dumps(real["CertificateExpiredError"]))  # noqa: S301
        assert type(expired) is CertificateExpiredError
        assert expired.certificate is not None and expired.certificate.names == ("localhost",)
        assert expired.not_after is not None and expired.expired_for is not None
        assert expired.chain and expired.chain[0] == expired.certificate


class TestStdlibCompatibility:
    """Code written for the stdlib's exceptions still catches the explanations."""

    @pytest.mark.parametrize(
        "name",
        [
            "NotTLSError",
            "ProtocolMismatchError",
            "CertificateVerificationError",
            "UnknownAuthorityError",
            "HostnameMismatchError",
            "CertificateExpiredError",
            "CertificateNotYetValidError",
            "RemoteError",
            "ClientCertificateRequiredError",
            "CertificateRejectedError",
            "HandshakeError",
        ],
    )
    def test_except_ssl_error(self, real: dict[str, BaseException], name: str) -> None:
        """`except ssl.SSLError` (and OSError) catches every handshake explanation."""
        e = real[name]
        with pytest.raises(ssl.SSLError) as info:
            raise e
        assert info.value is e
        assert isinstance(e, OSError)

    @pytest.mark.parametrize(
        "name",
        [
            "CertificateVerificationError",
            "UnknownAuthorityError",
            "HostnameMismatchError",
            "CertificateExpiredError",
            "CertificateNotYetValidError",
        ],
    )
    def test_except_verification_error(self, real: dict[str, BaseException], name: str) -> None:
        """`except ssl.SSLCertVerificationError` (a ValueError too) catches verification ones."""
        e = real[name]
        with pytest.raises(ssl.SSLCertVerificationError):
            raise e
        with pytest.raises(ValueError):  # noqa: PT011 - the stdlib's own MRO, on purpose
            raise e
        assert isinstance(e, CertificateVerificationError)
        assert isinstance(e.__cause__, ssl.SSLCertVerificationError)
        assert e.verify_code == e.__cause__.verify_code

    def test_except_connection_refused(self, real: dict[str, BaseException]) -> None:
        """`except ConnectionRefusedError` catches NothingListeningError, errno 111."""
        e = real["NothingListeningError"]
        with pytest.raises(ConnectionRefusedError) as info:
            raise e
        assert info.value.errno == 111


def _raw_client_error(ctx: ssl.SSLContext, port: int) -> BaseException:
    """What a bare stdlib client raises in a whole session (handshake, write, read)."""
    try:
        with (
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"ping\n")
            tls.recv(1024)
    except OSError as exc:
        return exc
    raise AssertionError("the session did not fail")


class TestExplain:
    """explain() turns errors from plain stdlib contexts into the same classes."""

    def test_expired(self, xpki: Pki) -> None:
        """A bare client's verification error: the class and code, without the certificate."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _):
            raw = _stdlib_error(plain, port)
        e = securelink.explain(
            raw, server_hostname="localhost", context=plain, peer=(LOOPBACK, port)
        )
        assert type(e) is CertificateExpiredError
        assert e.__cause__ is raw
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.certificate is None and e.not_after is None  # the connection is gone
        assert (
            e.message
            == f"A certificate presented by the server 'localhost' port {port} has expired."
        )

    def test_invalid_ca_without_the_chain(self, xpki: Pki, tmp_path: Path) -> None:
        """Code 79 from a bare client: a CA at fault, but which one is not known here."""
        bad = flawed_chain(tmp_path, xpki.ca, "inter-ca-false")
        plain = stdlib_client_context(ca=xpki.ca_file)
        with serve(tls_handler(stdlib_server_context(bad.files))) as (port, _):
            raw = _stdlib_error(plain, port)
        e = securelink.explain(raw, server_hostname="localhost", peer=(LOOPBACK, port))
        assert type(e) is CertificateVerificationError
        assert (e.verify_code, e.certificate, e.chain) == (79, None, ())
        assert e.message == (
            f"The server certificate of the server 'localhost' port {port} failed verification:"
            " a CA certificate in its chain is not a valid CA certificate, yet it issued the"
            " certificate below it."
        )
        assert "a leaf certificate cannot issue others" in e.hint

    def test_hostname_mismatch_without_arguments(self, xpki: Pki) -> None:
        """With nothing but the exception: the name comes from OpenSSL's message, no SAN claimed."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        sctx = securelink.server_context(xpki.server.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            raw = _stdlib_error(plain, port, "api.example.test")
        e = securelink.explain(raw)
        assert type(e) is HostnameMismatchError
        assert e.expected == "api.example.test"
        assert e.presented == ()
        assert e.peer is None and e.server_hostname is None
        assert "is not valid for 'api.example.test'" in e.message
        assert "names no host" not in e.message

    def test_unknown_authority_names_the_trusted_cas(self, xpki: Pki) -> None:
        """For a context securelink did not build, 'trusted' counts its CA certificates."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        sctx = securelink.server_context(xpki.stranger_direct.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            raw = _stdlib_error(plain, port)
        e = securelink.explain(raw, server_hostname="localhost", context=plain)
        assert type(e) is UnknownAuthorityError
        assert e.trusted == "1 CA certificate loaded into the context"
        assert e.kind == "unknown-issuer"
        # Without the chain the issuer is unknown: left out, not a placeholder.
        assert e.issuer == ""
        assert e.certificate is None
        assert "unknown" not in str(e)
        assert "''" not in str(e)
        assert e.message == (
            "The server certificate presented by the server 'localhost' was issued by a CA that is"
            " not among the trusted CAs (1 CA certificate loaded into the context)."
        )
        assert e.hint.startswith("If its issuer is your own CA, add that CA's certificate to ca=")

    def test_urllib_error(self, xpki: Pki) -> None:
        """A URLError is unwrapped; the explanation's cause is the URLError itself."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=plain)
        )
        with (
            serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _),
            pytest.raises(urllib.error.URLError) as info,
        ):
            opener.open(f"https://localhost:{port}/", timeout=TIMEOUT)
        e = securelink.explain(info.value, server_hostname="localhost")
        assert type(e) is CertificateExpiredError
        assert e.__cause__ is info.value
        assert e.verify_code == 10

    def test_urllib_error_already_explained(self, xpki: Pki) -> None:
        """A URLError around a securelink explanation gives back that explanation, untouched."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=client)
        )
        with (
            serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _),
            pytest.raises(urllib.error.URLError) as info,
        ):
            opener.open(f"https://localhost:{port}/", timeout=TIMEOUT)
        inner = info.value.reason
        assert type(inner) is CertificateExpiredError
        assert securelink.explain(info.value) is inner
        assert type(inner.__cause__) is ssl.SSLCertVerificationError

    def test_already_explained(self, real: dict[str, BaseException]) -> None:
        """A securelink error is its own explanation."""
        e = real["HostnameMismatchError"]
        assert securelink.explain(e) is e

    def test_connection_refused(self) -> None:
        """A bare ConnectionRefusedError with its address becomes NothingListeningError."""
        port = closed_port()
        with pytest.raises(ConnectionRefusedError) as info:
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
        e = securelink.explain(info.value, peer=(LOOPBACK, port))
        assert type(e) is NothingListeningError
        assert (e.host, e.port) == (LOOPBACK, port)
        assert e.__cause__ is info.value

    @pytest.mark.parametrize("name", [None, "api.example.test"])
    def test_connection_refused_without_the_address(self, name: str | None) -> None:
        """Without *peer* it is still NothingListeningError, and invents no host or port."""
        port = closed_port()
        with pytest.raises(ConnectionRefusedError) as info:
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
        e = securelink.explain(info.value, server_hostname=name)
        assert type(e) is NothingListeningError
        assert_explained(e, cause=ConnectionRefusedError)
        assert isinstance(e, ConnectionRefusedError)
        assert (e.host, e.port, e.errno) == (None, None, 111)
        assert str(port) not in str(e)
        assert LOOPBACK not in e.message
        to = f" to {name!r}" if name else ""
        assert e.message == (
            f"The connection{to} was refused before any TLS was spoken: nothing is listening on"
            " the address and port it was made to."
        )
        back = pickle.loads(pickle.dumps(e))  # noqa: S301
        assert (type(back), back.host, back.port, back.errno) == (type(e), None, None, 111)

    def test_unrecognised_is_kept(self, real: dict[str, BaseException]) -> None:
        """A failure nothing recognises (a handshake timeout) becomes HandshakeError, cause kept."""
        e = real["HandshakeError"]
        assert type(e) is HandshakeError
        assert type(e.__cause__) is TimeoutError
        assert e.hint and "__cause__" in e.hint
        assert "timed out" in e.message

    @requires_openssl
    def test_tls12_handshake_failure_is_diagnosed(self, tmp_path: Path, xpki: Pki) -> None:
        """TLS 1.2's generic alert: given the peer, a diagnosis finds the certificate request."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        args = ("-tls1_2", "-Verify", "1", "-verify_return_error", "-CAfile", str(xpki.ca_file),
                *ONLY_CAFILE)  # fmt: skip
        with s_server(tmp_path, xpki.files["server"], *args, naccept=3) as server:
            raw = _raw_client_error(plain, server.port)
            assert type(raw) is ssl.SSLError
            assert raw.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
            blind = securelink.explain(raw, server_hostname="localhost")
            e = securelink.explain(raw, server_hostname="localhost", peer=(LOOPBACK, server.port))
        # Without the address nothing tells a missing certificate from a cipher mismatch.
        assert type(blind) is ProtocolMismatchError
        assert blind.mismatch == "unknown"
        assert type(e) is ClientCertificateRequiredError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=server.port,
        )
        assert e.alert == "handshake failure"

    def test_server_context_gives_the_server_role(self, xpki: Pki) -> None:
        """With a server context, explain() speaks as the server."""
        plain_server = stdlib_server_context(xpki.files["server"])
        with serve(tls_handler(plain_server)) as (port, served):
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
            raw_error = served.first_error()
        e = securelink.explain(raw_error, context=plain_server, peer=(LOOPBACK, 4242))
        assert type(e) is NotTLSError
        assert (e.side, e.role, e.peer) == ("local", "server", (LOOPBACK, 4242))
        assert f"The client {LOOPBACK} port 4242 sent a plaintext HTTP request" in e.message


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A plaintext HTTP server on 127.0.0.1:0 that answers 404 to everything."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer((LOOPBACK, 0), NotFound)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive()


class TestTranslateErrors:
    """translate_errors() raises the explanation from the original, and only for TLS failures."""

    def test_stdlib_context(self, xpki: Pki) -> None:
        """Through urllib with a bare context: the URLError becomes the explanation."""
        plain = stdlib_client_context(ca=xpki.ca_file)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=plain)
        )
        with (
            serve(tls_handler(stdlib_server_context(xpki.files["future"]))) as (port, _),
            pytest.raises(CertificateNotYetValidError) as info,
            securelink.translate_errors(
                server_hostname="localhost", context=plain, peer=(LOOPBACK, port)
            ),
        ):
            opener.open(f"https://localhost:{port}/", timeout=TIMEOUT)
        e = info.value
        assert type(e) is CertificateNotYetValidError
        assert type(e.__cause__) is urllib.error.URLError
        assert (e.server_hostname, e.peer) == ("localhost", (LOOPBACK, port))

    def test_securelink_context_is_unwrapped(self, xpki: Pki) -> None:
        """Through urllib with a securelink context: the explanation inside it, cause kept."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=client)
        )
        with (
            serve(tls_handler(stdlib_server_context(xpki.files["future"]))) as (port, _),
            pytest.raises(CertificateNotYetValidError) as info,
            securelink.translate_errors(),
        ):
            opener.open(f"https://localhost:{port}/", timeout=TIMEOUT)
        assert type(info.value.__cause__) is ssl.SSLCertVerificationError
        assert info.value.not_before is not None  # explained where the chain was known

    def test_http_error_passes_through(self, plain_http: int) -> None:
        """An HTTP 404 (a URLError too) is not a TLS failure: it comes out unchanged."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as info, securelink.translate_errors():
            opener.open(f"http://{LOOPBACK}:{plain_http}/", timeout=TIMEOUT)
        assert type(info.value) is urllib.error.HTTPError
        assert info.value.code == 404
        info.value.close()

    def test_other_errors_pass_through(self) -> None:
        """Exceptions that are not about connections are not touched: the same object."""
        error = KeyError("x")
        with pytest.raises(KeyError) as info, securelink.translate_errors():
            raise error
        assert info.value is error

    def test_explain_refuses_other_errors(self) -> None:
        """explain() of an exception holding no TLS or connection error raises TypeError."""
        with pytest.raises(TypeError, match=r"explains TLS and connection errors") as info:
            securelink.explain(KeyError("x"))
        assert type(info.value) is TypeError

    def test_refused(self) -> None:
        """A refused connection inside the block becomes NothingListeningError."""
        port = closed_port()
        with (
            pytest.raises(NothingListeningError) as info,
            securelink.translate_errors(peer=(LOOPBACK, port)),
        ):
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
        assert type(info.value.__cause__) is ConnectionRefusedError
        assert info.value.port == port


VERIFY_PAGE = (
    Path(__file__).resolve().parent.parent / "docs/errors/certificate-verification-error.md"
)
X509_VFY_H = Path("/usr/include/openssl/x509_vfy.h")


def _documented_codes() -> dict[int, tuple[str, str]]:
    """The page's table of verification codes: code -> (OpenSSL name, verify_message)."""
    rows = {}
    for line in VERIFY_PAGE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1].strip("`"), cells[2])
    return rows


def _openssl_text(code: int) -> str | None:
    """OpenSSL's own text for a verification code, from the libcrypto that ssl uses (Linux)."""
    import ctypes

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "libcrypto" in line}
    for path in paths:
        text = ctypes.CDLL(path).X509_verify_cert_error_string
        text.restype = ctypes.c_char_p
        text.argtypes = [ctypes.c_long]
        return bytes(text(code)).decode()
    return None


class TestVerifyCodes:
    """The table of verification codes agrees with OpenSSL 3, the code, and its documentation."""

    def test_documented_codes_are_the_explained_ones(self) -> None:
        """Every code with its own explanation is on the page, and no other."""
        from securelink import _translate

        assert set(_documented_codes()) == set(_translate._VERIFY_TEXT)

    @pytest.mark.parametrize("code", sorted(_documented_codes()))
    def test_openssl_says_the_same(self, code: int) -> None:
        """The page's verify_message is the text of the OpenSSL that ssl links (3.0 numbering)."""
        name, message = _documented_codes()[code]
        assert ssl.OPENSSL_VERSION_INFO[0] >= 3
        text = _openssl_text(code)
        if text is None:
            pytest.skip("libcrypto's verification texts are not reachable here")
        assert text == message
        if X509_VFY_H.exists():
            assert re.search(rf"#\s*define X509_V_ERR_{name}\s+{code}\b", X509_VFY_H.read_text())
