"""The public API used the way the docs use it, type-checked by ``mypy --strict``, never run.

mypy checks this file with the rest of ``tests`` (``files`` in pyproject.toml); pytest never
collects it (its name does not start with ``test_``) and nothing here runs at import: every use
is inside a function nobody calls.

The second half holds the mistakes typing must catch.  Each one is marked
``# type: ignore[<code>]``, and ``mypy --strict`` turns on ``warn_unused_ignores``: if the API
ever stops catching a mistake, its ignore becomes unused and mypy fails on this file.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from pathlib import Path

from cryptography import x509

import securelink
from securelink import aio, devca, errors
from securelink.errors import FrozenInstanceError

# --- the API as the docs use it ------------------------------------------------------------


def build_options(pem: bytes, certificate: x509.Certificate) -> None:
    """Every kind of value each option field takes."""
    # ca: a Trust, a path (str or PathLike), PEM/DER bytes, a certificate, or a list of them.
    securelink.ClientOptions()
    securelink.ClientOptions(ca=securelink.Trust.SYSTEM)
    securelink.ClientOptions(ca="minica.pem")
    securelink.ClientOptions(ca=Path("certs"))
    securelink.ClientOptions(ca=pem)
    securelink.ClientOptions(ca=certificate)
    securelink.ClientOptions(ca=[securelink.Trust.CERTIFI, "corp-ca.pem", certificate])
    client = securelink.ClientOptions(
        ca="minica.pem",
        cert="client.pem",
        key="client.key",
        password=lambda: "from a vault",
        min_version=ssl.TLSVersion.TLSv1_3,
        max_version=None,
        alpn=["h2", "http/1.1"],
        keylog=Path("keys.log"),
        verify_connection=lambda info: None,
        trace=lambda message: None,
        pin_public_keys=["0" * 64],
        diagnose=False,
    )
    securelink.ClientOptions(cert=securelink.PKCS12(b"..."), password=b"secret")
    securelink.ClientOptions(cert=["leaf.pem", "intermediate.pem"], key="leaf.key")
    changed: securelink.ClientOptions = client.replace(alpn=())
    assert changed.min_version is ssl.TLSVersion.TLSv1_3

    def on_name(name: str | None) -> None:
        """An on_server_name hook."""

    def check(info: securelink.ConnectionInfo) -> None:
        """A verify_connection hook that reads the typed facts."""
        if info.role == "server" and "spiffe://example.org/billing" not in info.peer_names:
            raise PermissionError(info.peer_names)

    securelink.ServerOptions(cert="server.pem", key="server.key")
    securelink.ServerOptions(cert=securelink.PKCS12(Path("server.p12")), password="pw")
    securelink.ServerOptions(
        cert=certificate,
        key=pem,
        client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY,
        client_ca=["clients-ca.pem", certificate],
        min_version=ssl.TLSVersion.TLSv1_3,  # below TLS 1.3 would contradict MODERN (at run time)
        max_version=ssl.TLSVersion.TLSv1_3,
        alpn=("h2",),
        keylog="keys.log",
        verify_connection=check,
        on_server_name=on_name,
        trace=print,
        profile=securelink.Profile.MODERN,
        certificates_by_name={
            "api.example.com": securelink.Identity(cert="api.pem", key="api.key"),
            "*.example.com": securelink.Identity(cert=securelink.PKCS12(b"...")),
        },
        unknown_names=securelink.UnknownNames.REJECT,
        allowed_peers=["spiffe://example.org/billing"],
    )


def build_contexts(client: securelink.ClientOptions, server: securelink.ServerOptions) -> None:
    """client_context and server_context, with and without shared=, give plain SSLContexts."""
    contexts: list[ssl.SSLContext] = [
        securelink.client_context(),
        securelink.client_context(client),
        securelink.client_context(client, shared=True),
        securelink.server_context(server),
        securelink.server_context(server, shared=True),
    ]
    assert all(ctx.minimum_version >= ssl.TLSVersion.TLSv1_2 for ctx in contexts)


def use_connections(client: securelink.ClientOptions, server: securelink.ServerOptions) -> None:
    """connect, wrap_client and wrap_server, with options or contexts, and who the peer is."""
    with securelink.connect("example.com", 443, client, timeout=5.0) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        identity = securelink.peer_identity(tls)
        if identity is not None:
            names: tuple[str, ...] = identity.dns_names
            spiffe: str | None = identity.spiffe_id
            fingerprint: str = identity.public_key_sha256
            expires: datetime.datetime = identity.not_after
            print(names, spiffe, fingerprint, expires, identity.chain)
    ctx = securelink.client_context(client)
    with socket.create_connection(("example.com", 443)) as raw:
        wrapped: ssl.SSLSocket = securelink.wrap_client(raw, ctx, server_hostname="example.com")
        wrapped.close()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn, _ = listener.accept()
        served: ssl.SSLSocket = securelink.wrap_server(conn, server, handshake_timeout=None)
        served.close()


async def use_asyncio(client: securelink.ClientOptions, server: securelink.ServerOptions) -> None:
    """securelink.aio.open_connection and start_server, as in the asyncio docs."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        identity = securelink.peer_identity(writer)
        writer.write(b"hello " + (identity.subject.encode() if identity else b"stranger"))
        await writer.drain()
        writer.close()

    def failed(error: securelink.SecureLinkError) -> None:
        print(type(error).__name__, error.hint)

    srv: asyncio.Server = await aio.start_server(
        handle, "127.0.0.1", 0, server, on_handshake_error=failed, handshake_timeout=5.0
    )
    async with srv:
        port: int = srv.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, client, server_hostname="localhost", ssl_handshake_timeout=5.0
        )
        line: bytes = await reader.readline()
        print(line)
        writer.close()
        await writer.wait_closed()


