"""peer_identity(): who the peer proved to be, on blocking sockets, SSLObjects and asyncio streams.

Every connection is a real handshake over 127.0.0.1; each test ends the threads it starts and
closes its servers and event loops before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import pickle
import re
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import securelink
import securelink.aio
from securelink import (
    CertificateSummary,
    ClientAuth,
    ConnectionInfo,
    client_context,
    server_context,
)
from securelink._connect import _forget_sessions
from securelink._identity import IdentityUnavailableError, PeerIdentity, peer_identity
from securelink._x509 import public_key_sha256
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage
from securelink.errors import FrozenInstanceError

TIMEOUT = 10.0
SPIFFE = "spiffe://example.org/ns/prod/sa/billing"
_T = TypeVar("_T")


@pytest.fixture(autouse=True)
def _no_kept_sessions() -> Iterator[None]:
    """No TLS session kept by securelink.connect leaks from one test into another."""
    _forget_sessions()
    yield
    _forget_sessions()


@pytest.fixture(scope="module")
def pki() -> tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]:
    """A CA, a server certificate, and a workload client certificate with every kind of SAN."""
    ca = CertificateAuthority()
    server = ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER)
    client = ca.issue(
        "billing.internal",
        "10.0.0.7",
        "::1",
        "https://example.org/not-spiffe",
        SPIFFE,
        usage=Usage.CLIENT,
        common_name="billing",
    )
    return ca, server, client


Pki = tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@contextlib.contextmanager
def serving(
    ctx: ssl.SSLContext, look: Callable[[ssl.SSLSocket], object], connections: int = 1
) -> Iterator[tuple[int, list[object]]]:
    """Serve *connections* TLS connections on 127.0.0.1:0, recording ``look(tls)`` for each."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    seen: list[object] = []

    def serve() -> None:
        for _ in range(connections):
            try:
                conn, _ = listener.accept()
            except OSError:  # pragma: no cover - the client never came
                return
            conn.settimeout(TIMEOUT)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    seen.append(look(tls))
                    tls.sendall(tls.recv(10))
            except Exception as exc:  # recorded for the test to see
                seen.append(exc)
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the test server thread did not finish"


def exchange(tls: ssl.SSLSocket) -> None:
    tls.sendall(b"ping")
    assert tls.recv(10) == b"ping"


def mtls_server(pki: Pki, **kwargs: Any) -> ssl.SSLContext:
    ca, server, _ = pki
    kwargs.setdefault("client_auth", ClientAuth.REQUIRE_AND_VERIFY)
    return server_context(server.server_options(client_ca=ca.root, **kwargs))


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run *main* in a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(main, TIMEOUT))


