"""Interoperability with GnuTLS (``gnutls-serv``) as an independent TLS server.

GnuTLS refuses clients in its own words: a TLS 1.2 client that has no certificate gets a
``decode error`` alert after GnuTLS asked for one, an untrusted client certificate gets
``access denied``, and a server limited to TLS 1.1 answers a modern ClientHello with a
``handshake failure``.  securelink must explain each of them from evidence, not from the alert's
name alone.

``gnutls-serv`` has no option to bind one address: it listens on all of them, on the port it is
given.  It is given port 0, the port the kernel chose is read from ``/proc`` (the listening
socket among the process's file descriptors), and the tests connect to 127.0.0.1 only.  Every
server is started by the test that needs it and ended (terminated, then waited for) before that
test finishes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import securelink.aio
from securelink import (
    CertificateRejectedError,
    ClientCertificateRequiredError,
    ClientOptions,
    ProtocolMismatchError,
    connect,
    devca,
)

from .helpers import stop_process

GNUTLS_SERV = shutil.which("gnutls-serv")
TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"

pytestmark = [
    pytest.mark.skipif(
        GNUTLS_SERV is None, reason="gnutls-serv is missing (Debian: apt-get install gnutls-bin)"
    ),
    pytest.mark.skipif(
        not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc to find gnutls-serv's port"
    ),
]

TLS12_ONLY = "NORMAL:-VERS-TLS1.3"
TLS11_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.1"


@dataclass(frozen=True)
class Files:
    """The server's PEM files, and a client identity from the same CA and from a stranger."""

    ca: Path
    cert: Path
    key: Path
    client: devca.IssuedCertificate
    stranger: devca.IssuedCertificate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ca: devca.CertificateAuthority) -> Files:
    directory = tmp_path_factory.mktemp("gnutls")
    server = ca.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER)
    paths = Files(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server-key.pem",
        client=ca.issue("client.test", usage=devca.Usage.CLIENT),
        stranger=devca.CertificateAuthority(common_name="a CA nobody here trusts").issue(
            "client.test", usage=devca.Usage.CLIENT
        ),
    )
    paths.ca.write_bytes(ca.cert_pem)
    paths.cert.write_bytes(server.chain_pem)
    paths.key.write_bytes(server.key_pem)
    paths.key.chmod(0o600)
    return paths


def _listening_port(pid: int) -> int | None:
    """The IPv4 port process *pid* listens on, from its socket inodes and /proc/net/tcp."""
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes:  # 0A: LISTEN
            return int(local.rsplit(":", 1)[1], 16)
    return None


