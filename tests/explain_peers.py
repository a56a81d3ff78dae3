"""Real loopback peers and flawed certificates for the explanatory-error tests (test_explain_*).

Every server here listens on 127.0.0.1:0, runs in a thread (or is an ``openssl`` process started
by the test), and is ended by the ``with`` block that started it: threads are joined and asserted
dead, processes are terminated by their own handle and reaped.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

import securelink
from securelink import devca

from . import pki
from .helpers import stop_process

TIMEOUT = 5.0
LOOPBACK = "127.0.0.1"
OPENSSL = shutil.which("openssl")
#: Trust only the -CAfile given, never the openssl installation's default store.
ONLY_CAFILE = ("-no-CApath", "-no-CAstore")
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
VERSIONS = {"TLSv1.2": TLS12, "TLSv1.3": TLS13}


# ---------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Files:
    """A certificate chain and its key written out as PEM files."""

    cert: Path
    key: Path
    leaf: x509.Certificate
    #: The intermediates alone (``s_server -cert_chain`` takes them apart from the leaf).
    intermediates: Path | None = None

    @property
    def der(self) -> bytes:
        """The leaf in DER."""
        return self.leaf.public_bytes(serialization.Encoding.DER)


def write_identity(
    directory: Path, name: str, chain: tuple[x509.Certificate, ...], key: Any
) -> Files:
    """Write *chain* (leaf first) and *key* as ``<name>.pem`` and ``<name>-key.pem``."""
    cert = directory / f"{name}.pem"
    key_path = directory / f"{name}-key.pem"
    cert.write_bytes(b"".join(pki.pem(c) for c in chain))
    key_path.write_bytes(pki.key_pem(key))
    key_path.chmod(0o600)
    return Files(cert, key_path, chain[0])


def issued_files(directory: Path, name: str, issued: devca.IssuedCertificate) -> Files:
    """Write an issued certificate with its chain (not the root)."""
    files = write_identity(directory, name, (issued.certificate, *issued.chain), issued.private_key)
    if not issued.chain:
        return files
    intermediates = directory / f"{name}-chain.pem"
    intermediates.write_bytes(b"".join(pki.pem(c) for c in issued.chain))
    return Files(files.cert, files.key, files.leaf, intermediates)


def _leaf_builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: Any,
    *,
    names: tuple[str, ...] = ("localhost",),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    )


def self_signed_leaf(name: str = "localhost") -> tuple[x509.Certificate, Any]:
    """A self-signed, non-CA certificate for *name* (what ``openssl req -x509`` users serve)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = _leaf_builder(subject, subject, key, names=(name,)).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
    )
    return builder.sign(key, hashes.SHA256()), key