def use_inspect() -> None:
    """inspect() returns typed, frozen values."""
    result: securelink.Inspection = securelink.inspect("server.pem")
    for cert in result.certificates:
        info: securelink.CertificateInfo = cert
        days: int | float | None = info.days_left
        print(info.subject, info.dns_names, days, info.public_key_sha256)
    for finding in result.findings:
        print(finding.code, finding.severity, finding.message)
    codes: object = result.codes
    print(codes, result.to_dict())
    securelink.inspect(b"-----BEGIN CERTIFICATE-----...", password="pw")


def use_explain(ctx: ssl.SSLContext) -> None:
    """explain() and translate_errors for contexts securelink did not build."""
    try:
        socket.create_connection(("example.com", 443)).close()
    except OSError as exc:
        explained: securelink.SecureLinkError = securelink.explain(
            exc, server_hostname="example.com", context=ctx, peer=("example.com", 443)
        )
        print(explained.message, explained.hint)
    with securelink.translate_errors(server_hostname="example.com", context=ctx):
        pass


def use_errors(options: securelink.ClientOptions) -> None:
    """Every error class, caught as the docs catch it, with its structured fields typed."""
    try:
        securelink.connect("example.com", 443, options)
    except securelink.UnknownAuthorityError as exc:
        print(exc.issuer, exc.trusted, exc.kind, exc.verify_code, exc.certificate, exc.chain)
    except securelink.HostnameMismatchError as exc:
        presented: tuple[str, ...] = exc.presented
        print(exc.expected, presented, exc.common_name)
    except securelink.CertificateExpiredError as exc:
        expired_for: datetime.timedelta | None = exc.expired_for
        print(exc.not_after, expired_for)
    except securelink.CertificateNotYetValidError as exc:
        print(exc.not_before, exc.valid_in)
    except securelink.CertificateVerificationError as exc:
        print(exc.verify_code, exc.verify_message)
    except securelink.ClientCertificateRequiredError as exc:
        print(exc.alert, exc.side)
    except securelink.CertificateRejectedError as exc:
        print(exc.alert, exc.certificate)
    except securelink.RemoteError as exc:
        print(exc.alert)
    except securelink.ProtocolMismatchError as exc:
        print(exc.mismatch, exc.local_versions, exc.peer_version, exc.peer_cipher)
    except securelink.NotTLSError as exc:
        print(exc.peer, exc.role)
    except securelink.ConnectionRejectedError as exc:
        print(exc.hook, exc.hook_reason)
    except securelink.HandshakeTimeoutError as exc:
        print(exc.timeout, exc.silent)
    except securelink.HandshakeError as exc:
        peer: tuple[str, int] | None = exc.peer
        print(exc.side, exc.role, exc.server_hostname, peer, exc.library, exc.reason, exc.errno)
    except securelink.NothingListeningError as exc:
        port: int | None = exc.port
        print(exc.host, port, exc.errno)
    except ssl.SSLError:  # still caught by the stdlib's classes
        raise
    try:
        securelink.server_context(securelink.ServerOptions(cert="server.pem", key="old.key"))
    except securelink.KeyMismatchError as exc:
        print(exc.source, exc.cert_source, exc.found)
    except securelink.KeyPasswordError as exc:
        print(exc.reason)
    except errors.InputTooLargeError as exc:
        print(exc.size, exc.limit)
    except securelink.CertificateProblemError as exc:
        print(exc.problem, exc.subject, exc.not_before, exc.not_after)
    except securelink.MaterialError as exc:
        print(exc.source, exc.found)
    except securelink.ConfigurationError as exc:
        field: str = exc.field
        print(field)
    try:
        options.ca = "other.pem"  # type: ignore[misc]  # the typed way to show the runtime error
    except FrozenInstanceError as exc:
        print(exc.type_name, exc.field)
    assert errors.FrozenInstanceError is securelink.FrozenInstanceError
    try:
        securelink.peer_identity(socket.socket())  # type: ignore[arg-type]
    except securelink.IdentityUnavailableError as exc:
        print(exc.problem)