class TestBlockingSockets:
    """On blocking sockets, each end learns the identity the other proved."""

    def test_client_sees_the_server(self, pki: Pki) -> None:
        """The client gets the server's names, fingerprints, dates and verified chain."""
        ca, server, _ = pki
        with (
            serving(server_context(server.server_options()), lambda tls: None) as (port, _),
            securelink.connect(
                "127.0.0.1", port, ca.client_options(), server_hostname="localhost"
            ) as tls,
        ):
            identity = peer_identity(tls)
            exchange(tls)
        assert identity is not None
        leaf = server.certificate
        assert identity.dns_names == ("localhost",)
        assert identity.ip_addresses == (ipaddress.ip_address("127.0.0.1"),)
        assert identity.uris == ()
        assert identity.spiffe_id is None
        assert identity.subject == leaf.subject.rfc4514_string()
        assert identity.issuer == ca.certificate.subject.rfc4514_string()
        assert identity.sha256 == CertificateSummary.from_certificate(leaf).sha256
        assert identity.not_before == leaf.not_valid_before_utc
        assert identity.not_after == leaf.not_valid_after_utc
        assert [der(c) for c in identity.chain] == [der(leaf), der(ca.certificate)]
        assert der(identity.certificate) == der(leaf)

    def test_pin_form_is_the_one_pin_public_keys_stores(self, pki: Pki) -> None:
        """public_key_sha256 can be put in (and compared with) ClientOptions.pin_public_keys."""
        ca, server, _ = pki
        with (
            serving(server_context(server.server_options()), lambda tls: None) as (port, _),
            securelink.connect(
                "127.0.0.1", port, ca.client_options(), server_hostname="localhost"
            ) as tls,
        ):
            identity = peer_identity(tls)
            exchange(tls)
        assert identity is not None
        pinned = ca.client_options(pin_public_keys=(identity.public_key_sha256.upper(),))
        assert identity.public_key_sha256 == public_key_sha256(server.certificate)
        assert pinned.pin_public_keys == (identity.public_key_sha256,)

    def test_server_sees_the_client_with_uri_sans(self, pki: Pki) -> None:
        """With mutual TLS, the server gets the client's SPIFFE ID and its typed SANs."""
        ca, _, client = pki
        with (
            serving(mtls_server(pki), peer_identity) as (port, seen),
            securelink.connect(
                "127.0.0.1", port, client.client_options(), server_hostname="localhost"
            ) as tls,
        ):
            exchange(tls)
        identity = seen[0]
        assert isinstance(identity, PeerIdentity)
        assert identity.spiffe_id == SPIFFE
        assert identity.uris == ("https://example.org/not-spiffe", SPIFFE)
        assert identity.dns_names == ("billing.internal",)
        assert identity.ip_addresses == (
            ipaddress.IPv4Address("10.0.0.7"),
            ipaddress.IPv6Address("::1"),
        )
        assert identity.common_name == "billing"
        assert [der(c) for c in identity.chain] == [der(client.certificate), der(ca.certificate)]

    def test_names_are_those_allowed_peers_matches(self, pki: Pki) -> None:
        """PeerIdentity.names lists the SANs as ConnectionInfo.peer_names does."""
        _, _, client = pki
        infos: list[ConnectionInfo] = []
        ctx = mtls_server(pki, verify_connection=infos.append)
        with (
            serving(ctx, peer_identity) as (port, seen),
            securelink.connect(
                "127.0.0.1", port, client.client_options(), server_hostname="localhost"
            ) as tls,
        ):
            exchange(tls)
        identity = seen[0]
        assert isinstance(identity, PeerIdentity)
        assert identity.names == infos[0].peer_names
        assert identity.names == (
            "billing.internal",
            "10.0.0.7",
            "::1",
            "https://example.org/not-spiffe",
            SPIFFE,
        )

    def test_no_client_auth_means_none(self, pki: Pki) -> None:
        """A server that asks for no client certificate gets None."""
        ca, server, client = pki
        with (
            serving(server_context(server.server_options()), peer_identity) as (port, seen),
            securelink.connect(
                "127.0.0.1",
                port,
                client.client_options(ca=ca.root),
                server_hostname="localhost",
            ) as tls,
        ):
            exchange(tls)
        assert seen == [None]

    def test_optional_client_certificate_not_sent_means_none(self, pki: Pki) -> None:
        """VERIFY_IF_GIVEN and no client certificate: None; with one: the identity."""
        ca, _, client = pki
        ctx = mtls_server(pki, client_auth=ClientAuth.VERIFY_IF_GIVEN)
        with serving(ctx, peer_identity, connections=2) as (port, seen):
            for options in (ca.client_options(), client.client_options()):
                with securelink.connect(
                    "127.0.0.1", port, options, server_hostname="localhost", resume=False
                ) as tls:
                    exchange(tls)
        assert seen[0] is None
        assert isinstance(seen[1], PeerIdentity)
        assert seen[1].spiffe_id == SPIFFE

    @pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
    def test_resumed_session_keeps_the_identity(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """On a resumed session both ends see the same identity, with the leaf as chain."""
        _, _, client = pki
        ctx = mtls_server(pki, max_version=version)
        options = client.client_options(max_version=version)
        client_side: list[PeerIdentity | None] = []
        reused: list[bool | None] = []
        with serving(ctx, peer_identity, connections=2) as (port, server_side):
            for _ in range(2):
                with securelink.connect(
                    "127.0.0.1", port, options, server_hostname="localhost"
                ) as tls:
                    client_side.append(peer_identity(tls))
                    reused.append(tls.session_reused)
                    exchange(tls)
        assert reused == [False, True]
        full, resumed = server_side
        assert isinstance(full, PeerIdentity)
        assert isinstance(resumed, PeerIdentity)
        assert len(full.chain) == 2
        assert len(resumed.chain) == 1
        assert resumed.replace(chain=full.chain) == full
        assert client_side[0] is not None and client_side[1] is not None
        assert client_side[1].replace(chain=client_side[0].chain) == client_side[0]

    def test_wrap_bio_object(self, pki: Pki) -> None:
        """An SSLObject (the memory-BIO API asyncio uses) is read as well as a socket."""
        ca, server, client = pki
        sctx, cctx = mtls_server(pki), client_context(client.client_options())
        bios = [ssl.MemoryBIO() for _ in range(4)]
        c = cctx.wrap_bio(bios[0], bios[1], server_hostname="localhost")
        s = sctx.wrap_bio(bios[1], bios[0], server_side=True)
        for _ in range(10):  # pump the handshake between the two ends, in memory
            for obj in (c, s):
                with contextlib.suppress(ssl.SSLWantReadError):
                    obj.do_handshake()
        del bios
        server_sees, client_sees = peer_identity(s), peer_identity(c)
        assert server_sees is not None and client_sees is not None
        assert server_sees.spiffe_id == SPIFFE
        assert der(client_sees.certificate) == der(server.certificate)
        assert der(client_sees.chain[-1]) == der(ca.certificate)


class TestAsyncio:
    """asyncio streams and transports: either end, securelink.aio or plain asyncio."""

    def test_both_ends_with_securelink_aio(self, pki: Pki) -> None:
        """A handler reads its client's SPIFFE ID; the client reads the server's name."""
        _, server, client = pki
        seen: list[PeerIdentity | None] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(peer_identity(writer))
            seen.append(peer_identity(writer.transport))
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        async def main() -> PeerIdentity | None:
            srv = await securelink.aio.start_server(handle, "127.0.0.1", 0, mtls_server(pki))
            async with srv:
                port = srv.sockets[0].getsockname()[1]
                reader, writer = await securelink.aio.open_connection(
                    "127.0.0.1", port, client.client_options(), server_hostname="localhost"
                )
                identity = peer_identity(writer)
                assert peer_identity(writer.get_extra_info("ssl_object")) == identity
                writer.write(b"ping")
                assert await reader.readexactly(4) == b"ping"
                writer.close()
                await writer.wait_closed()
            return identity

        identity = run(main())
        assert identity is not None
        assert der(identity.certificate) == der(server.certificate)
        assert seen[0] is not None
        assert seen[0].spiffe_id == SPIFFE
        assert seen[1] == seen[0]

    def test_spiffe_allow_list(self, pki: Pki) -> None:
        """The docstring's allow-list: a listed workload is served, another one is not."""
        ca, _, client = pki
        stranger = ca.issue("spiffe://example.org/ns/dev/sa/intruder", usage=Usage.CLIENT)
        allowed = {SPIFFE}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            identity = peer_identity(writer)
            if identity is None or identity.spiffe_id not in allowed:
                writer.close()
            else:
                writer.write(f"hello {identity.spiffe_id}\n".encode())
                await writer.drain()
                writer.close()

        async def ask(port: int, who: IssuedCertificate) -> bytes:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=client_context(who.client_options()),
                server_hostname="localhost",
            )
            try:
                return await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        async def main() -> tuple[bytes, bytes]:
            srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=mtls_server(pki))
            async with srv:
                port = srv.sockets[0].getsockname()[1]
                return await ask(port, client), await ask(port, stranger)

        served, refused = run(main())
        assert served == f"hello {SPIFFE}\n".encode()
        assert refused == b""


