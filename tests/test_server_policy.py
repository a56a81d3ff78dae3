"""Certificates per server name, allowed peers, public-key pins and profiles."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from securelink import (
    CertificateRejectedError,
    ClientAuth,
    ClientOptions,
    ConfigurationError,
    ConnectionRejectedError,
    Identity,
    Profile,
    ProtocolMismatchError,
    RemoteError,
    ServerOptions,
    UnknownNames,
    client_context,
    connect,
    server_context,
)
from securelink._x509 import public_key_sha256
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

from .helpers import handshake


@contextlib.contextmanager
def serving(ctx: ssl.SSLContext, errors: list[BaseException]) -> Iterator[int]:
    """A TLS server on 127.0.0.1:0 that keeps accepting (as real servers do) until the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(10))
            except OSError as exc:
                errors.append(exc)
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@pytest.fixture(scope="module")
def names() -> tuple[CertificateAuthority, dict[str, IssuedCertificate]]:
    """A CA and certificates for a default name, an exact name and a wildcard."""
    ca = CertificateAuthority()
    return ca, {
        "default": ca.issue("localhost", usage=Usage.SERVER),
        "api": ca.issue("api.example.test", usage=Usage.SERVER),
        "wild": ca.issue("*.apps.example.test", usage=Usage.SERVER),
    }


def by_name(certs: dict[str, IssuedCertificate], **kwargs: object) -> ServerOptions:
    return certs["default"].server_options(
        certificates_by_name={
            "api.example.test": Identity(
                cert=certs["api"].certificate, key=certs["api"].private_key
            ),
            "*.apps.example.test": Identity(
                cert=certs["wild"].chain_pem, key=certs["wild"].key_pem
            ),
        },
        **kwargs,
    )


class TestCertificatesByName:
    """The server picks the certificate for the name the client asked for."""

    @pytest.mark.parametrize(
        ("asked", "served"),
        [
            ("api.example.test", "api"),
            ("shop.apps.example.test", "wild"),
            ("localhost", "default"),
        ],
    )
    def test_selection(
        self,
        names: tuple[CertificateAuthority, dict[str, IssuedCertificate]],
        asked: str,
        served: str,
    ) -> None:
        """Exact names, then one-label wildcards, then the default certificate."""
        ca, certs = names
        _server, client = handshake(
            server_context(by_name(certs)),
            client_context(ca.client_options()),
            server_hostname=asked,
        )
        assert client.error is None
        assert client.peer_der == certs[served].certificate.public_bytes(Encoding.DER)

    def test_wildcard_is_one_label(
        self, names: tuple[CertificateAuthority, dict[str, IssuedCertificate]]
    ) -> None:
        """*.apps.example.test does not match a.b.apps.example.test: the default is served."""
        ca, certs = names
        _server, client = handshake(
            server_context(by_name(certs)),
            client_context(ca.client_options()),
            server_hostname="a.b.apps.example.test",
        )
        assert client.error is not None
        assert type(client.error).__name__ == "HostnameMismatchError"

    def test_unknown_names_rejected(
        self, names: tuple[CertificateAuthority, dict[str, IssuedCertificate]]
    ) -> None:
        """With UnknownNames.REJECT, a name not listed gets 'unrecognized name' on both ends."""
        ca, certs = names
        server, client = handshake(
            server_context(by_name(certs, unknown_names=UnknownNames.REJECT)),
            client_context(ca.client_options()),
            server_hostname="other.example.test",
        )
        assert type(client.error) is RemoteError
        assert client.error.alert == "unrecognized name"
        assert type(server.error) is ConnectionRejectedError
        assert server.error.hook == "unknown_names"
        assert "no certificate for 'other.example.test'" in server.error.message

    def test_no_sni_gets_default_even_when_rejecting(
        self, names: tuple[CertificateAuthority, dict[str, IssuedCertificate]]
    ) -> None:
        """A client that sends no name (an IP address) gets the default certificate."""
        ca, certs = names
        ip_cert = ca.issue("127.0.0.1", usage=Usage.SERVER)
        options = by_name(certs, unknown_names=UnknownNames.REJECT).replace(
            cert=ip_cert.certificate, key=ip_cert.private_key
        )
        _server, client = handshake(
            server_context(options),
            client_context(ca.client_options()),
            server_hostname="127.0.0.1",
        )
        assert client.error is None

    @pytest.mark.parametrize(
        ("mapping", "words"),
        [
            ({"API.example.test": None}, "lower-case"),
            ({"a.*.example.test": None}, "whole first label"),
            ({"*.": None}, "whole first label"),
            ({"api.example.test": "cert.pem"}, "securelink.Identity"),
        ],
    )
    def test_bad_mappings(self, mapping: object, words: str) -> None:
        """Malformed names and values are refused at construction."""
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(cert="c.pem", key="k.pem", certificates_by_name=mapping)  # type: ignore[arg-type]
        assert info.value.field == "certificates_by_name"
        assert words in info.value.message

    @pytest.mark.parametrize(
        ("value", "member"),
        [
            ("reject", "UnknownNames.REJECT"),
            ("default", "UnknownNames.DEFAULT"),
            ("ignore", "UnknownNames.DEFAULT or UnknownNames.REJECT"),
            (None, "UnknownNames.DEFAULT or UnknownNames.REJECT"),
        ],
    )
    def test_unknown_names_value(self, value: object, member: str) -> None:
        """unknown_names takes only an UnknownNames member; the 0.1 strings name their member."""
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(cert="c.pem", key="k.pem", unknown_names=value)  # type: ignore[arg-type]
        assert type(info.value) is ConfigurationError
        assert info.value.field == "unknown_names"
        assert "securelink.UnknownNames member" in info.value.message
        assert info.value.hint.startswith(f"Use {member}:")

    def test_unknown_names_default(self) -> None:
        """Left out, unknown_names is UnknownNames.DEFAULT, and that is what options show."""
        options = ServerOptions(cert="c.pem", key="k.pem")
        assert options.unknown_names is UnknownNames.DEFAULT
        assert "unknown_names=<UnknownNames.DEFAULT: 'default'>" in repr(options)


