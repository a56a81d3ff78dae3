"""Interoperability with the ``openssl`` command-line tool as an independent TLS peer.

securelink's contexts are plain :class:`ssl.SSLContext` objects, so talking to *themselves* proves
little: both ends share one configuration and one set of assumptions.  Here the other end is
``openssl s_server`` or ``openssl s_client``, configured only from PEM files, over 127.0.0.1 only.

Every ``openssl`` process is started by the test that needs it and is ended (terminated if still
running, then waited for) before that test finishes.  Servers listen on port 0: ``s_server``
reports the port it was given as an ``ACCEPT 127.0.0.1:<port>`` line on its standard output.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from securelink import (
    CertificateRejectedError,
    CertificateSummary,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    HostnameMismatchError,
    ProtocolMismatchError,
    UnknownAuthorityError,
    client_context,
    devca,
    server_context,
)

from .helpers import stop_process

OPENSSL = shutil.which("openssl")
TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"
#: Trust only the -CAfile given, never the openssl installation's default store.
ONLY_CAFILE = ("-no-CApath", "-no-CAstore")
#: The line the securelink client sends; ``s_server -rev`` answers it reversed.
LINE = b"securelink interop\n"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is missing")

KINDS = ("ecdsa", "rsa")
VERSIONS = {
    "TLSv1.2": (ssl.TLSVersion.TLSv1_2, "-tls1_2"),
    "TLSv1.3": (ssl.TLSVersion.TLSv1_3, "-tls1_3"),
}


def _openssl() -> str:
    """Return the path of the openssl binary (the module is skipped without one)."""
    assert OPENSSL is not None
    return OPENSSL


def _reversed_line(line: bytes) -> bytes:
    """Return what ``s_server -rev`` answers to *line*: its text reversed, newline kept."""
    return line.rstrip(b"\r\n")[::-1] + b"\n"


# ---------------------------------------------------------------------------------------------
# Certificates as PEM files


@dataclass(frozen=True)
class PemIdentity:
    """An issued certificate written out as PEM files, with the root that vouches for it."""

    issued: devca.IssuedCertificate
    cert: Path
    key: Path
    root: Path

    @property
    def der(self) -> bytes:
        """The leaf certificate in DER, to compare with what a peer received."""
        return self.issued.certificate.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class Pki:
    """Server and client identities per key type, and a client from a CA nobody here trusts."""

    servers: dict[str, PemIdentity]
    clients: dict[str, PemIdentity]
    stranger: PemIdentity


def _write(directory: Path, name: str, issued: devca.IssuedCertificate) -> PemIdentity:
    """Write *issued* as ``<name>.pem``, ``<name>-key.pem`` and ``<name>-root.pem``."""
    cert = directory / f"{name}.pem"
    key = directory / f"{name}-key.pem"
    root = directory / f"{name}-root.pem"
    cert.write_bytes(issued.chain_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    root.write_bytes(issued.root_pem)
    return PemIdentity(issued, cert, key, root)


@pytest.fixture(scope="module")
def pki(
    tmp_path_factory: pytest.TempPathFactory,
    ca: devca.CertificateAuthority,
    rsa_ca: devca.CertificateAuthority,
) -> Pki:
    """ECDSA and RSA server and client certificates, from the session CAs, as PEM files."""
    directory = tmp_path_factory.mktemp("interop-pki")
    rsa = devca.KeyType.RSA_2048
    server, client = devca.Usage.SERVER, devca.Usage.CLIENT
    stranger_ca = devca.CertificateAuthority(common_name="a CA nobody here trusts")
    return Pki(
        servers={
            "ecdsa": _write(
                directory, "server-ecdsa", ca.issue("localhost", LOOPBACK, usage=server)
            ),
            "rsa": _write(
                directory,
                "server-rsa",
                rsa_ca.issue("localhost", LOOPBACK, usage=server, key_type=rsa),
            ),
        },
        clients={
            "ecdsa": _write(directory, "client-ecdsa", ca.issue("client.test", usage=client)),
            "rsa": _write(
                directory, "client-rsa", rsa_ca.issue("client.test", usage=client, key_type=rsa)
            ),
        },
        stranger=_write(directory, "stranger", stranger_ca.issue("client.test", usage=client)),
    )


# ---------------------------------------------------------------------------------------------
# openssl processes


@dataclass
class SServer:
    """A running ``openssl s_server`` and where its output goes."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    def finish(self) -> str:
        """Wait for s_server to exit after its ``-naccept`` connections; return its log (stderr)."""
        returncode = self.proc.wait(TIMEOUT)
        log = self.stderr.read_text(errors="replace")
        assert returncode == 0, f"s_server exited with {returncode}:\n{log}"
        return log