class StubTransport:
    """An object with get_extra_info, like an asyncio transport, with the given extras."""

    def __init__(self, **extra: object) -> None:
        self.extra = extra

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.extra.get(name, default)


class TestUnavailable:
    """Errors for connections that cannot tell who the peer is."""

    def test_not_connected(self, pki: Pki) -> None:
        """wrap_socket() on a socket that is not connected yet: handshake-not-done."""
        ca, _, _ = pki
        with (
            client_context(ca.client_options()).wrap_socket(
                socket.socket(), server_hostname="localhost"
            ) as tls,
            pytest.raises(IdentityUnavailableError) as caught,
        ):
            peer_identity(tls)
        assert caught.value.problem == "handshake-not-done"
        assert isinstance(caught.value, ValueError)
        assert "has not finished its TLS handshake" in str(caught.value)

    def test_handshake_not_done(self, pki: Pki) -> None:
        """A connected socket whose handshake was deferred: handshake-not-done."""
        ca, _, _ = pki
        with (
            socket.create_server(("127.0.0.1", 0)) as listener,
            socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw,
            client_context(ca.client_options()).wrap_socket(
                raw, server_hostname="localhost", do_handshake_on_connect=False
            ) as tls,
            pytest.raises(IdentityUnavailableError) as caught,
        ):
            peer_identity(tls)
        assert caught.value.problem == "handshake-not-done"

    def test_sslobject_before_handshake(self, pki: Pki) -> None:
        """An SSLObject before its handshake: handshake-not-done."""
        ca, _, _ = pki
        obj = client_context(ca.client_options()).wrap_bio(
            ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost"
        )
        with pytest.raises(IdentityUnavailableError) as caught:
            peer_identity(obj)
        assert caught.value.problem == "handshake-not-done"

    def test_transport_before_handshake(self) -> None:
        """A TLS transport that has a context but no ssl_object yet: handshake-not-done."""
        stub = StubTransport(sslcontext=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        with pytest.raises(IdentityUnavailableError) as caught:
            peer_identity(stub)  # type: ignore[arg-type]
        assert caught.value.problem == "handshake-not-done"
        assert "StubTransport" in caught.value.message

    def test_closed(self, pki: Pki) -> None:
        """A closed socket has lost its TLS state: closed."""
        ca, server, _ = pki
        with serving(server_context(server.server_options()), lambda tls: None) as (port, _):
            tls = securelink.connect(
                "127.0.0.1", port, ca.client_options(), server_hostname="localhost"
            )
            exchange(tls)
            tls.close()
        with pytest.raises(IdentityUnavailableError) as caught:
            peer_identity(tls)
        assert caught.value.problem == "closed"

    def test_unverified_peer(self, pki: Pki) -> None:
        """A client context that accepts any server (CERT_NONE) gets an error, not names."""
        _, server, _ = pki
        trusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        trusting.check_hostname = False
        trusting.verify_mode = ssl.CERT_NONE
        with (
            serving(server_context(server.server_options()), lambda tls: None) as (port, _),
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            trusting.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            with pytest.raises(IdentityUnavailableError) as caught:
                peer_identity(tls)
            exchange(tls)
        assert caught.value.problem == "unverified"
        assert "CERT_NONE" in caught.value.message

    @pytest.mark.parametrize(
        "conn", [StubTransport(), socket.socket, object()], ids=["plain-transport", "tcp", "other"]
    )
    def test_not_tls(self, conn: object) -> None:
        """A plain TCP transport or socket, or anything else, is a TypeError."""
        if conn is socket.socket:
            with socket.socket() as sock, pytest.raises(TypeError, match="peer_identity"):
                peer_identity(sock)  # type: ignore[arg-type]
            return
        with pytest.raises(TypeError):
            peer_identity(conn)  # type: ignore[arg-type]

    def test_error_pickles(self) -> None:
        """The error keeps its problem through pickle."""
        error = IdentityUnavailableError("The socket is closed.", problem="closed", hint="Hm.")
        again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
        assert (type(again), again.problem, str(again)) == (
            IdentityUnavailableError,
            "closed",
            str(error),
        )


class TestPeerIdentityValue:
    """PeerIdentity is a frozen value: built from certificates, compared, pickled."""

    def test_from_chain_takes_der_or_objects(self, pki: Pki) -> None:
        """DER and cryptography certificates give equal identities."""
        ca, _, client = pki
        objects = PeerIdentity.from_chain([client.certificate, ca.certificate])
        ders = PeerIdentity.from_chain([der(client.certificate), der(ca.certificate)])
        assert objects == ders
        assert hash(objects) == hash(ders)
        assert objects.spiffe_id == SPIFFE

    def test_spiffe_is_the_first_spiffe_uri(self, pki: Pki) -> None:
        """Other URIs are listed, but only a spiffe:// one is the SPIFFE ID."""
        ca, _, _ = pki
        plain = ca.issue("https://example.org/a", usage=Usage.CLIENT)
        assert PeerIdentity.from_chain([plain.certificate]).spiffe_id is None

    def test_pickle_round_trip(self, pki: Pki) -> None:
        """An identity survives pickle, certificates included."""
        _, _, client = pki
        identity = PeerIdentity.from_chain([client.certificate])
        again = pickle.loads(pickle.dumps(identity))  # noqa: S301 - our own data
        assert again == identity
        assert der(again.certificate) == der(client.certificate)

    def test_frozen_and_repr(self, pki: Pki) -> None:
        """It cannot be changed, and its repr names the certificates without dumping them."""
        _, _, client = pki
        identity = PeerIdentity.from_chain([client.certificate])
        with pytest.raises(FrozenInstanceError):
            identity.spiffe_id = "spiffe://example.org/other"  # type: ignore[misc]
        assert f"spiffe_id='{SPIFFE}'" in repr(identity)
        assert "chain=(<Certificate>)" in repr(identity)

    def test_empty_chain(self) -> None:
        """An identity needs a certificate."""
        with pytest.raises(ValueError, match="leaf"):
            PeerIdentity.from_chain([])


DOCS = Path(__file__).resolve().parent.parent / "docs" / "production.md"


def doc_examples() -> list[tuple[str, str | None]]:
    """The ```python blocks of the page's identity and resumption sections, with their output.

    Each block comes with the ```text block that follows it (what it prints), if any.
    """
    page = DOCS.read_text()
    start = page.index("\n## Peer identities\n")
    end = page.index("\n## ", page.index("\n## Session resumption\n") + 1)
    blocks = re.findall(r"```(python|text)\n(.*?)```", page[start:end], re.DOTALL)
    examples = []
    for i, (kind, code) in enumerate(blocks):
        if kind == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            examples.append((code, after[1] if after and after[0] == "text" else None))
    return examples


class TestDocs:
    """The examples of docs/production.md on identities and resumption run as shown."""

    @pytest.mark.parametrize(("code", "expected"), doc_examples())
    def test_example(
        self,
        code: str,
        expected: str | None,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each example, run as a script."""
        # Until securelink re-exports them, the page's names come from their module.
        monkeypatch.setattr(securelink, "peer_identity", peer_identity, raising=False)
        exec(compile(code, str(DOCS), "exec"), {"__name__": "__main__"})  # noqa: S102 - our docs
        if expected is not None:
            assert capsys.readouterr().out == expected
