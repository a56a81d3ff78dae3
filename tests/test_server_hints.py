"""A server that refuses a client's certificate tells its operator what the client needs.

The client-side advice about an unknown CA ("if it is your own CA, add it to ca=") would open the
door on a server: there the refused party is the client, and the fix belongs to it.
"""

from __future__ import annotations

import ssl

import pytest

import securelink
from securelink import ClientAuth, UnknownAuthorityError
from securelink.devca import CertificateAuthority, IssuedCertificate

from .helpers import handshake


def _self_signed_leaf(name: str) -> IssuedCertificate:
    """A self-signed leaf (not a CA), as `openssl req -x509` makes them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(cert, key, (), cert)


@pytest.fixture(scope="module")
def rogue_ca() -> CertificateAuthority:
    """A CA that the server does not trust for its clients."""
    return CertificateAuthority(common_name="Rogue CA")


def _refused(
    server_cert: IssuedCertificate,
    ca: CertificateAuthority,
    client: IssuedCertificate,
    max_version: ssl.TLSVersion | None = None,
) -> UnknownAuthorityError:
    """Run a real mTLS handshake whose client certificate the server refuses; return its error."""
    server_ctx = securelink.server_context(
        server_cert.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=ca.root, max_version=max_version
        )
    )
    client_ctx = securelink.client_context(client.client_options(ca=ca.root))
    server, _client = handshake(server_ctx, client_ctx)
    assert type(server.error) is UnknownAuthorityError
    return server.error


@pytest.mark.parametrize("tls13", [True, False], ids=["TLSv1.3", "TLSv1.2"])
def test_client_from_another_ca(
    server_cert: IssuedCertificate,
    ca: CertificateAuthority,
    rogue_ca: CertificateAuthority,
    tls13: bool,
) -> None:
    """The refusing server says the client needs a certificate from a CA in client_ca."""
    client = rogue_ca.issue("client.test")
    e = _refused(server_cert, ca, client, None if tls13 else ssl.TLSVersion.TLSv1_2)
    assert (e.role, e.side, e.kind) == ("server", "local", "unknown-issuer")
    assert e.issuer == rogue_ca.root.subject.rfc4514_string()
    assert "CN=Rogue CA" in e.issuer
    assert e.hint.startswith(
        f"The client's certificate comes from a CA this server does not trust ({e.issuer!r})."
    )
    assert "needs a certificate issued by a CA in this server's client_ca" in e.hint
    assert "trust it" not in e.hint and "trust that" not in e.hint.lower()
    assert "ca= on a client" not in e.hint


def test_self_signed_client(server_cert: IssuedCertificate, ca: CertificateAuthority) -> None:
    """A self-signed client certificate gets the same advice, saying that it vouches for itself."""
    client = _self_signed_leaf("client.test")
    e = _refused(server_cert, ca, client)
    assert e.kind == "self-signed"
    assert e.hint.startswith("The client's certificate is self-signed")
    assert "a CA in this server's client_ca" in e.hint
    assert "trust" not in e.hint.replace("does not trust", "").replace("server trusts", "")


def test_client_side_hint_unchanged(
    server_cert: IssuedCertificate, rogue_ca: CertificateAuthority
) -> None:
    """A client that does not trust the server's CA keeps the advice about its own CA."""
    server_ctx = securelink.server_context(server_cert.server_options())
    client_ctx = securelink.client_context(rogue_ca.client_options())
    _server, client = handshake(server_ctx, client_ctx)
    e = client.error
    assert type(e) is UnknownAuthorityError
    assert e.role == "client"
    assert e.kind == "unknown-issuer"
    assert e.hint.startswith(f"If {e.issuer!r} is your own CA, add its certificate to ca= (a copy")
    assert "client_ca" not in e.hint