def _wait_for_port(proc: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> int:
    """Read the port s_server was given from its ``ACCEPT 127.0.0.1:<port>`` line."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        text = stdout.read_text(errors="replace")
        found = re.search(r"^ACCEPT 127\.0\.0\.1:(\d+)$", text, re.MULTILINE)
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    raise AssertionError(
        "s_server did not report its port:\n"
        f"{stdout.read_text(errors='replace')}{stderr.read_text(errors='replace')}"
    )


@contextmanager
def s_server(
    tmp_path: Path, identity: PemIdentity | CnOnly, *args: str, naccept: int = 1
) -> Iterator[SServer]:
    """Run ``openssl s_server -rev`` for *identity* on 127.0.0.1:0; always end it on exit."""
    stdout, stderr = tmp_path / "s_server.out", tmp_path / "s_server.err"
    command = [
        _openssl(), "s_server", "-accept", f"{LOOPBACK}:0", "-naccept", str(naccept), "-rev",
        "-cert", str(identity.cert), "-key", str(identity.key), *args,
    ]  # fmt: skip
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        yield SServer(proc, _wait_for_port(proc, stdout, stderr), stdout, stderr)
    finally:
        stop_process(proc)


def _log_value(log: str, label: str) -> str:
    """Return the value of the ``<label>: <value>`` line in an openssl log."""
    found = re.search(rf"^{re.escape(label)}: (.*)$", log, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{log}"
    return found.group(1).strip()


@dataclass(frozen=True)
class SClientRun:
    """What ``openssl s_client`` printed, and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def protocol(self) -> str:
        """The version from the ``New, <version>, Cipher is <cipher>`` line."""
        found = re.search(r"^New, (\S+), Cipher is (\S+)$", self.stdout, re.MULTILINE)
        assert found, f"s_client did not complete a handshake:\n{self.stdout}{self.stderr}"
        return found.group(1)

    @property
    def cipher(self) -> str:
        """The cipher from the ``New, <version>, Cipher is <cipher>`` line."""
        found = re.search(r"^New, \S+, Cipher is (\S+)$", self.stdout, re.MULTILINE)
        assert found, f"s_client did not complete a handshake:\n{self.stdout}{self.stderr}"
        return found.group(1)


def s_client(port: int, *args: str, send: bytes = LINE) -> SClientRun:
    """Run ``openssl s_client`` against 127.0.0.1:*port*, send *send*, read until the server closes.

    ``subprocess.run`` kills the process if it is still running after the timeout.
    """
    command = [_openssl(), "s_client", "-connect", f"{LOOPBACK}:{port}", "-ign_eof", *args]
    done = subprocess.run(command, input=send, capture_output=True, timeout=TIMEOUT, check=False)
    return SClientRun(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def _run_openssl(*args: str, cwd: Path) -> None:
    """Run one openssl command that makes files, failing the test with its output if it fails."""
    done = subprocess.run(
        [_openssl(), *args], cwd=cwd, capture_output=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def _openssl_has(command: str, option: str) -> bool:
    """Whether ``openssl <command>`` accepts *option* (builds may leave old protocols out)."""
    done = subprocess.run(
        [_openssl(), command, "-help"], capture_output=True, timeout=TIMEOUT, check=False
    )
    listed = done.stderr.decode(errors="replace")
    return re.search(rf"^ {re.escape(option)}\s", listed, re.MULTILINE) is not None


# ---------------------------------------------------------------------------------------------
# The Python ends


@dataclass
class Seen:
    """What a securelink end saw of one connection."""

    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    peer_der: bytes | None = None
    received: bytes = b""
    error: BaseException | None = None


def _record(tls: ssl.SSLSocket, seen: Seen) -> None:
    """Note the negotiated parameters of *tls* in *seen*."""
    seen.version = tls.version()
    cipher = tls.cipher()
    seen.cipher = cipher[0] if cipher else None
    seen.alpn = tls.selected_alpn_protocol()
    seen.peer_der = tls.getpeercert(binary_form=True)


def _read_line(tls: ssl.SSLSocket) -> bytes:
    """Read up to and including a newline, or until the peer closes."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = tls.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def python_server(ctx: ssl.SSLContext) -> Iterator[tuple[int, Seen]]:
    """Serve one connection on 127.0.0.1:0 in a thread, answering a line reversed (like -rev)."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(TIMEOUT)
    seen = Seen()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError as exc:  # pragma: no cover - s_client never connected
            seen.error = exc
            return
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    _record(tls, seen)
                    seen.received = _read_line(tls)
                    tls.sendall(_reversed_line(seen.received))
                    tls.unwrap()  # close_notify, so s_client ends cleanly
            except OSError as exc:  # ssl.SSLError included
                seen.error = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the Python server thread did not finish"


def talk(ctx: ssl.SSLContext, port: int, *, server_hostname: str = "localhost") -> Seen:
    """Connect to 127.0.0.1:*port* with *ctx*, send a line and read the answer; errors propagate."""
    seen = Seen()
    with (
        socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        _record(tls, seen)
        tls.sendall(LINE)
        seen.received = _read_line(tls)
    return seen


# ---------------------------------------------------------------------------------------------
# securelink client -> openssl s_server


@pytest.mark.openssl
class TestClientToSServer:
    """A securelink client completes real handshakes with ``openssl s_server``."""

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_version_forced_by_s_server(
        self, tmp_path: Path, pki: Pki, kind: str, version: str
    ) -> None:
        """The client negotiates exactly the version s_server is limited to, and gets its cert."""
        identity = pki.servers[kind]
        ctx = client_context(ClientOptions(ca=identity.root))
        with s_server(tmp_path, identity, VERSIONS[version][1]) as server:
            seen = talk(ctx, server.port)
            log = server.finish()
        assert seen.version == version
        assert _log_value(log, "Protocol version") == version
        assert seen.peer_der == identity.der
        assert seen.received == _reversed_line(LINE)
        if version == "TLSv1.2":  # the suite names the certificate's key type
            assert seen.cipher is not None
            assert seen.cipher.startswith("ECDHE-ECDSA-" if kind == "ecdsa" else "ECDHE-RSA-")

    @pytest.mark.parametrize("version", VERSIONS)
    def test_version_forced_by_client_options(self, tmp_path: Path, pki: Pki, version: str) -> None:
        """An s_server offering every version speaks exactly the one the client's options pin."""
        identity = pki.servers["ecdsa"]
        pinned = VERSIONS[version][0]
        ctx = client_context(
            ClientOptions(ca=identity.root, min_version=pinned, max_version=pinned)
        )
        with s_server(tmp_path, identity) as server:
            seen = talk(ctx, server.port)
            log = server.finish()
        assert seen.version == version
        assert _log_value(log, "Protocol version") == version
        assert seen.received == _reversed_line(LINE)

    def test_ip_address_name(self, tmp_path: Path, pki: Pki) -> None:
        """A server reached as 127.0.0.1 is verified against its IP-address SubjectAltName."""
        identity = pki.servers["ecdsa"]
        ctx = client_context(ClientOptions(ca=identity.root))
        with s_server(tmp_path, identity) as server:
            seen = talk(ctx, server.port, server_hostname=LOOPBACK)
            server.finish()
        assert seen.peer_der == identity.der
        assert seen.received == _reversed_line(LINE)

    def test_alpn(self, tmp_path: Path, pki: Pki) -> None:
        """The client's ALPN offer is honoured by s_server's -alpn choice."""
        identity = pki.servers["ecdsa"]
        ctx = client_context(ClientOptions(ca=identity.root, alpn=("h2", "http/1.1")))
        with s_server(tmp_path, identity, "-alpn", "http/1.1") as server:
            seen = talk(ctx, server.port)
            server.finish()
        assert seen.alpn == "http/1.1"


@pytest.mark.openssl
class TestClientMutualTLSWithSServer:
    """A securelink client proves its identity to an s_server that requires a certificate."""

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_client_certificate_accepted(
        self, tmp_path: Path, pki: Pki, kind: str, version: str
    ) -> None:
        """s_server with -Verify 1 verifies the client's certificate and the exchange succeeds."""
        server_id, client_id = pki.servers[kind], pki.clients[kind]
        ctx = client_context(client_id.issued.client_options())
        args = (VERSIONS[version][1], "-Verify", "1", "-verify_return_error",
                "-CAfile", str(client_id.root), *ONLY_CAFILE)  # fmt: skip
        with s_server(tmp_path, server_id, *args) as server:
            seen = talk(ctx, server.port)
            log = server.finish()
        assert seen.version == version
        assert seen.received == _reversed_line(LINE)
        assert _log_value(log, "Protocol version") == version
        assert _log_value(log, "Verification") == "OK"
        assert "issued for client.test" in _log_value(log, "Peer certificate")

    @pytest.mark.parametrize(
        ("version", "reason"),
        [
            ("TLSv1.2", "SSLV3_ALERT_HANDSHAKE_FAILURE"),
            ("TLSv1.3", "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        ],
    )
    def test_missing_client_certificate_refused(
        self, tmp_path: Path, pki: Pki, version: str, reason: str
    ) -> None:
        """Without a certificate the client gets s_server's alert, explained (TLS 1.3: on read)."""
        server_id = pki.servers["ecdsa"]
        ctx = client_context(ClientOptions(ca=server_id.root))
        args = (VERSIONS[version][1], "-Verify", "1", "-verify_return_error",
                "-CAfile", str(server_id.root), *ONLY_CAFILE)  # fmt: skip
        with s_server(tmp_path, server_id, *args) as server:
            with pytest.raises(ClientCertificateRequiredError) as info:
                talk(ctx, server.port)
            log = server.finish()
        e = info.value
        assert type(e) is ClientCertificateRequiredError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == e.__cause__.reason == reason
        assert e.library == "SSL"
        assert (e.side, e.role, e.server_hostname) == ("peer", "client", "localhost")
        assert e.peer == (LOOPBACK, server.port)
        assert e.alert == ("handshake failure" if version == "TLSv1.2" else "certificate required")
        assert "requires a client certificate" in e.message
        assert "CONNECTION FAILURE" in log
        assert "peer did not return a certificate" in log


# ---------------------------------------------------------------------------------------------
# openssl s_client -> securelink server


def _verifying_s_client(port: int, root: Path, *args: str, send: bytes = LINE) -> SClientRun:
    """Run s_client that verifies the server against *root* and stops on a verification error."""
    return s_client(
        port, "-CAfile", str(root), *ONLY_CAFILE, "-verify_return_error", "-servername",
        "localhost", *args, send=send,
    )  # fmt: skip


@pytest.mark.openssl
class TestSClientToServer:
    """``openssl s_client`` completes real handshakes with a securelink server."""

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_version_forced_by_s_client(self, pki: Pki, kind: str, version: str) -> None:
        """s_client verifies the server's name and speaks exactly the version it is limited to."""
        identity = pki.servers[kind]
        with python_server(server_context(identity.issued.server_options())) as (port, seen):
            run = _verifying_s_client(
                port, identity.root, VERSIONS[version][1], "-verify_hostname", "localhost"
            )
        assert seen.error is None
        assert run.returncode == 0, run.stderr
        assert seen.version == version
        assert run.protocol == version
        assert "Verify return code: 0 (ok)" in run.stdout
        assert "Verified peername: localhost" in run.stdout
        assert seen.received == LINE
        assert _reversed_line(LINE) in run.stdout.encode()
        if version == "TLSv1.2":
            assert run.cipher.startswith("ECDHE-ECDSA-" if kind == "ecdsa" else "ECDHE-RSA-")

    def test_version_forced_by_server_options(self, pki: Pki) -> None:
        """An s_client offering every version speaks TLS 1.2 to a server whose options cap it."""
        identity = pki.servers["ecdsa"]
        options = identity.issued.server_options(max_version=ssl.TLSVersion.TLSv1_2)
        with python_server(server_context(options)) as (port, seen):
            run = _verifying_s_client(port, identity.root, "-verify_ip", LOOPBACK)
        assert seen.error is None
        assert run.returncode == 0, run.stderr
        assert seen.version == run.protocol == "TLSv1.2"
        assert "Verify return code: 0 (ok)" in run.stdout

    def test_ip_address_verified(self, pki: Pki) -> None:
        """s_client's -verify_ip check accepts the server's IP-address SubjectAltName."""
        identity = pki.servers["rsa"]
        with python_server(server_context(identity.issued.server_options())) as (port, seen):
            run = _verifying_s_client(port, identity.root, "-verify_ip", LOOPBACK)
        assert seen.error is None
        assert run.returncode == 0, run.stderr
        assert "Verify return code: 0 (ok)" in run.stdout
        assert seen.received == LINE

    def test_ip_address_mismatch_detected(self, pki: Pki) -> None:
        """The -verify_ip control: an address the certificate does not name fails with code 64."""
        identity = pki.servers["rsa"]
        with python_server(server_context(identity.issued.server_options())) as (port, seen):
            run = _verifying_s_client(port, identity.root, "-verify_ip", "127.0.0.2")
        assert run.returncode != 0
        assert "verify error:num=64:IP address mismatch" in run.stderr
        e = seen.error
        assert type(e) is CertificateRejectedError
        assert isinstance(e, ssl.SSLError)
        assert e.reason == "SSLV3_ALERT_BAD_CERTIFICATE"
        assert type(e.__cause__) is ssl.SSLError
        assert (e.side, e.role, e.alert) == ("peer", "server", "bad certificate")
        assert e.certificate == CertificateSummary.from_certificate(identity.issued.certificate)
        assert "rejected the certificate for localhost, 127.0.0.1" in e.message

    def test_alpn(self, pki: Pki) -> None:
        """The server picks its most preferred protocol from s_client's -alpn offer."""
        identity = pki.servers["ecdsa"]
        options = identity.issued.server_options(alpn=("h2", "http/1.1"))
        with python_server(server_context(options)) as (port, seen):
            run = _verifying_s_client(port, identity.root, "-alpn", "http/1.1,h2")
        assert seen.error is None
        assert seen.alpn == "h2"
        assert "ALPN protocol: h2" in run.stdout


def _mtls_server(identity: PemIdentity) -> ssl.SSLContext:
    """A server context that requires client certificates from *identity*'s own root."""
    return server_context(identity.issued.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY))


@pytest.mark.openssl
class TestSClientMutualTLS:
    """A securelink server with REQUIRE_AND_VERIFY accepts and refuses s_client correctly."""

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("version", VERSIONS)
    def test_client_certificate_accepted(self, pki: Pki, kind: str, version: str) -> None:
        """Mutual TLS succeeds both ways: each end verifies the other's certificate."""
        server_id, client_id = pki.servers[kind], pki.clients[kind]
        with python_server(_mtls_server(server_id)) as (port, seen):
            run = _verifying_s_client(
                port, server_id.root, VERSIONS[version][1], "-verify_hostname", "localhost",
                "-cert", str(client_id.cert), "-key", str(client_id.key),
            )  # fmt: skip
        assert seen.error is None
        assert run.returncode == 0, run.stderr
        assert seen.version == run.protocol == version
        assert seen.peer_der == client_id.der
        assert "Verify return code: 0 (ok)" in run.stdout
        assert seen.received == LINE

    @pytest.mark.parametrize(
        ("version", "client_alert"),
        [
            ("TLSv1.2", "sslv3 alert handshake failure"),
            ("TLSv1.3", "tlsv13 alert certificate required"),
        ],
    )
    def test_missing_client_certificate_refused(
        self, pki: Pki, version: str, client_alert: str
    ) -> None:
        """A certificate-less s_client makes the server raise PEER_DID_NOT_RETURN_A_CERTIFICATE."""
        server_id = pki.servers["ecdsa"]
        with python_server(_mtls_server(server_id)) as (port, seen):
            run = _verifying_s_client(port, server_id.root, VERSIONS[version][1])
        e = seen.error
        assert type(e) is ClientCertificateRequiredError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        assert (e.side, e.role, e.alert) == ("local", "server", None)
        assert e.peer is not None and e.peer[0] == LOOPBACK
        assert "sent no certificate" in e.message
        assert seen.version is None
        assert seen.received == b""
        assert run.returncode != 0
        assert client_alert in run.stderr

    @pytest.mark.parametrize("version", VERSIONS)
    def test_certificate_from_another_ca_refused(self, pki: Pki, version: str) -> None:
        """A client certificate from an untrusted CA makes the server raise verify code 20."""
        server_id, stranger = pki.servers["ecdsa"], pki.stranger
        with python_server(_mtls_server(server_id)) as (port, seen):
            run = _verifying_s_client(
                port, server_id.root, VERSIONS[version][1],
                "-cert", str(stranger.cert), "-key", str(stranger.key),
            )  # fmt: skip
        e = seen.error
        assert type(e) is UnknownAuthorityError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert type(e.__cause__) is ssl.SSLCertVerificationError
        assert e.reason == "CERTIFICATE_VERIFY_FAILED"
        assert e.verify_code == 20
        assert e.verify_message == "unable to get local issuer certificate"
        assert (e.side, e.role, e.server_hostname) == ("local", "server", None)
        assert e.kind == "unknown-issuer"
        assert e.issuer == stranger.issued.root.subject.rfc4514_string()
        assert e.certificate == CertificateSummary.from_certificate(stranger.issued.certificate)
        assert "client.test" in e.message and "a CA nobody here trusts" in e.message
        assert seen.version is None
        assert seen.received == b""
        assert run.returncode != 0
        assert "alert unknown ca" in run.stderr


# ---------------------------------------------------------------------------------------------
# A certificate whose only name is its Common Name

_CN_ONLY_CONFIG = """\
[req]
distinguished_name = dn
prompt = no

[dn]

[self_signed]
basicConstraints = critical, CA:TRUE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_P256 = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")


@dataclass(frozen=True)
class CnOnly:
    """A CN=localhost certificate without SubjectAltName, as PEM files, and what to trust."""

    cert: Path
    key: Path
    trust: Path
    der: bytes


def _cn_only_files(directory: Path, how: str) -> tuple[Path, Path, Path]:
    """Make a CN-only certificate with the openssl CLI; return (cert, key, trust anchor)."""
    config = directory / "openssl.cnf"
    config.write_text(_CN_ONLY_CONFIG)
    cert, key = directory / "cn-only.pem", directory / "cn-only-key.pem"
    if how == "self-signed":  # as `openssl req -x509` makes it with the default configuration
        _run_openssl("req", "-config", str(config), "-x509", *_P256, "-subj", "/CN=localhost",
                     "-extensions", "self_signed", "-days", "1",
                     "-keyout", str(key), "-out", str(cert), cwd=directory)  # fmt: skip
        return cert, key, cert
    ca_cert, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    csr = directory / "cn-only.csr"
    _run_openssl("req", "-config", str(config), "-x509", *_P256, "-subj", "/CN=interop test CA",
                 "-extensions", "ca", "-days", "1",
                 "-keyout", str(ca_key), "-out", str(ca_cert), cwd=directory)  # fmt: skip
    _run_openssl("req", "-config", str(config), "-new", *_P256, "-subj", "/CN=localhost",
                 "-keyout", str(key), "-out", str(csr), cwd=directory)  # fmt: skip
    _run_openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                 "-set_serial", "2", "-days", "1", "-extfile", str(config), "-extensions", "leaf",
                 "-out", str(cert), cwd=directory)  # fmt: skip
    return cert, key, ca_cert


@pytest.fixture(scope="module", params=["self-signed", "ca-issued"])
def cn_only(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> CnOnly:
    """A CN-only certificate made by the openssl CLI: self-signed, or issued by an openssl CA."""
    how: str = request.param
    directory = tmp_path_factory.mktemp(f"cn-only-{how}")
    cert, key, trust = _cn_only_files(directory, how)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assert certificate.subject.rfc4514_string() == "CN=localhost"
    with pytest.raises(x509.ExtensionNotFound):  # the premise: no SubjectAltName at all
        certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return CnOnly(cert, key, trust, certificate.public_bytes(Encoding.DER))


@pytest.mark.openssl
class TestCommonNameOnly:
    """A securelink client refuses a server named only by its Common Name."""

    def test_refused_with_hostname_mismatch(self, tmp_path: Path, cn_only: CnOnly) -> None:
        """The chain verifies, so the refusal is exactly the name check: verify code 62."""
        ctx = client_context(ClientOptions(ca=cn_only.trust))
        # The control: the same options with Common Name matching switched back on succeed, so
        # the chain itself is trusted and only the SAN-only name rule refuses it.
        control = client_context(ClientOptions(ca=cn_only.trust), shared=False)
        control.hostname_checks_common_name = True
        with s_server(tmp_path, cn_only, naccept=2) as server:
            with pytest.raises(HostnameMismatchError) as info:
                talk(ctx, server.port)
            accepted = talk(control, server.port)
            log = server.finish()
        e = info.value
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert type(e.__cause__) is ssl.SSLCertVerificationError
        assert e.reason == "CERTIFICATE_VERIFY_FAILED"
        assert e.verify_code == 62
        assert e.verify_message == "Hostname mismatch, certificate is not valid for 'localhost'."
        assert (e.expected, e.presented, e.common_name) == ("localhost", (), "localhost")
        assert e.certificate is not None and e.certificate.subject == "CN=localhost"
        assert "Common Names are not checked" in e.message
        assert "alert bad certificate" in log
        assert accepted.peer_der == cn_only.der
        assert accepted.received == _reversed_line(LINE)


# ---------------------------------------------------------------------------------------------
# The security floor, against a peer that does not share it


@pytest.mark.openssl
class TestPolicyAgainstOpenSSL:
    """securelink refuses protocol versions and cipher suites that openssl can be made to offer."""

    def test_server_refuses_tls_1_1(self, pki: Pki) -> None:
        """A TLS 1.1-only s_client is refused by the server with UNSUPPORTED_PROTOCOL."""
        if not _openssl_has("s_client", "-tls1_1"):
            pytest.skip("this openssl build has no TLS 1.1")
        identity = pki.servers["ecdsa"]
        with python_server(server_context(identity.issued.server_options())) as (port, seen):
            run = _verifying_s_client(
                port, identity.root, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"
            )
        e = seen.error
        assert type(e) is ProtocolMismatchError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == "UNSUPPORTED_PROTOCOL"
        assert (e.mismatch, e.side, e.role) == ("version", "local", "server")
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert run.returncode != 0
        assert "alert protocol version" in run.stderr

    def test_client_refuses_tls_1_1(self, tmp_path: Path, pki: Pki) -> None:
        """A TLS 1.1-only s_server finds no version in common with the client, which offers 1.2+."""
        if not _openssl_has("s_server", "-tls1_1"):
            pytest.skip("this openssl build has no TLS 1.1")
        identity = pki.servers["ecdsa"]
        ctx = client_context(ClientOptions(ca=identity.root))
        with s_server(tmp_path, identity, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0") as server:
            with pytest.raises(ProtocolMismatchError) as info:
                talk(ctx, server.port)
            log = server.finish()
        e = info.value
        assert type(e) is ProtocolMismatchError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert (e.mismatch, e.side, e.role) == ("version", "peer", "client")
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert "unsupported protocol" in log

    def test_server_refuses_cbc_suite(self, pki: Pki) -> None:
        """A TLS 1.2 s_client offering only a CBC suite is refused with NO_SHARED_CIPHER."""
        identity = pki.servers["ecdsa"]
        with python_server(server_context(identity.issued.server_options())) as (port, seen):
            run = _verifying_s_client(
                port, identity.root, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"
            )
        e = seen.error
        assert type(e) is ProtocolMismatchError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == "NO_SHARED_CIPHER"
        assert (e.mismatch, e.side, e.role) == ("cipher", "local", "server")
        assert run.returncode != 0
        assert "alert handshake failure" in run.stderr

    def test_client_refuses_cbc_suite(self, tmp_path: Path, pki: Pki) -> None:
        """A TLS 1.2 s_server allowing only a CBC suite gets no offer it can accept."""
        identity = pki.servers["ecdsa"]
        ctx = client_context(ClientOptions(ca=identity.root))
        args = ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
        # Two connections: the explanation makes one diagnostic handshake to learn the suite.
        with s_server(tmp_path, identity, *args, naccept=2) as server:
            with pytest.raises(ProtocolMismatchError) as info:
                talk(ctx, server.port)
            log = server.finish()
        e = info.value
        assert type(e) is ProtocolMismatchError
        assert isinstance(e, ssl.SSLError)
        assert type(e.__cause__) is ssl.SSLError
        assert e.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        assert (e.mismatch, e.side, e.role) == ("cipher", "peer", "client")
        assert "ECDHE-ECDSA-AES128-SHA (TLSv1.2)" in e.message
        assert "no shared cipher" in log
