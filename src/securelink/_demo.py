"""``securelink demo``: the story of a secure connection, told by running it on loopback.

It follows the talk securelink grew from ("The Go Programmer's Guide to Secure Connections"):
the wrong port, an untrusted self-signed server, a development CA in minica's layout with each
handshake hook printing what it sees, mutual TLS refused and then accepted, and the files it all
took, inspected.  Everything runs on 127.0.0.1 in a temporary directory.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import tempfile
import threading

from . import devca
from ._connect import connect
from ._context import server_context
from ._hooks import ConnectionInfo
from ._inspect import inspect
from ._options import ClientAuth, ClientOptions, ServerOptions
from .errors import SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

_TIMEOUT = 10.0


class _Narrator:
    """Prints from both threads without interleaving lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.out, flush=True)


class _Server:
    """Serves TLS on 127.0.0.1:0 in a thread until closed; remembers the first failure."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.error: SecureLinkError | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ctx,), daemon=True)
        self.thread.start()

    def _serve(self, ctx: ssl.SSLContext) -> None:
        # Like a real server it keeps accepting: securelink's client may come back once with a
        # short diagnostic handshake to learn why a connection was refused.
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - the listener was closed
                return
            conn.settimeout(_TIMEOUT)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    request = tls.recv(100)
                    tls.sendall(b"Hey GopherCon! You said: " + request)
            except SecureLinkError as exc:
                if self.error is None:
                    self.error = exc
            except OSError:
                pass  # the client went away: its side of the story is told there
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(_TIMEOUT)
        self.listener.close()


def _names(info: ConnectionInfo) -> str:
    return ", ".join(info.peer_names) or "(no names)"


def _chain_lines(info: ConnectionInfo) -> list[str]:
    lines = []
    for depth, cert in enumerate(info.peer_chain):
        subject = cert.subject.rfc4514_string()
        lines.append(f"      cert {depth}: {subject}  (issued by {cert.issuer.rfc4514_string()})")
    return lines


def _self_signed(work: str) -> tuple[str, str]:
    """A self-signed leaf for localhost, as `openssl req -x509` users make (but not a CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my self-signed server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    issued = devca.IssuedCertificate(cert, key, (), cert)
    cert_path = os.path.join(work, "self-signed.pem")
    key_path = os.path.join(work, "self-signed-key.pem")
    for path, data in ((cert_path, issued.cert_pem), (key_path, issued.key_pem)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return cert_path, key_path


def _attempt(
    say: Callable[[str], None],
    server_options: ServerOptions,
    client_options: ClientOptions,
    server_hostname: str = "localhost",
) -> bool:
    """Run one connection; print the reply or both sides' explanations.  True if it worked."""
    server = _Server(server_context(server_options, shared=False))
    try:
        with connect(
            "127.0.0.1", server.port, client_options, server_hostname=server_hostname,
            timeout=_TIMEOUT,
        ) as tls:  # fmt: skip
            tls.sendall(b"hello")
            reply = tls.recv(100)
            say(f"   client: {tls.version()} with {tls.cipher()[0]}; the server replied")  # type: ignore[index]
            say(f"           {reply.decode()!r}")
            ok = True
    except SecureLinkError as exc:
        say(f"   client: {type(exc).__name__}")
        say(f"           {exc.message}")
        say(f"           hint: {exc.hint}")
        ok = False
    except OSError as exc:  # pragma: no cover - only what securelink could not explain
        say(f"   client: {type(exc).__name__}: {exc}")
        ok = False
    finally:
        server.close()
    if server.error is not None:
        say(f"   server: {type(server.error).__name__}")
        say(f"           {server.error.message}")
    return ok


def run(out: TextIO, *, step: Callable[[], None] | None = None) -> int:
    """Run the walkthrough, printing to *out*; return the exit status (0: it all went as told)."""
    say = _Narrator(out)

    def pause() -> None:
        if step is not None:
            step()

    def server_hooks(info: ConnectionInfo) -> None:
        say(f"   [server] verified the client's chain; it is {_names(info)}")
        for line in _chain_lines(info):
            say(line)

    def client_hooks(info: ConnectionInfo) -> None:
        say(f"   [client] verified the server's chain for {info.server_name!r}:")
        for line in _chain_lines(info):
            say(line)

    failures = 0
    with tempfile.TemporaryDirectory(prefix="securelink-demo-") as work:
        say(f"securelink demo: secure connections on 127.0.0.1, in {work}")
        say()

        say("1. The wrong port")
        say("   'Connection refused' nearly always means nothing listens there.")
        with socket.create_server(("127.0.0.1", 0)) as spare:
            closed_port = spare.getsockname()[1]
        try:
            connect("127.0.0.1", closed_port, ClientOptions(), timeout=_TIMEOUT).close()
        except SecureLinkError as exc:
            say(f"   client: {type(exc).__name__}")
            say(f"           {exc.message}")
            say(f"           hint: {exc.hint}")
        pause()

        say()
        say("2. A server with a self-signed certificate")
        say("   The client trusts the public CAs (the certifi bundle), which never vouched for it.")
        cert, key = _self_signed(work)
        if _attempt(say, ServerOptions(cert=cert, key=key), ClientOptions()):
            failures += 1  # pragma: no cover - it must fail
        pause()

        say()
        say("3. A development CA, in minica's layout")
        server_files = devca.minica(work, domains=["localhost"], ip_addresses=["127.0.0.1"])
        for path in (server_files.ca_cert, server_files.ca_key, server_files.cert,
                     server_files.key):  # fmt: skip
            mode = os.stat(path).st_mode & 0o777
            say(f"   wrote {os.path.relpath(path, work):<22} mode {mode:04o}")
        say("   The client trusts minica.pem; every hook says what it sees.")

        def sending(name: str | None) -> None:
            say(f"   [server] the client hello asks for {name!r}: sending localhost/cert.pem")

        serving = ServerOptions(
            cert=server_files.cert,
            key=server_files.key,
            on_server_name=sending,
        )
        trusting = server_files.trusting_client_options(verify_connection=client_hooks)
        if not _attempt(say, serving, trusting):
            failures += 1  # pragma: no cover - it must succeed
        pause()

        say()
        say("4. The right CA, the wrong name")
        say("   The certificate is for localhost and 127.0.0.1; the client asks for liz-server.")
        if _attempt(say, serving, server_files.trusting_client_options(), "liz-server"):
            failures += 1  # pragma: no cover - it must fail
        pause()

        say()
        say("5. Mutual TLS: the server requires a client certificate; the client has none")
        mutual = ServerOptions(
            cert=server_files.cert,
            key=server_files.key,
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=server_files.ca_cert,
            verify_connection=server_hooks,
        )
        if _attempt(say, mutual, server_files.trusting_client_options()):
            failures += 1  # pragma: no cover - it must fail
        pause()

        say()
        say("6. The client gets its own certificate from the same CA")
        client_files = devca.minica(work, domains=["client.demo"])
        say(f"   wrote {os.path.relpath(client_files.cert, work)} and"
            f" {os.path.relpath(client_files.key, work)}")  # fmt: skip
        identified = server_files.trusting_client_options(
            cert=client_files.cert,
            key=client_files.key,
            verify_connection=client_hooks,
        )
        if not _attempt(say, mutual, identified):
            failures += 1  # pragma: no cover - it must succeed
        pause()

        say()
        say("7. What are all these files?  securelink inspect says:")
        for path in (server_files.ca_cert, server_files.cert):
            say()
            for line in str(inspect(path)).splitlines():
                say(f"   {line}" if line else "")
        key_info = inspect(server_files.key)
        say()
        say(f"   {os.path.relpath(server_files.key, work)}: {key_info.objects[0].title},"
            " mode 0600; keep it secret")  # fmt: skip
        say()
        say("8. And before any connection: the key file given as the certificate")
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
        say("Done: every connection ran on 127.0.0.1, and the files are removed.")
    return 1 if failures else 0
