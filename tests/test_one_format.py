"""One format per fact: the same certificate gives the same values everywhere securelink shows it.

``public_key_sha256``, the SubjectAltName ``names`` and "N days ago" are read through
:func:`securelink.inspect`, :func:`securelink.peer_identity` (after a real handshake), the
handshake explanations, loading, and the probe; each must agree with the others.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

import securelink
from securelink import CertificateSummary, devca
from securelink._probe import problems
from securelink._x509 import duration
from securelink.errors import (
    CertificateExpiredError,
    CertificateProblemError,
    HostnameMismatchError,
)

from .explain_peers import assert_explained

TIMEOUT = 10.0
NAMES = ("localhost", "127.0.0.1", "spiffe://example.test/web")
#: The boundary of the rounding rule: whole days rounded down make this "4 days", never "5".
JUST_UNDER_FIVE_DAYS = datetime.timedelta(days=4, hours=23)


@contextmanager
def serving(ctx: ssl.SSLContext) -> Iterator[int]:
    """Serve TLS with *ctx* on 127.0.0.1:0, one connection after another, until the block ends.

    More than one connection: an explanation may make a diagnostic handshake of its own.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - the listener was closed
                return
            conn.settimeout(TIMEOUT)
            with suppress(OSError), conn, ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1024)
                tls.sendall(b"pong")

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the test server thread did not finish"


def stdlib_server(issued: devca.IssuedCertificate, tmp_path: Path) -> ssl.SSLContext:
    """A bare stdlib server context: securelink itself refuses to serve an expired certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(issued.cert_pem + issued.chain_pem)
    key.write_bytes(issued.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture(scope="module")
def ca() -> devca.CertificateAuthority:
    """A development CA of this module's own."""
    return devca.CertificateAuthority()


def test_same_key_hash_and_names_through_inspect_peer_identity_and_explanations(
    ca: devca.CertificateAuthority,
) -> None:
    """One certificate, read four ways after a real handshake: one hash format, one names tuple."""
    issued = ca.issue(*NAMES, usage=devca.Usage.SERVER)
    info = securelink.inspect(issued.cert_pem).certificates[0]
    client = securelink.client_context(ca.client_options())
    with serving(securelink.server_context(issued.server_options())) as port:
        with securelink.connect("127.0.0.1", port, client, server_hostname="localhost") as tls:
            identity = securelink.peer_identity(tls)
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        # The same key hash is a working pin, as inspect gives it.
        pinned = securelink.client_context(
            ca.client_options(pin_public_keys=[info.public_key_sha256])
        )
        with securelink.connect("127.0.0.1", port, pinned, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        with pytest.raises(HostnameMismatchError) as caught:
            securelink.connect("127.0.0.1", port, client, server_hostname="other.test").close()
    assert identity is not None
    explained = caught.value
    assert type(explained) is HostnameMismatchError
    assert_explained(
        explained,
        cause=ssl.SSLCertVerificationError,
        side="local",
        role="client",
        server_hostname="other.test",
        port=port,
    )

    assert explained.certificate is not None
    assert len(info.public_key_sha256) == 64
    assert info.public_key_sha256 == info.public_key_sha256.lower()
    assert identity.public_key_sha256 == info.public_key_sha256
    assert securelink.inspect(issued.key_pem).private_keys[0].public_key_sha256 == (
        info.public_key_sha256
    )

    # The certificate's own fingerprint keeps openssl's colon-separated upper-case form.
    assert identity.sha256 == info.sha256 == explained.certificate.sha256
    assert info.sha256 == info.sha256.upper() and info.sha256.count(":") == 31

    assert info.names == NAMES
    assert identity.names == NAMES
    assert explained.certificate.names == NAMES
    assert explained.certificate == info.summary()
    assert CertificateSummary.from_certificate(issued.certificate) == info.summary()


def test_same_days_ago_through_inspect_loading_probe_and_a_handshake(
    ca: devca.CertificateAuthority, tmp_path: Path
) -> None:
    """Expired 4 days 23 hours ago is "4 days ago" in loading, inspect, probe and a handshake."""
    now = datetime.datetime.now(datetime.UTC)
    issued = ca.issue(
        *NAMES,
        usage=devca.Usage.SERVER,
        not_before=now - datetime.timedelta(days=30),
        not_after=now - JUST_UNDER_FIVE_DAYS,
    )
    client = securelink.client_context(ca.client_options())
    with (
        serving(stdlib_server(issued, tmp_path)) as port,
        pytest.raises(CertificateExpiredError) as caught,
    ):
        securelink.connect("127.0.0.1", port, client, server_hostname="localhost").close()
    explained = caught.value
    assert type(explained) is CertificateExpiredError
    assert_explained(
        explained,
        cause=ssl.SSLCertVerificationError,
        side="local",
        role="client",
        server_hostname="localhost",
        port=port,
    )
    assert explained.expired_for is not None
    assert JUST_UNDER_FIVE_DAYS <= explained.expired_for < datetime.timedelta(days=5)
    assert explained.message.endswith(", 4 days ago.")

    info = securelink.inspect(issued.cert_pem).certificates[0]
    assert tuple(f.code for f in info.findings) == ("expired",)
    assert "(4 days ago)" in info.findings[0].message

    with pytest.raises(CertificateProblemError) as loading:
        securelink.server_context(issued.server_options())
    assert type(loading.value) is CertificateProblemError
    assert loading.value.problem == "expired"
    assert loading.value.message.endswith(", 4 days ago.")

    summary = CertificateSummary.from_certificate(issued.certificate)
    assert [p.split(" UTC, ")[1] for p in problems(summary, "localhost")] == ["4 days ago"]

    assert explained.certificate == info.summary() == summary


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (datetime.timedelta(days=4, hours=23, minutes=59), "4 days"),
        (datetime.timedelta(days=2), "2 days"),
        (datetime.timedelta(days=1, hours=23, minutes=59), "47 hours"),
        (datetime.timedelta(hours=2), "2 hours"),
        (datetime.timedelta(hours=1, minutes=59), "119 minutes"),
        (datetime.timedelta(minutes=1), "1 minute"),
        (datetime.timedelta(seconds=59), "less than a minute"),
        (-datetime.timedelta(days=4, hours=23), "4 days"),
    ],
)
def test_duration_rule(delta: datetime.timedelta, text: str) -> None:
    """Whole units rounded down: days from two days, hours from two hours, else minutes."""
    assert duration(delta) == text


def test_uri_only_certificate_still_lacks_a_host_name(ca: devca.CertificateAuthority) -> None:
    """``names`` now lists URIs, but a URI cannot match a host name: still ``no-san``."""
    issued = ca.issue("spiffe://example.test/web", usage=devca.Usage.SERVER)
    info = securelink.inspect(issued.cert_pem).certificates[0]
    assert info.names == ("spiffe://example.test/web",)
    assert tuple(f.code for f in info.findings) == ("no-san",)
