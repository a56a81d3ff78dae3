"""``securelink demo``: a development CA, mutual TLS on loopback, and two failures explained."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from . import devca
from ._context import client_context, server_context
from ._options import ClientAuth, ClientOptions, ServerOptions
from .errors import SecureLinkError

if TYPE_CHECKING:
    from cryptography import x509

_TIMEOUT = 10.0


def _describe(der: bytes) -> dict[str, str]:
    from cryptography import x509

    return _facts(x509.load_der_x509_certificate(der))


def _facts(cert: x509.Certificate) -> dict[str, str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string() or "(empty)",
        "SANs": ", ".join(names) or "(none)",
        "issuer": cert.issuer.rfc4514_string(),
    }


class _Server:
    """A one-connection-at-a-time TLS server on 127.0.0.1:0, in a thread."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(_TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.seen: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(_TIMEOUT)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                der = tls.getpeercert(binary_form=True)
                cipher = tls.cipher()
                self.seen = {
                    "peer": _describe(der) if der else None,
                    "version": tls.version(),
                    "cipher": cipher[0] if cipher else None,
                }
                tls.sendall(b"hello from the server: " + tls.recv(100))
        except (OSError, ssl.SSLError) as exc:
            self.seen = {"error": exc}
        finally:
            conn.close()

    def close(self) -> None:
        self.thread.join(_TIMEOUT)
        self.listener.close()


def _connect(ctx: ssl.SSLContext, port: int, server_hostname: str) -> dict[str, Any]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        tls.sendall(b"hello from the client")
        reply = tls.recv(100)
        cipher = tls.cipher()
        return {
            "peer": _describe(tls.getpeercert(binary_form=True) or b""),
            "version": tls.version(),
            "cipher": cipher[0] if cipher else None,
            "reply": reply.decode(),
        }


def _certificate_of(path: str) -> x509.Certificate:
    from cryptography import x509

    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def run(out: TextIO, *, step: Callable[[], None] | None = None) -> int:
    """Run the demo, printing to *out*; return the exit status."""

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def pause() -> None:
        if step is not None:
            step()

    with tempfile.TemporaryDirectory(prefix="securelink-demo-") as work:
        say("securelink demo: mutual TLS on 127.0.0.1, in " + work)
        say()
        say("1. A development CA, in minica's layout")
        server_files = devca.minica(work, domains=["localhost"], ip_addresses=["127.0.0.1"])
        client_files = devca.minica(work, domains=["client.demo"])
        for path in (
            server_files.ca_cert,
            server_files.ca_key,
            server_files.cert,
            server_files.key,
            client_files.cert,
            client_files.key,
        ):
            mode = os.stat(path).st_mode & 0o777
            say(f"   wrote {os.path.relpath(path, work):<24} mode {mode:04o}")
        pause()

        say()
        say("2. A server that requires client certificates, and a client that has one")
        server_options = ServerOptions(
            cert=server_files.cert,
            key=server_files.key,
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=server_files.ca_cert,
        )
        client_options = ClientOptions(
            ca=server_files.ca_cert, cert=client_files.cert, key=client_files.key
        )
        server = _Server(server_context(server_options))
        try:
            client_seen = _connect(client_context(client_options), server.port, "localhost")
        finally:
            server.close()
        if "error" in server.seen:
            say(f"   the server failed: {server.seen['error']}")
            return 1
        say("   the client verified the server:")
        for key, value in client_seen["peer"].items():
            say(f"     {key:<8} {value}")
        say("   the server verified the client:")
        for key, value in (server.seen["peer"] or {}).items():
            say(f"     {key:<8} {value}")
        say(f"   negotiated {client_seen['version']} with {client_seen['cipher']}")
        say(f"   the client received: {client_seen['reply']!r}")
        pause()

        say()
        say("3. Failure: a client that trusts only the public CAs (certifi)")
        say("   -> 'certificate signed by unknown authority'")
        _show_failure(
            say,
            ServerOptions(cert=server_files.cert, key=server_files.key),
            ClientOptions(),
            "localhost",
        )
        pause()

        say()
        say("4. Failure: the right CA, the wrong name")
        say("   -> 'hostname mismatch'")
        _show_failure(
            say,
            ServerOptions(cert=server_files.cert, key=server_files.key),
            ClientOptions(ca=server_files.ca_cert),
            "api.internal.example",
        )
        pause()

        say()
        say("5. Failure before any connection: the key file given as the certificate")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                server_files.key, server_files.key
            )
        except ssl.SSLError as exc:
            say(f"   the ssl module says: {exc}")
        try:
            server_context(ServerOptions(cert=server_files.key, key=server_files.key))
        except SecureLinkError as exc:
            say(f"   securelink says:     {type(exc).__name__}: {exc.message}")
            say(f"                        hint: {exc.hint}")
        say()
        say("Done: every connection above ran on 127.0.0.1, and the files are removed.")
    return 0


def _show_failure(
    say: Callable[[str], None],
    server_options: ServerOptions,
    client_options: ClientOptions,
    hostname: str,
) -> None:
    server = _Server(server_context(server_options))
    try:
        _connect(client_context(client_options), server.port, hostname)
    except SecureLinkError as exc:
        raw = exc.__cause__
        if isinstance(raw, ssl.SSLCertVerificationError):
            say(f"   the ssl module says: {raw.verify_message} (verify code {raw.verify_code})")
        else:  # pragma: no cover - the demo's failures are verification failures
            say(f"   the ssl module says: {raw}")
        say(f"   securelink says:     {type(exc).__name__}: {exc.message}")
        say(f"                        hint: {exc.hint}")
    else:  # pragma: no cover - the demo's failures are deterministic
        say("   unexpectedly, the connection succeeded")
    finally:
        server.close()