def use_devca(tmp: Path) -> None:
    """The development CA, as in docs/devca.md."""
    ca = devca.CertificateAuthority(common_name="Dev CA", key_type=devca.KeyType.ECDSA_P256)
    leaf: devca.IssuedCertificate = ca.issue(
        "localhost", "127.0.0.1", usage=devca.Usage.SERVER, valid_for=datetime.timedelta(days=30)
    )
    server: securelink.ServerOptions = leaf.server_options()
    client: securelink.ClientOptions = ca.issue("alice").client_options(ca=ca.cert_pem)
    securelink.ServerOptions(cert=leaf.certificate, key=leaf.private_key)
    p12: bytes = leaf.pkcs12("pw")
    request = devca.create_csr("api.example.com")
    signed: x509.Certificate = ca.sign_csr(request.csr)
    files: devca.MinicaFiles = devca.minica(tmp, domains=["localhost"])
    print(server, client, p12, signed, files.cert)


def use_rotation(options: securelink.ServerOptions) -> None:
    """RotatingServerContext serves one stable context and reloads in place."""

    def report(error: securelink.SecureLinkError) -> None:
        print(error.message)

    rotating = securelink.RotatingServerContext(
        options, poll_interval=1.0, expiry_warning_days=14, on_error=report
    )
    rotating.start()
    ctx: ssl.SSLContext = rotating.context
    days: float | None = rotating.days_left
    print(ctx, days, rotating.generation, rotating.certificate)
    rotating.reload()
    rotating.stop()


# --- the mistakes typing must catch -------------------------------------------------------


def mistakes(
    client: securelink.ClientOptions, server: securelink.ServerOptions, path: Path
) -> None:
    """Each line is a mistake mypy reports; an unused ignore means it stopped doing so."""

    def no_argument() -> None:
        """A verify_connection hook that forgot its ConnectionInfo parameter."""

    securelink.ClientOptions("ca.pem")  # type: ignore[call-arg]
    securelink.ClientOptions(ca=1234)  # type: ignore[arg-type]
    securelink.ClientOptions(cert="c.pem", kye="c.key")  # type: ignore[call-arg]
    securelink.ServerOptions()  # type: ignore[call-arg]
    securelink.ServerOptions(key="server.key")  # type: ignore[call-arg]
    securelink.client_context(server)  # type: ignore[arg-type]
    securelink.server_context(client)  # type: ignore[arg-type]
    securelink.server_context()  # type: ignore[call-arg]
    securelink.client_context(client, True)  # type: ignore[call-arg]
    client.ca = "other.pem"  # type: ignore[misc]
    server.client_auth = securelink.ClientAuth.NONE  # type: ignore[misc]
    securelink.ServerOptions(
        cert="s.pem",
        key="s.key",
        client_auth="require-and-verify",  # type: ignore[arg-type]
        client_ca="ca.pem",
    )
    securelink.ServerOptions(cert="s.pem", key="s.key", client_auth=True)  # type: ignore[arg-type]
    securelink.ClientOptions(min_version="TLSv1.3")  # type: ignore[arg-type]
    securelink.ClientOptions(min_version=ssl.PROTOCOL_TLS_CLIENT)  # type: ignore[arg-type]
    securelink.ServerOptions(cert="s.pem", key="s.key", profile="modern")  # type: ignore[arg-type]
    securelink.ServerOptions(cert="s.pem", key="s.key", unknown_names="reject")  # type: ignore[arg-type]
    securelink.ClientOptions(ca=securelink.ClientAuth.NONE)  # type: ignore[arg-type]
    securelink.ClientOptions(verify_connection=no_argument)  # type: ignore[arg-type]
    securelink.ServerOptions(cert="s.pem", certificates_by_name={"a.example": "a.pem"})  # type: ignore[dict-item]
    securelink.connect("example.com", "443", client)  # type: ignore[arg-type]
    securelink.connect("example.com", 443, server)  # type: ignore[arg-type]
    securelink.wrap_client(socket.socket(), client)  # type: ignore[call-arg]
    securelink.wrap_server(socket.socket(), client)  # type: ignore[arg-type]
    securelink.inspect(1234)  # type: ignore[arg-type]
    securelink.RotatingServerContext(client)  # type: ignore[arg-type]
    identity = securelink.peer_identity(socket.socket())  # type: ignore[arg-type]
    print(identity.subject)  # type: ignore[union-attr]
    securelink.explain("refused")  # type: ignore[arg-type]
    error = securelink.explain(ConnectionRefusedError())
    print(error.port)  # type: ignore[attr-defined]
    securelink.NothingListeningError("x", host="h")  # type: ignore[call-arg]
    securelink.ConfigurationError("x")  # type: ignore[call-arg]
    devca.CertificateAuthority("Dev CA")  # type: ignore[call-arg]
    devca.CertificateAuthority(valid_for=30)  # type: ignore[arg-type]
    asyncio.run(aio.open_connection("h", 443, server))  # type: ignore[arg-type]
    print(path)