@contextmanager
def gnutls_serv(files: Files, *args: str) -> Iterator[int]:
    """Run ``gnutls-serv --echo`` with the server's files; yield its port; always end it."""
    assert GNUTLS_SERV is not None
    command = [
        GNUTLS_SERV, "--echo", "--port", "0",
        "--x509certfile", str(files.cert), "--x509keyfile", str(files.key), *args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            port = _listening_port(proc.pid)
            if port is None:
                time.sleep(0.01)
        assert port is not None, f"gnutls-serv did not listen (exit code {proc.poll()})"
        yield port
    finally:
        stop_process(proc)


def _mtls(files: Files, priority: str | None = None) -> tuple[str, ...]:
    more = ("--priority", priority) if priority else ()
    return ("--x509cafile", str(files.ca), "--require-client-cert", "--verify-client-cert", *more)


def _first_read(port: int, options: ClientOptions) -> bytes:
    """Connect and read once: with TLS 1.3 a server's verdict on the client arrives there.

    Nothing is sent first: GnuTLS closes with it unread, and the reset could beat the alert.
    """
    with connect(LOOPBACK, port, options, server_hostname="localhost", timeout=TIMEOUT) as tls:
        return tls.recv(10)


MAX = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TestAgreement:
    """The baseline: securelink and GnuTLS complete mutual TLS on both versions."""

    @pytest.mark.parametrize("version", sorted(MAX))
    def test_mutual_tls_echo(self, files: Files, version: str) -> None:
        options = files.client.client_options().replace(max_version=MAX[version])
        with (
            gnutls_serv(files, *_mtls(files)) as port,
            connect(LOOPBACK, port, options, server_hostname="localhost", timeout=TIMEOUT) as tls,
        ):
            tls.sendall(b"securelink and gnutls\n")
            assert tls.recv(100) == b"securelink and gnutls\n"
            assert tls.version() == version


class TestRefusals:
    """GnuTLS's refusals, explained from evidence."""

    def test_tls12_client_without_certificate_gets_decode_error(self, files: Files) -> None:
        """GnuTLS's 'decode error' after its CertificateRequest: certificate required."""
        options = ClientOptions(ca=files.ca)
        with (
            gnutls_serv(files, *_mtls(files, TLS12_ONLY)) as port,
            pytest.raises(ClientCertificateRequiredError) as caught,
        ):
            connect(LOOPBACK, port, options, server_hostname="localhost", timeout=TIMEOUT)
        e = caught.value
        assert type(e) is ClientCertificateRequiredError
        assert e.alert == "decode error"
        assert (e.role, e.side, e.server_hostname) == ("client", "peer", "localhost")
        assert e.peer == (LOOPBACK, port)
        assert "with a 'decode error' alert after asking for one" in e.message
        assert "cert=" in e.hint

    def test_tls13_client_without_certificate(self, files: Files) -> None:
        """TLS 1.3: GnuTLS's verdict comes after the handshake, on the first read."""
        options = ClientOptions(ca=files.ca)
        with (
            gnutls_serv(files, *_mtls(files)) as port,
            pytest.raises(ClientCertificateRequiredError) as caught,
        ):
            _first_read(port, options)
        e = caught.value
        assert type(e) is ClientCertificateRequiredError
        assert (e.role, e.side, e.peer) == ("client", "peer", (LOOPBACK, port))
        assert e.alert == "certificate required"

    @pytest.mark.parametrize("version", sorted(MAX))
    def test_untrusted_client_certificate_gets_access_denied(
        self, files: Files, version: str
    ) -> None:
        """'access denied' for an untrusted issuer: the hint names the CA, not only dates."""
        options = files.stranger.client_options().replace(ca=files.ca, max_version=MAX[version])
        with (
            gnutls_serv(files, *_mtls(files)) as port,
            pytest.raises(CertificateRejectedError) as caught,
        ):
            _first_read(port, options)
        e = caught.value
        assert type(e) is CertificateRejectedError
        assert e.alert == "access denied"
        assert e.certificate is not None and e.certificate.names == ("client.test",)
        assert "it answered with an 'access denied' alert" in e.message
        assert "does not trust the CA that issued it" in e.hint
        assert "trust it" not in e.hint.replace("trust the CA", "")

    def test_tls11_only_server(self, files: Files) -> None:
        """A server that speaks only TLS 1.1 is named as such, not as a cipher problem."""
        options = ClientOptions(ca=files.ca)
        with (
            gnutls_serv(files, "--priority", TLS11_ONLY) as port,
            pytest.raises(ProtocolMismatchError) as caught,
        ):
            connect(LOOPBACK, port, options, server_hostname="localhost", timeout=TIMEOUT)
        e = caught.value
        assert type(e) is ProtocolMismatchError
        assert e.mismatch == "version"
        assert e.peer_version == "TLSv1.1"
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert e.message.startswith(
            f"The server 'localhost' port {port} speaks only TLS 1.1, which securelink refuses"
        )
        assert "Upgrade the server to TLS 1.2 or 1.3" in e.hint


class TestAsyncio:
    """The same refusals through securelink.aio, which diagnoses in a thread."""

    def test_tls12_client_without_certificate(self, files: Files) -> None:
        options = ClientOptions(ca=files.ca)
        with (
            gnutls_serv(files, *_mtls(files, TLS12_ONLY)) as port,
            pytest.raises(ClientCertificateRequiredError) as caught,
        ):
            asyncio.run(_aio_connect(port, options))
        e = caught.value
        assert type(e) is ClientCertificateRequiredError
        assert e.alert == "decode error"
        assert e.peer == (LOOPBACK, port)

    def test_tls11_only_server(self, files: Files) -> None:
        options = ClientOptions(ca=files.ca)
        with (
            gnutls_serv(files, "--priority", TLS11_ONLY) as port,
            pytest.raises(ProtocolMismatchError) as caught,
        ):
            asyncio.run(_aio_connect(port, options))
        e = caught.value
        assert type(e) is ProtocolMismatchError
        assert (e.mismatch, e.peer_version) == ("version", "TLSv1.1")


async def _aio_connect(port: int, options: ClientOptions) -> None:
    _, writer = await securelink.aio.open_connection(
        LOOPBACK, port, options, server_hostname="localhost"
    )
    writer.close()
    await writer.wait_closed()