def aia_leaf(
    issuer: devca.CertificateAuthority, name: str = "localhost"
) -> tuple[x509.Certificate, Any]:
    """A leaf from *issuer* that names where its issuer can be fetched (AIA caIssuers)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier("http://pki.invalid/intermediate.der"),
            )
        ]
    )
    builder = (
        _leaf_builder(subject, issuer.certificate.subject, key, names=(name,))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(aia, critical=False)
    )
    return builder.sign(issuer.private_key, hashes.SHA256()), key


@dataclass(frozen=True)
class Pki:
    """Every certificate the explanatory-error tests serve or present."""

    ca: devca.CertificateAuthority  # the root everyone here trusts
    inter: devca.CertificateAuthority  # an intermediate below it
    server: devca.IssuedCertificate  # localhost + 127.0.0.1, from inter (chain sent)
    client: devca.IssuedCertificate  # client.test, from the root
    stranger: devca.CertificateAuthority  # a root nobody here trusts
    stranger_inter: devca.CertificateAuthority
    stranger_server: devca.IssuedCertificate  # localhost from stranger_inter
    stranger_direct: devca.IssuedCertificate  # localhost straight from the stranger root
    stranger_client: devca.IssuedCertificate  # client.test from the stranger root
    wrong_eku: devca.IssuedCertificate  # localhost, clientAuth only
    dns_only: devca.IssuedCertificate  # localhost only (no IP SAN)
    files: dict[str, Files]
    ca_file: Path  # the root as PEM
    stranger_file: Path


def build_pki(directory: Path) -> Pki:
    """Generate the test PKI (ECDSA, fast) and write the flawed identities as files."""
    ca = devca.CertificateAuthority(common_name="explain root CA")
    inter = ca.intermediate(common_name="explain intermediate CA")
    stranger = devca.CertificateAuthority(common_name="stranger root CA")
    stranger_inter = stranger.intermediate(common_name="stranger intermediate CA")
    server = inter.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER)
    client = ca.issue("client.test", usage=devca.Usage.CLIENT)
    stranger_server = stranger_inter.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER)
    expired = inter.issue(
        "localhost", usage=devca.Usage.SERVER, not_before=NOW - 60 * DAY, not_after=NOW - 3 * DAY
    )
    future = inter.issue(
        "localhost", usage=devca.Usage.SERVER, not_before=NOW + 5 * DAY, not_after=NOW + 60 * DAY
    )
    expired_client = ca.issue(
        "client.test", usage=devca.Usage.CLIENT, not_before=NOW - 60 * DAY, not_after=NOW - 3 * DAY
    )
    cn_only, cn_key = pki.leaf(ca, names=(), common_name="localhost")
    self_signed, ss_key = self_signed_leaf()
    aia, aia_key = aia_leaf(inter)
    files = {
        "expired": issued_files(directory, "expired", expired),
        "future": issued_files(directory, "future", future),
        "expired-client": issued_files(directory, "expired-client", expired_client),
        "cn-only": write_identity(directory, "cn-only", (cn_only,), cn_key),
        "self-signed": write_identity(directory, "self-signed", (self_signed,), ss_key),
        "aia-leaf-only": write_identity(directory, "aia", (aia,), aia_key),
        "root-sent": write_identity(
            directory,
            "root-sent",
            (stranger_server.certificate, stranger_inter.certificate, stranger.certificate),
            stranger_server.private_key,
        ),
        "server": issued_files(directory, "server", server),
        "client": issued_files(directory, "client", client),
    }
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    stranger_file = directory / "stranger.pem"
    stranger_file.write_bytes(stranger.cert_pem)
    return Pki(
        ca=ca,
        inter=inter,
        server=server,
        client=client,
        stranger=stranger,
        stranger_inter=stranger_inter,
        stranger_server=stranger_server,
        stranger_direct=stranger.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER),
        stranger_client=stranger.issue("client.test", usage=devca.Usage.CLIENT),
        wrong_eku=ca.issue("localhost", LOOPBACK, usage=devca.Usage.CLIENT),
        dns_only=ca.issue("localhost", usage=devca.Usage.SERVER),
        files=files,
        ca_file=ca_file,
        stranger_file=stranger_file,
    )


def stdlib_server_context(
    files: Files,
    *,
    max_version: ssl.TLSVersion | None = None,
    client_ca: Path | None = None,
    weak_keys: bool = False,
) -> ssl.SSLContext:
    """A bare stdlib server context, for certificates securelink refuses to serve.

    *weak_keys* lowers OpenSSL's security level to 0, so that an RSA-1024 chain can be served.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak_keys:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(files.cert, files.key)
    if max_version is not None:
        ctx.maximum_version = max_version
    if client_ca is not None:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def stdlib_client_context(
    *, ca: Path | None = None, identity: Files | None = None
) -> ssl.SSLContext:
    """A bare stdlib client context (for explain() on foreign errors, and expired identities)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        ctx.load_verify_locations(cafile=ca)
    if identity is not None:
        ctx.load_cert_chain(identity.cert, identity.key)
    return ctx


# ---------------------------------------------------------------------------------------------
# Chains with one flaw each, below the test root (verification codes without a subclass)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: Any,
    issuer_key: Any,
    *,
    ca: bool,
    basic_constraints: bool = True,
    bc_critical: bool = True,
    path_length: int | None = None,
    key_usage: str | None = "ca",
    ski: bool = True,
    aki: bool = True,
    aki_critical: bool = False,
    names: tuple[str, ...] | None = None,
    eku: tuple[x509.ObjectIdentifier, ...] | None = None,
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> x509.Certificate:
    """A certificate with exactly the extensions asked for (devca refuses to make bad ones).

    *key_usage* is ``"ca"`` (keyCertSign, cRLSign), ``"leaf"`` (digitalSignature) or ``None``.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length), critical=bc_critical
        )
    if key_usage is not None:
        usage = _key_usage(cert_sign=key_usage == "ca")
        builder = builder.add_extension(usage, critical=True)
    if ski:
        ski_ext = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(ski_ext, critical=False)
    if aki:
        aki_ext = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki_ext, critical=aki_critical)
    if names is not None:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
        builder = builder.add_extension(san, critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def cn(name: str | None) -> x509.Name:
    """A name with just this Common Name (``None``: an empty name)."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)] if name else [])


@dataclass(frozen=True)
class Flawed:
    """A flawed chain, served as *files*; *culprit* is the certificate at fault."""

    files: Files
    chain: tuple[x509.Certificate, ...]
    culprit: x509.Certificate


#: An unknown extension, for "unhandled critical extension".
PRIVATE_EXTENSION = x509.UnrecognizedExtension(
    x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"
)
#: A SubjectAltName with no names (cryptography refuses to build an empty one).
EMPTY_SAN = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x00")


def flawed_chain(
    directory: Path,
    root: devca.CertificateAuthority,
    flaw: str,
    *,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
    name: str = "localhost",
) -> Flawed:
    """*root* -> intermediate -> leaf for *name*, with the one *flaw* named; files as *flaw*.pem.

    The flaws: ``inter-ca-false``, ``inter-no-basic-constraints``, ``inter-no-cert-sign``,
    ``inter-bc-not-critical``, ``inter-no-key-usage``, ``inter-path-length-no-key-usage``,
    ``inter-no-ski``, ``inter-no-aki``, ``leaf-no-aki``, ``inter-rsa-1024``, ``leaf-rsa-1024``,
    ``path-length-exceeded`` (a second intermediate below one of path length 0),
    ``inter-eku-client-only``, ``leaf-unknown-critical``, ``leaf-aki-critical``,
    ``leaf-cert-sign``, ``inter-empty-subject``, ``leaf-empty-san``,
    ``leaf-empty-subject``, ``leaf-bad-signature``.
    """
    inter_kw: dict[str, Any] = {"ca": True, "path_length": 0}
    leaf_kw: dict[str, Any] = {"ca": False, "key_usage": "leaf", "names": (name,), "eku": (usage,)}
    inter_key: Any = ec.generate_private_key(ec.SECP256R1())
    leaf_key: Any = ec.generate_private_key(ec.SECP256R1())
    inter_name = cn(f"{flaw} intermediate")
    leaf_name = cn(name)
    flaws: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "inter-ca-false": ({"ca": False, "path_length": None}, {}),
        "inter-no-basic-constraints": ({"basic_constraints": False}, {}),
        "inter-no-cert-sign": ({"key_usage": "leaf"}, {}),
        "inter-bc-not-critical": ({"bc_critical": False}, {}),
        "inter-no-key-usage": ({"key_usage": None, "path_length": None}, {}),
        "inter-path-length-no-key-usage": ({"key_usage": None}, {}),
        "inter-no-ski": ({"ski": False}, {}),
        "inter-no-aki": ({"aki": False}, {}),
        "leaf-no-aki": ({}, {"aki": False}),
        "inter-rsa-1024": ({}, {}),
        "leaf-rsa-1024": ({}, {}),
        "path-length-exceeded": ({}, {}),
        "inter-eku-client-only": ({"eku": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, {}),
        "leaf-unknown-critical": ({}, {"extra": ((PRIVATE_EXTENSION, True),)}),
        "leaf-aki-critical": ({}, {"aki_critical": True}),
        "leaf-cert-sign": ({}, {"key_usage": "ca"}),
        "inter-empty-subject": ({}, {}),
        "leaf-empty-san": ({}, {"names": None, "extra": ((EMPTY_SAN, False),)}),
        "leaf-empty-subject": ({}, {}),
        "leaf-bad-signature": ({}, {}),
    }
    more_inter, more_leaf = flaws[flaw]
    inter_kw.update(more_inter)
    leaf_kw.update(more_leaf)
    if flaw == "inter-rsa-1024":
        inter_key = pki.weak_rsa_key()
    if flaw == "leaf-rsa-1024":
        leaf_key = pki.weak_rsa_key()
    if flaw == "inter-empty-subject":
        inter_name = cn(None)
    if flaw == "leaf-empty-subject":
        leaf_name = cn(None)
    inter = certificate(
        inter_name, root.certificate.subject, inter_key, root.private_key, **inter_kw
    )
    cas = [inter]
    signer, signer_key = inter, inter_key
    if flaw == "path-length-exceeded":  # below an intermediate that allows none
        lower_key = ec.generate_private_key(ec.SECP256R1())
        lower = certificate(
            cn(f"{flaw} lower intermediate"), inter.subject, lower_key, inter_key,
            ca=True, path_length=0,
        )  # fmt: skip
        cas.insert(0, lower)
        signer, signer_key = lower, lower_key
    leaf = certificate(leaf_name, signer.subject, leaf_key, signer_key, **leaf_kw)
    if flaw == "leaf-bad-signature":  # one bit of the signature flipped
        der = bytearray(leaf.public_bytes(serialization.Encoding.DER))
        der[-1] ^= 0x01
        leaf = x509.load_der_x509_certificate(bytes(der))
    chain = (leaf, *cas)
    culprit = {
        "inter-ca-false": inter,
        "inter-no-basic-constraints": inter,
        "inter-no-cert-sign": inter,
        "inter-bc-not-critical": inter,
        "inter-no-key-usage": inter,
        "inter-path-length-no-key-usage": inter,
        "inter-no-ski": inter,
        "inter-no-aki": inter,
        "inter-rsa-1024": inter,
        "path-length-exceeded": inter,
        "inter-eku-client-only": inter,
    }.get(flaw, leaf)
    return Flawed(write_identity(directory, flaw, chain, leaf_key), chain, culprit)


# ---------------------------------------------------------------------------------------------
# Servers in threads


@dataclass
class Served:
    """What a test server saw: the errors its connections ended with, and what they received."""

    errors: list[BaseException] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    accepted: int = 0
    finished: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def first_error(self) -> BaseException:
        """The error of the first connection, waiting for it to be recorded."""
        assert self.done.wait(TIMEOUT), "the server recorded no connection"
        assert self.errors, f"the server saw no error (received {self.received!r})"
        return self.errors[0]

    def wait_idle(self) -> None:
        """Wait until every accepted connection has been handled and closed."""
        assert self.done.wait(TIMEOUT), "the server recorded no connection"
        assert wait_for(lambda: self.finished == self.accepted), "a connection is still open"


Handler = Callable[[socket.socket, Served], None]


def tls_handler(ctx: ssl.SSLContext, *, reply: bytes = b"pong") -> Handler:
    """Handle a connection: TLS handshake with *ctx*, read one chunk, answer *reply*."""

    def handle(conn: socket.socket, served: Served) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            served.received.append(tls.recv(1024))
            tls.sendall(reply)

    return handle


def reset_unless_certificate(ctx: ssl.SSLContext) -> Handler:
    """Handle a connection as an application that enforces mutual TLS itself.

    *ctx* asks for a client certificate without requiring one, so the handshake completes; a
    client that sent none is then reset (RST, no alert), as some servers and proxies do.
    """

    def handle(conn: socket.socket, served: Served) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            if tls.getpeercert():
                served.received.append(tls.recv(1024))
                tls.sendall(b"pong")
                return
            served.received.append(b"")
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return handle


def wrap_server_handler(ctx: ssl.SSLContext, *, reply: bytes = b"pong") -> Handler:
    """Like :func:`tls_handler`, through ``securelink.wrap_server``."""

    def handle(conn: socket.socket, served: Served) -> None:
        with securelink.wrap_server(conn, ctx) as tls:
            served.received.append(tls.recv(1024))
            tls.sendall(reply)

    return handle


def plaintext_handler(reply: bytes) -> Handler:
    """Handle a connection as a plaintext server: read what comes, answer *reply*, close."""

    def handle(conn: socket.socket, served: Served) -> None:
        served.received.append(conn.recv(4096))
        conn.sendall(reply)

    return handle


HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request"


@contextlib.contextmanager
def serve(handler: Handler) -> Iterator[tuple[int, Served]]:
    """Serve connections on 127.0.0.1:0 with *handler*, one at a time, until the block ends.

    Serving more than one connection matters: the translation may make one diagnostic handshake
    to the same address, as it would against a real server.
    """
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.05)
    served = Served()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was shut down: the test is over
                return
            served.accepted += 1
            conn.settimeout(TIMEOUT)
            try:
                handler(conn, served)
            except Exception as exc:  # recorded for the test to assert
                served.errors.append(exc)
            finally:
                conn.close()
                served.finished += 1
                served.done.set()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], served
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the test server thread did not finish"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, never listening, then released)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


def open_sockets() -> set[int]:
    """The file descriptors of this process that are sockets."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll *predicate* until it is true or *timeout* passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------------------------------------
# openssl processes


def _openssl() -> str:
    assert OPENSSL is not None
    return OPENSSL


@dataclass
class SServer:
    """A running ``openssl s_server``."""

    proc: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def log(self) -> str:
        """What s_server wrote to stderr so far."""
        return self.stderr.read_text(errors="replace")


@contextlib.contextmanager
def s_server(tmp_path: Path, identity: Files, *args: str, naccept: int = 2) -> Iterator[SServer]:
    """Run ``openssl s_server -rev`` for *identity* on 127.0.0.1:0; always end it on exit."""
    stdout, stderr = tmp_path / "s_server.out", tmp_path / "s_server.err"
    command = [
        _openssl(), "s_server", "-accept", f"{LOOPBACK}:0", "-naccept", str(naccept), "-rev",
        "-cert", str(identity.cert), "-key", str(identity.key),
    ]  # fmt: skip
    if identity.intermediates is not None:
        command += ["-cert_chain", str(identity.intermediates)]
    command += args
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + TIMEOUT
        port = 0
        while not port and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(
                r"^ACCEPT 127\.0\.0\.1:(\d+)$", stdout.read_text(errors="replace"), re.MULTILINE
            )
            if found:
                port = int(found.group(1))
            else:
                time.sleep(0.005)
        assert port, f"s_server did not start:\n{stderr.read_text(errors='replace')}"
        yield SServer(proc, port, stderr)
    finally:
        stop_process(proc)


@dataclass(frozen=True)
class SClientRun:
    """What ``openssl s_client`` printed, and how it exited."""

    returncode: int
    stdout: str
    stderr: str


def s_client(port: int, *args: str, send: bytes = b"ping\n") -> SClientRun:
    """Run ``openssl s_client`` against 127.0.0.1:*port*; killed by subprocess.run on timeout."""
    command = [_openssl(), "s_client", "-connect", f"{LOOPBACK}:{port}", "-ign_eof", *args]
    done = subprocess.run(command, input=send, capture_output=True, timeout=TIMEOUT, check=False)
    return SClientRun(
        done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


# ---------------------------------------------------------------------------------------------
# What every explanation must satisfy

#: Advice an explanation must never give: switching verification off.
INSECURE_ADVICE = ("CERT_NONE", "check_hostname=False", "check_hostname = False", "verify=False")


def summary(cert: x509.Certificate) -> securelink.CertificateSummary:
    """The summary securelink makes of *cert*."""
    return securelink.CertificateSummary.from_certificate(cert)


def assert_explained(
    e: BaseException,
    *,
    cause: type[BaseException],
    side: str | None = None,
    role: str | None = None,
    server_hostname: str | None = None,
    port: int | None = None,
) -> None:
    """Check the shape every explanation shares, and the stdlib facts it keeps.

    Args:
        e: The explanation.
        cause: The exact class of the original exception, its ``__cause__``.
        side: The expected ``side`` of a handshake error.
        role: The expected ``role`` of a handshake error.
        server_hostname: The expected ``server_hostname``.
        port: When given, ``peer`` must be 127.0.0.1 on this port.
    """
    assert isinstance(e, securelink.SecureLinkError)
    original = e.__cause__
    assert type(original) is cause, f"cause {original!r}"
    assert e.hint, "no hint"
    assert str(e) == f"{e.message} Hint: {e.hint}"
    assert e.message[:1].isupper(), e.message
    assert e.message.endswith((".", ")")), e.message
    for advice in INSECURE_ADVICE:
        assert advice not in str(e)
    if isinstance(e, securelink.HandshakeError):
        assert isinstance(e, ssl.SSLError)
        assert (e.side, e.role) == (side, role)
        assert e.server_hostname == server_hostname
        if port is not None:
            assert e.peer == (LOOPBACK, port)
        if isinstance(original, ssl.SSLError):
            assert (e.library, e.reason) == (original.library, original.reason)
        if isinstance(original, ssl.SSLCertVerificationError):
            assert isinstance(e, securelink.CertificateVerificationError)
            assert ssl.SSLCertVerificationError in type(e).__mro__
            assert e.verify_code == original.verify_code
            assert e.verify_message == original.verify_message
            assert e.reason == "CERTIFICATE_VERIFY_FAILED"