@pytest.fixture(scope="module")
def pki() -> tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]:
    """A CA, a server, and a client with a SPIFFE ID."""
    ca = CertificateAuthority()
    return (
        ca,
        ca.issue("localhost", usage=Usage.SERVER),
        ca.issue("spiffe://example.test/billing", usage=Usage.CLIENT),
    )


class TestAllowedPeers:
    """allowed_peers accepts only listed client identities, after verification."""

    @pytest.mark.parametrize(
        "patterns",
        [
            ("spiffe://example.test/billing",),
            ("spiffe://example.test/*",),
            ("x.test", "spiffe://*"),
        ],
    )
    def test_allowed(
        self,
        pki: tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate],
        patterns: tuple[str, ...],
    ) -> None:
        """An exact name or a matching pattern lets the client in."""
        _ca, server_cert, client_cert = pki
        sctx = server_context(
            server_cert.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, allowed_peers=patterns
            )
        )
        server, client = handshake(sctx, client_context(client_cert.client_options()))
        assert server.error is None and client.error is None

    def test_refused_on_both_sides(
        self, pki: tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]
    ) -> None:
        """A verified client that is not listed is refused; both ends say so clearly."""
        _ca, server_cert, client_cert = pki
        sctx = server_context(
            server_cert.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY,
                allowed_peers=("spiffe://example.test/frontend",),
            )
        )
        errors: list[BaseException] = []

        def exchange(port: int) -> None:
            with connect(
                "127.0.0.1", port, client_cert.client_options(), server_hostname="localhost",
                timeout=10,
            ) as tls:  # fmt: skip
                tls.sendall(b"ping")
                tls.recv(10)

        with serving(sctx, errors) as port, pytest.raises(CertificateRejectedError) as info:
            exchange(port)
        # TLS 1.3: the client learns it on its first read, as a rejection of its certificate.
        assert info.value.certificate is not None
        assert info.value.certificate.names == ("spiffe://example.test/billing",)
        first = errors[0]
        assert type(first) is ConnectionRejectedError
        assert first.hook == "allowed_peers"
        assert "allowed_peers rule rejected the client" in first.message
        assert "spiffe://example.test/billing matches none of the allowed peers" in first.message

    def test_needs_required_client_certificates(self) -> None:
        """allowed_peers without REQUIRE_AND_VERIFY is refused at construction."""
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(cert="c.pem", key="k.pem", allowed_peers=("a.test",))
        assert info.value.field == "allowed_peers"


class TestPins:
    """pin_public_keys accepts only servers with a pinned public key."""

    def test_hex_and_hpkp_pins(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A pin as hex or as sha256/base64 accepts the server."""
        digest = public_key_sha256(server_cert.certificate)
        hpkp = "sha256/" + base64.b64encode(bytes.fromhex(digest)).decode()
        for pin in (digest, digest.upper(), hpkp):
            options = ca.client_options(pin_public_keys=[pin, "00" * 32])
            assert options.pin_public_keys[0] == digest
            _server, client = handshake(
                server_context(server_cert.server_options()), client_context(options)
            )
            assert client.error is None

    def test_wrong_pin_rejects(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A server whose key is not pinned is refused after verification, with its digest."""
        options = ca.client_options(pin_public_keys=["11" * 32])
        _server, client = handshake(
            server_context(server_cert.server_options()), client_context(options)
        )
        assert type(client.error) is ConnectionRejectedError
        assert client.error.hook == "pin_public_keys"
        digest = public_key_sha256(server_cert.certificate)
        assert f"its public key (SHA-256 {digest}) is not one of the 1 pinned keys" in (
            client.error.message
        )

    @pytest.mark.parametrize("pin", ["abc", "sha256/!!!", "sha256/" + "A" * 10, "zz" * 32])
    def test_malformed_pins(self, pin: str) -> None:
        """A pin that is not a SHA-256 digest is refused at construction."""
        with pytest.raises(ConfigurationError) as info:
            ClientOptions(pin_public_keys=[pin])
        assert info.value.field == "pin_public_keys"


class TestProfiles:
    """Profile.MODERN makes the server TLS 1.3 only."""

    def test_modern_refuses_tls12(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A TLS 1.2-only client cannot talk to a MODERN server."""
        options = server_cert.server_options(profile=Profile.MODERN)
        assert options.min_version is ssl.TLSVersion.TLSv1_3
        sctx = server_context(options)
        assert sctx.minimum_version is ssl.TLSVersion.TLSv1_3
        _server, client = handshake(
            sctx, client_context(ca.client_options(max_version=ssl.TLSVersion.TLSv1_2))
        )
        assert type(client.error) is ProtocolMismatchError
        assert client.error.mismatch == "version"

    def test_intermediate_is_default(self, server_cert: IssuedCertificate) -> None:
        """The default profile is INTERMEDIATE: TLS 1.2 and 1.3."""
        options = server_cert.server_options()
        assert options.profile is Profile.INTERMEDIATE
        assert server_context(options).minimum_version is ssl.TLSVersion.TLSv1_2

    def test_modern_with_tls12_max(self) -> None:
        """MODERN with max_version TLS 1.2 is a contradiction."""
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(
                cert="c.pem",
                key="k.pem",
                profile=Profile.MODERN,
                max_version=ssl.TLSVersion.TLSv1_2,
            )
        assert info.value.field == "profile"
