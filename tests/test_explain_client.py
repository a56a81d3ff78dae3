"""A securelink client explains every failure it meets, through every blocking consumer.

Real handshakes on 127.0.0.1: each test starts the server it needs (a thread, or a bare stdlib
server context for certificates securelink refuses to serve) and ends it.  Each failure is
provoked through ``securelink.connect``, a context's own ``wrap_socket``, ``http.client`` and
``urllib`` where the name allows, and must come out as exactly one securelink class with its
facts as attributes and the original ``ssl`` exception as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

import securelink
from securelink import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateVerificationError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    HostnameMismatchError,
    NothingListeningError,
    NotTLSError,
    ProtocolMismatchError,
    ServerOptions,
    UnknownAuthorityError,
)

from . import pki
from .explain_peers import (
    DAY,
    HTTP_400,
    LOOPBACK,
    NOW,
    OPENSSL,
    TIMEOUT,
    TLS12,
    TLS13,
    Pki,
    assert_explained,
    build_pki,
    certificate,
    closed_port,
    cn,
    flawed_chain,
    open_sockets,
    plaintext_handler,
    reset_unless_certificate,
    serve,
    stdlib_server_context,
    summary,
    tls_handler,
    wrap_server_handler,
    write_identity,
)

requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is missing")

#: The consumers a failure is provoked through.
VIAS = ("connect", "wrap_socket", "http.client", "urllib")


@pytest.fixture(scope="module")
def xpki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The certificates of these tests, with the flawed ones as files."""
    return build_pki(tmp_path_factory.mktemp("explain-client"))


@pytest.fixture
def client(xpki: Pki) -> ssl.SSLContext:
    """A securelink client that trusts the test root, given as a file."""
    return securelink.client_context(ClientOptions(ca=xpki.ca_file))


def provoke(via: str, ctx: ssl.SSLContext, port: int, *, name: str = "localhost") -> BaseException:
    """Connect to 127.0.0.1:*port* through *via*; return what the caller catches.

    For urllib that is the ``URLError``'s reason (asserted to be wrapped as urllib does).
    """
    if via == "connect":
        with pytest.raises(securelink.SecureLinkError) as info:
            securelink.connect(LOOPBACK, port, ctx, server_hostname=name, timeout=TIMEOUT)
        return info.value
    if via == "wrap_socket":
        with (
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
            pytest.raises(securelink.SecureLinkError) as info,
        ):
            ctx.wrap_socket(raw, server_hostname=name)
        return info.value
    if via == "http.client":
        conn = http.client.HTTPSConnection(name, port, context=ctx, timeout=TIMEOUT)
        try:
            with pytest.raises(securelink.SecureLinkError) as info:
                conn.request("GET", "/")
        finally:
            conn.close()
        return info.value
    assert via == "urllib"
    # No proxy handler: the environment's proxies must not be used for loopback tests.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    with pytest.raises(urllib.error.URLError) as urlinfo:
        opener.open(f"https://{name}:{port}/", timeout=TIMEOUT)
    assert type(urlinfo.value) is urllib.error.URLError
    reason = urlinfo.value.reason
    assert isinstance(reason, BaseException)
    return reason


class TestUnknownAuthority:
    """A chain that does not reach a trusted CA names the untrusted issuer and what is trusted."""

    @pytest.mark.parametrize("via", VIAS)
    def test_chain_from_an_untrusted_ca(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Leaf and intermediate of a foreign CA: the root they lead to is named."""
        sctx = securelink.server_context(xpki.stranger_server.server_options())
        with serve(tls_handler(sctx)) as (port, _served):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        root = xpki.stranger.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "untrusted-root"
        assert e.issuer == root
        ours = xpki.ca.certificate.subject.rfc4514_string()
        assert e.trusted == f"{xpki.ca_file} with {ours}"
        assert e.certificate == summary(xpki.stranger_server.certificate)
        assert e.chain == (
            summary(xpki.stranger_server.certificate),
            summary(xpki.stranger_inter.certificate),
        )
        assert root in e.message
        assert str(xpki.ca_file) in e.message
        assert f"port {port}" in e.message

    def test_self_signed(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A self-signed server certificate is called that, with code 18."""
        with serve(tls_handler(stdlib_server_context(xpki.files["self-signed"]))) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 18
        assert e.kind == "self-signed"
        assert e.issuer == "CN=localhost"
        assert e.certificate == summary(xpki.files["self-signed"].leaf)
        assert e.certificate is not None and e.certificate.self_signed
        assert e.chain == (summary(xpki.files["self-signed"].leaf),)
        assert "self-signed" in e.message
        assert str(xpki.ca_file) in e.message
        assert "Do not turn verification off" in e.hint

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_untrusted_root_sent_in_the_chain(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A chain that includes its own (untrusted) root: code 19, the root named."""
        with serve(tls_handler(stdlib_server_context(xpki.files["root-sent"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        root = xpki.stranger.certificate.subject.rfc4514_string()
        assert e.verify_code == 19
        assert e.kind == "untrusted-root"
        assert e.issuer == root
        assert [c.subject for c in e.chain] == [
            xpki.stranger_server.certificate.subject.rfc4514_string(),
            xpki.stranger_inter.certificate.subject.rfc4514_string(),
            root,
        ]
        assert e.chain[-1].self_signed
        assert f"the root {root!r}" in e.message
        assert root in e.hint

    @pytest.mark.parametrize("via", VIAS)
    def test_incomplete_chain(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """A leaf with an AIA caIssuers URL sent without its intermediate: incomplete-chain."""
        with serve(tls_handler(stdlib_server_context(xpki.files["aia-leaf-only"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        inter = xpki.inter.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "incomplete-chain"
        assert e.issuer == inter
        assert e.chain == (summary(xpki.files["aia-leaf-only"].leaf),)
        assert f"not the intermediate {inter!r}" in e.message
        assert "full chain" in e.hint

    def test_leaf_alone_is_ambiguous(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A lone leaf without AIA may lack an intermediate or come from a foreign CA."""
        leaf = xpki.inter.issue("localhost")
        sctx = securelink.server_context(ServerOptions(cert=leaf.certificate, key=leaf.private_key))
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("wrap_socket", client, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        inter = xpki.inter.certificate.subject.rfc4514_string()
        assert e.verify_code == 20
        assert e.kind == "unknown-issuer"
        assert e.issuer == inter
        assert e.chain == (summary(leaf.certificate),)
        assert f"was issued by {inter!r}" in e.message
        assert f"If {inter!r} is your own CA, add its certificate to ca=" in e.hint
        assert "never one taken from this connection" in e.hint
        assert "trust it" not in e.hint
        assert "incomplete chain" in e.hint

    def test_leaf_straight_from_an_untrusted_root(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """A leaf issued by a foreign root names that root as the unknown issuer."""
        sctx = securelink.server_context(xpki.stranger_direct.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is UnknownAuthorityError
        assert e.kind == "unknown-issuer"
        assert e.issuer == xpki.stranger.certificate.subject.rfc4514_string()
        assert e.certificate == summary(xpki.stranger_direct.certificate)


class TestValidity:
    """Expired and not-yet-valid certificates name their dates and how far off they are."""

    @pytest.mark.parametrize("via", VIAS)
    def test_expired(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """An expired server certificate: when it expired, how long ago, who issued it."""
        files = xpki.files["expired"]
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateExpiredError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        not_after = files.leaf.not_valid_after_utc
        assert e.verify_code == 10
        assert e.not_after == not_after
        assert e.expired_for is not None
        assert 3 * DAY <= e.expired_for < 3 * DAY + datetime.timedelta(minutes=5)
        assert e.certificate == summary(files.leaf)
        assert [c.subject for c in e.chain] == [
            files.leaf.subject.rfc4514_string(),
            xpki.inter.certificate.subject.rfc4514_string(),
        ]
        assert f"{not_after:%Y-%m-%d %H:%M:%S} UTC" in e.message
        assert "3 days ago" in e.message
        assert xpki.inter.certificate.subject.rfc4514_string() in e.message
        assert "renew" in e.hint

    @pytest.mark.parametrize("via", ["connect", "urllib"])
    def test_not_yet_valid(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """A certificate valid only from next week: its start date, and check the clock."""
        files = xpki.files["future"]
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateNotYetValidError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        not_before = files.leaf.not_valid_before_utc
        assert e.verify_code == 9
        assert e.not_before == not_before
        assert e.valid_in is not None
        assert 5 * DAY - datetime.timedelta(minutes=5) < e.valid_in <= 5 * DAY
        assert e.certificate == summary(files.leaf)
        assert f"{not_before:%Y-%m-%d %H:%M:%S} UTC" in e.message
        # Whole days rounded down (securelink._x509.duration): just under five days is "4 days".
        assert "4 days from now" in e.message
        assert "clock" in e.hint


class TestNames:
    """A certificate for other names says which names it holds and which was asked for."""

    @pytest.mark.parametrize("via", ["connect", "wrap_socket"])
    def test_hostname_mismatch(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Asking for api.example.test of a localhost certificate: code 62, both sides named."""
        sctx = securelink.server_context(xpki.server.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port, name="api.example.test")
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="api.example.test",
            port=port,
        )
        assert e.verify_code == 62
        assert e.expected == "api.example.test"
        assert e.presented == ("localhost", "127.0.0.1")
        assert e.common_name is None
        assert e.certificate == summary(xpki.server.certificate)
        assert "is valid for localhost, 127.0.0.1, not 'api.example.test'" in e.message
        assert "'api.example.test' as a SubjectAltName" in e.hint

    @pytest.mark.parametrize("via", VIAS)
    def test_ip_mismatch(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """Asking for 127.0.0.1 of a certificate that names only localhost: code 64."""
        sctx = securelink.server_context(xpki.dns_only.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port, name=LOOPBACK)
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname=LOOPBACK,
            port=port,
        )
        assert e.verify_code == 64
        assert e.expected == LOOPBACK
        assert e.presented == ("localhost",)
        assert "is valid for localhost, not '127.0.0.1'" in e.message
        assert "IP SubjectAltName" in e.hint

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_common_name_only(self, xpki: Pki, client: ssl.SSLContext, via: str) -> None:
        """CN=localhost without SAN: Common Names are not checked, and the message says why."""
        with serve(tls_handler(stdlib_server_context(xpki.files["cn-only"]))) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is HostnameMismatchError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 62
        assert e.expected == "localhost"
        assert e.presented == ()
        assert e.common_name == "localhost"
        assert "only the Common Name 'localhost'" in e.message
        assert "Common Names are not checked" in e.message
        assert "RFC 6125" in e.message
        assert "SubjectAltName" in e.hint


class TestPurpose:
    """A certificate not meant for servers fails with its own explanation (code 26)."""

    @pytest.mark.parametrize("via", ["connect", "urllib"])
    def test_client_only_certificate_served(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A clientAuth-only certificate on a server: CertificateVerificationError itself."""
        sctx = securelink.server_context(xpki.wrong_eku.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is CertificateVerificationError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.verify_code == 26
        assert e.verify_message == "unsuitable certificate purpose"
        assert e.certificate == summary(xpki.wrong_eku.certificate)
        assert "extended key usage" in e.message
        assert "serverAuth" in e.hint


#: Flawed chains: (flaw, verify_code, verify_message, what the message says of the culprit).
CHAIN_FAULTS = [
    ("inter-ca-false", 79, "invalid CA certificate",
     "is not a valid CA certificate (its basicConstraints extension says CA:FALSE), yet it"
     " issued the certificate below it"),
    ("inter-no-basic-constraints", 79, "invalid CA certificate",
     "is not a valid CA certificate (it has no basicConstraints extension)"),
    ("inter-no-cert-sign", 79, "invalid CA certificate",
     "is not a valid CA certificate (its keyUsage does not include keyCertSign)"),
    ("inter-bc-not-critical", 89, "Basic Constraints of CA cert not marked critical",
     "has a basicConstraints extension not marked critical"),
    ("inter-no-key-usage", 92, "CA cert does not include key usage extension",
     "has no keyUsage extension"),
    ("inter-path-length-no-key-usage", 81, "Path length given without key usage keyCertSign",
     "sets a path length (basicConstraints pathLenConstraint) without keyUsage keyCertSign"
     " (it has no keyUsage extension at all)"),
    ("inter-no-ski", 86, "Missing Subject Key Identifier",
     "has no Subject Key Identifier extension"),
    ("inter-no-aki", 85, "Missing Authority Key Identifier",
     "has no Authority Key Identifier extension"),
    ("leaf-no-aki", 85, "Missing Authority Key Identifier",
     "has no Authority Key Identifier extension"),
    ("inter-rsa-1024", 67, "CA certificate key too weak",
     "has a key too small for OpenSSL's security level (RSA, 1024 bits)"),
    ("leaf-rsa-1024", 66, "EE certificate key too weak",
     "has a key too small for OpenSSL's security level (RSA, 1024 bits)"),
    ("path-length-exceeded", 25, "path length constraint exceeded",
     "(its path length constraint is 0, and 1 intermediate CA follows it)"),
    ("inter-eku-client-only", 26, "unsuitable certificate purpose",
     "is not allowed for this purpose (its extended key usage does not include serverAuth"),
    ("leaf-unknown-critical", 34, "unhandled critical extension",
     "has an extension marked critical that OpenSSL does not handle (1.3.6.1.4.1.55555.1)"),
    ("leaf-aki-critical", 34, "unhandled critical extension",
     "has an extension marked critical that OpenSSL does not handle (authorityKeyIdentifier)"),
    ("leaf-cert-sign", 82, "Key usage keyCertSign invalid for non-CA cert",
     "is not a CA, yet its keyUsage includes keyCertSign"),
    ("inter-empty-subject", 83, "Issuer name empty",
     "has an empty issuer name (the CA that issued it has an empty subject)"),
    ("leaf-empty-san", 87, "Empty Subject Alternative Name extension",
     "has a SubjectAltName extension with no names in it"),
    ("leaf-empty-subject", 88, "Subject empty and Subject Alt Name extension not critical",
     "has an empty subject and a SubjectAltName not marked critical"),
    ("leaf-bad-signature", 7, "certificate signature failure",
     "has a signature that does not verify"),
]  # fmt: skip


class TestChainFaults:
    """Every other verification code: its OpenSSL 3 meaning, and the certificate at fault named.

    A problem in a CA certificate names that CA (message, hint and ``certificate``), not the
    leaf; one in the leaf says "it".
    """

    @pytest.mark.parametrize(
        ("flaw", "code", "verify_message", "said"), CHAIN_FAULTS, ids=[c[0] for c in CHAIN_FAULTS]
    )
    def test_flawed_chain(
        self,
        xpki: Pki,
        client: ssl.SSLContext,
        tmp_path: Path,
        flaw: str,
        code: int,
        verify_message: str,
        said: str,
    ) -> None:
        """The code OpenSSL reports, what it means, and which certificate is to blame."""
        bad = flawed_chain(tmp_path, xpki.ca, flaw)
        sctx = stdlib_server_context(bad.files, weak_keys=True)
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is CertificateVerificationError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert (e.verify_code, e.verify_message) == (code, verify_message)
        assert e.certificate == summary(bad.culprit)
        assert e.chain == tuple(summary(c) for c in bad.chain)
        assert said in e.message
        assert "OpenSSL reported verification error" not in e.message
        prefix = f"The server certificate of the server 'localhost' port {port} ("
        assert e.message.startswith(prefix)
        if bad.culprit is bad.chain[0]:
            assert f"failed verification: it {said.split(' (')[0]}" in e.message
        else:
            ca = bad.culprit.subject.rfc4514_string()
            not_ca = flaw in ("inter-ca-false", "inter-no-basic-constraints")
            kind = "certificate" if not_ca else "CA certificate"
            assert f"failed verification: the {kind} {ca!r} in its chain (sent by the server)" in (
                e.message
            )
            assert f"the {kind} {ca!r}" in e.hint or code == 79
            assert "the certificate for localhost" in e.message  # the leaf, for context
        # The reviewer's report: an invalid CA was explained as "not marked critical".
        if code == 79:
            assert "critical" not in e.message

    def test_trusted_root_at_fault(self, client: ssl.SSLContext, tmp_path: Path) -> None:
        """A trusted root that fails strict mode: named as one of this end's trusted CAs."""
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = certificate(cn("no-SKI root"), cn("no-SKI root"), root_key, root_key, ca=True,
                           aki=False, ski=False)  # fmt: skip
        root_file = tmp_path / "no-ski-root.pem"
        root_file.write_bytes(pki.pem(root))
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = certificate(cn("good intermediate"), root.subject, inter_key, root_key, ca=True,
                            path_length=0)  # fmt: skip
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = certificate(cn("localhost"), inter.subject, leaf_key, inter_key, ca=False,
                           key_usage="leaf", names=("localhost",))  # fmt: skip
        files = write_identity(tmp_path, "below-no-ski-root", (leaf, inter), leaf_key)
        strict = securelink.client_context(ClientOptions(ca=root_file))
        with serve(tls_handler(stdlib_server_context(files))) as (port, _):
            e = provoke("connect", strict, port)
        assert type(e) is CertificateVerificationError
        assert e.verify_code == 86
        assert e.certificate == summary(root)
        assert (
            "the CA certificate 'CN=no-SKI root' in its chain (one of the CAs this end trusts) has"
            " no Subject Key Identifier extension" in e.message
        )
        assert e.hint == "Reissue the CA certificate 'CN=no-SKI root' with a subjectKeyIdentifier."

    def test_client_chain_with_an_invalid_ca(self, xpki: Pki, tmp_path: Path) -> None:
        """On the server, a client chain through a non-CA names that certificate."""
        bad = flawed_chain(
            tmp_path, xpki.ca, "inter-ca-false", usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            name="client.test",
        )  # fmt: skip
        sctx = securelink.server_context(
            xpki.server.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=xpki.ca.certificate
            )
        )
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.load_verify_locations(xpki.ca_file)
        bare.load_cert_chain(bad.files.cert, bad.files.key)
        with serve(tls_handler(sctx)) as (port, served):
            with (
                contextlib.suppress(OSError),
                socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
                bare.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                tls.sendall(b"ping")
                tls.recv(1024)
            e = served.first_error()
        assert type(e) is CertificateVerificationError
        assert_explained(e, cause=ssl.SSLCertVerificationError, side="local", role="server")
        assert e.verify_code == 79
        assert e.certificate == summary(bad.culprit)
        inter = bad.culprit.subject.rfc4514_string()
        assert e.message.startswith("The client certificate of the client 127.0.0.1 port ")
        # The server keeps the chain it built, but not what the client sent: no "sent by".
        assert f"failed verification: the certificate {inter!r} in its chain is not a valid CA" in (
            e.message
        )

    @requires_openssl
    def test_sha1_intermediate(self, xpki: Pki, client: ssl.SSLContext, tmp_path: Path) -> None:
        """An intermediate signed with SHA-1 (code 68) is named, not the leaf below it."""
        inter_key = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "root.pem").write_bytes(xpki.ca.cert_pem)
        (tmp_path / "root.key").write_bytes(pki.key_pem(xpki.ca.private_key))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(cn("SHA-1 intermediate"))
            .sign(inter_key, hashes.SHA256())
        )
        (tmp_path / "inter.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "inter.ext").write_text(
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        )
        subprocess.run(
            [str(OPENSSL), "x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey",
             "root.key", "-set_serial", "7", "-sha1", "-days", "30", "-extfile", "inter.ext",
             "-out", "inter.pem"],
            cwd=tmp_path, check=True, capture_output=True, timeout=TIMEOUT,
        )  # fmt: skip
        inter = x509.load_pem_x509_certificate((tmp_path / "inter.pem").read_bytes())
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = certificate(cn("localhost"), inter.subject, leaf_key, inter_key, ca=False,
                           key_usage="leaf", names=("localhost",))  # fmt: skip
        files = write_identity(tmp_path, "below-sha1", (leaf, inter), leaf_key)
        with serve(tls_handler(stdlib_server_context(files, weak_keys=True))) as (port, _):
            e = provoke("connect", client, port)
        assert type(e) is CertificateVerificationError
        assert (e.verify_code, e.verify_message) == (68, "CA signature digest algorithm too weak")
        assert e.certificate == summary(inter)
        assert (
            "the CA certificate 'CN=SHA-1 intermediate' in its chain (sent by the server) is"
            " signed with a digest too weak for OpenSSL's security level (SHA-1)" in e.message
        )
        assert "SHA-256" in e.hint

    @pytest.mark.parametrize("revoked", [False, True], ids=["no-crl", "revoked"])
    def test_crl_checks(self, xpki: Pki, tmp_path: Path, revoked: bool) -> None:
        """With CRL checking turned on: no CRL loaded (3), or the leaf revoked (23)."""
        leaf = xpki.server.certificate
        ctx = securelink.client_context(ClientOptions(ca=xpki.ca_file), shared=False)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        if revoked:
            crl = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(xpki.inter.certificate.subject)
                .last_update(NOW - DAY)
                .next_update(NOW + DAY)
                .add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(leaf.serial_number)
                    .revocation_date(NOW - DAY)
                    .build()
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        xpki.inter.private_key.public_key()
                    ),
                    critical=False,
                )
                .add_extension(x509.CRLNumber(1), critical=False)
                .sign(xpki.inter.private_key, hashes.SHA256())
            )
            (tmp_path / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
            ctx.load_verify_locations(cafile=tmp_path / "crl.pem")
        sctx = securelink.server_context(xpki.server.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("connect", ctx, port)
        assert type(e) is CertificateVerificationError
        assert e.certificate == summary(leaf)
        if revoked:
            assert (e.verify_code, e.verify_message) == (23, "certificate revoked")
            assert "failed verification: it has been revoked" in e.message
        else:
            assert (e.verify_code, e.verify_message) == (3, "unable to get certificate CRL")
            assert "could not be checked for revocation" in e.message
            assert "CRL" in e.hint

    @pytest.mark.parametrize("how", ["securelink-context", "stdlib-context"])
    def test_trusted_intermediate_without_partial_chain(
        self, xpki: Pki, tmp_path: Path, how: str
    ) -> None:
        """Code 2: only the intermediate is trusted, and partial chains are not accepted."""
        inter_file = tmp_path / "inter.pem"
        inter_file.write_bytes(pki.pem(xpki.inter.certificate))
        if how == "securelink-context":
            ctx = securelink.client_context(ClientOptions(ca=inter_file), shared=False)
        else:
            ctx = ssl.create_default_context(cafile=str(inter_file))
        ctx.verify_flags &= ~ssl.VERIFY_X509_PARTIAL_CHAIN
        sctx = securelink.server_context(xpki.server.server_options())
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke("connect", ctx, port)
        assert type(e) is UnknownAuthorityError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert (e.verify_code, e.verify_message) == (2, "unable to get issuer certificate")
        assert e.kind == "untrusted-root"
        assert "does not accept an intermediate CA as a trust anchor on its own" in e.message
        assert "(VERIFY_X509_PARTIAL_CHAIN is off)" in e.message
        assert "VERIFY_X509_PARTIAL_CHAIN" in e.hint
        root = xpki.ca.certificate.subject.rfc4514_string()
        if how == "securelink-context":
            inter = xpki.inter.certificate.subject.rfc4514_string()
            assert e.issuer == root
            assert f"reaches the CA {inter!r}, which this end trusts" in e.message
            assert f"the CA's issuer {root!r} is not among the trusted CAs." in e.message
        else:  # explained from outside: the chain is not known, so neither is the issuer
            assert e.issuer == ""
            assert e.certificate is None
            assert "''" not in str(e)
            assert "reaches a CA that this end trusts (1 CA certificate loaded into the" in (
                e.message
            )


class TestNotTLS:
    """A plaintext server on the port is named as such, whichever consumer connects."""

    @pytest.mark.parametrize("via", VIAS)
    def test_plaintext_http_server(self, client: ssl.SSLContext, via: str) -> None:
        """An HTTP server answering the ClientHello with '400 Bad Request'."""
        with serve(plaintext_handler(HTTP_400)) as (port, served):
            e = provoke(via, client, port)
            served.wait_idle()
        assert type(e) is NotTLSError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "WRONG_VERSION_NUMBER"
        assert served.received[0].startswith(b"\x16\x03")  # it did get our ClientHello
        assert "did not answer in TLS" in e.message
        assert "plaintext HTTP server" in e.message
        assert "http://" in e.hint


class TestPlaintextClient:
    """A plaintext client on our TLS port: the server names it, from its own side."""

    @pytest.mark.parametrize("handler", ["wrap_socket", "wrap_server"])
    def test_http_request(self, xpki: Pki, handler: str) -> None:
        """An HTTP request where a ClientHello belongs: NotTLSError, side local, role server."""
        sctx = securelink.server_context(xpki.server.server_options())
        handle = tls_handler(sctx) if handler == "wrap_socket" else wrap_server_handler(sctx)
        with serve(handle) as (port, served):
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as plain:
                plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                client_port = plain.getsockname()[1]
                with contextlib.suppress(ConnectionResetError):
                    assert plain.recv(1024) == b""  # no answer in plaintext, only the close
            e = served.first_error()
        assert type(e) is NotTLSError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server", port=client_port)
        assert e.reason == "HTTP_REQUEST"
        assert e.server_hostname is None
        assert f"The client {LOOPBACK} port {client_port} sent a plaintext HTTP request" in (
            e.message
        )
        assert "https://" in e.hint


class TestNothingListening:
    """A closed port is reported before any TLS, and old except clauses still catch it."""

    def test_closed_port(self, client: ssl.SSLContext) -> None:
        """securelink.connect to a port nobody listens on names host and port."""
        port = closed_port()
        with pytest.raises(NothingListeningError) as info:
            securelink.connect(LOOPBACK, port, client, timeout=TIMEOUT)
        e = info.value
        assert type(e) is NothingListeningError
        assert_explained(e, cause=ConnectionRefusedError)
        assert (e.host, e.port) == (LOOPBACK, port)
        assert isinstance(e, ConnectionRefusedError)
        assert e.errno == 111
        assert f"{LOOPBACK} port {port}" in e.message
        assert "running" in e.hint

    def test_caught_as_connection_refused(self, client: ssl.SSLContext) -> None:
        """`except ConnectionRefusedError` written for the stdlib still catches it."""
        with pytest.raises(ConnectionRefusedError) as info:
            securelink.connect(LOOPBACK, closed_port(), client, timeout=TIMEOUT)
        assert type(info.value) is NothingListeningError


class TestProtocolMismatch:
    """No common version or cipher suite: each end says what it allows, and which mismatch."""

    @pytest.mark.parametrize(
        ("client_versions", "server_versions", "allowed", "server_allowed"),
        [
            ((TLS13, None), (None, TLS12), ("TLSv1.3",), ("TLSv1.2",)),
            ((None, TLS12), (TLS13, None), ("TLSv1.2",), ("TLSv1.3",)),
        ],
        ids=["client-1.3-only", "server-1.3-only"],
    )
    def test_no_common_version(
        self,
        xpki: Pki,
        client_versions: tuple[ssl.TLSVersion | None, ssl.TLSVersion | None],
        server_versions: tuple[ssl.TLSVersion | None, ssl.TLSVersion | None],
        allowed: tuple[str, ...],
        server_allowed: tuple[str, ...],
    ) -> None:
        """Both ends of a version mismatch explain it, each from its own side."""
        cmin, cmax = client_versions
        smin, smax = server_versions
        cctx = securelink.client_context(
            ClientOptions(ca=xpki.ca_file, min_version=cmin or TLS12, max_version=cmax)
        )
        sctx = securelink.server_context(
            xpki.server.server_options(min_version=smin or TLS12, max_version=smax)
        )
        with serve(tls_handler(sctx)) as (port, served):
            e = provoke("connect", cctx, port)
            server_error = served.first_error()
        assert type(e) is ProtocolMismatchError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert e.mismatch == "version"
        assert e.local_versions == allowed
        assert f"this end allows only {allowed[0]}; the peer refused it)." in e.message
        assert (e.peer_version, e.peer_cipher) == (None, None)  # the alert says it all
        assert type(server_error) is ProtocolMismatchError
        assert_explained(server_error, cause=ssl.SSLError, side="local", role="server")
        assert server_error.reason == "UNSUPPORTED_PROTOCOL"
        assert server_error.mismatch == "version"
        assert server_error.local_versions == server_allowed
        assert server_error.peer is not None and server_error.peer[0] == LOOPBACK
        assert f"this end allows only {server_allowed[0]}; the peer did not offer it)." in (
            server_error.message
        )

    @pytest.mark.parametrize("via", ["connect", "http.client"])
    def test_server_offers_only_a_cbc_suite(
        self, xpki: Pki, client: ssl.SSLContext, via: str
    ) -> None:
        """A TLS 1.2 server that allows only a CBC suite: mismatch 'cipher', its suite named."""
        sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)
        sctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        with serve(tls_handler(sctx)) as (port, _):
            e = provoke(via, client, port)
        assert type(e) is ProtocolMismatchError
        assert_explained(
            e,
            cause=ssl.SSLError,
            side="peer",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        assert e.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        assert e.mismatch == "cipher"
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert "no cipher suite in common" in e.message
        assert "ECDHE-ECDSA-AES128-SHA (TLSv1.2)" in e.message
        assert "AEAD" in e.hint
        # What the diagnostic handshake learned is kept as facts, too.
        assert (e.peer_version, e.peer_cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA")

    def test_client_offers_only_a_cbc_suite(self, xpki: Pki) -> None:
        """The server's side of the same mismatch: NO_SHARED_CIPHER, this end local."""
        sctx = securelink.server_context(xpki.server.server_options())
        legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        legacy.load_verify_locations(xpki.ca_file)
        legacy.maximum_version = TLS12
        legacy.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        with serve(tls_handler(sctx)) as (port, served):
            with (
                socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw,
                pytest.raises(ssl.SSLError),
            ):
                legacy.wrap_socket(raw, server_hostname="localhost")
            e = served.first_error()
        assert type(e) is ProtocolMismatchError
        assert_explained(e, cause=ssl.SSLError, side="local", role="server")
        assert e.reason == "NO_SHARED_CIPHER"
        assert e.mismatch == "cipher"
        assert e.local_versions == ("TLSv1.2", "TLSv1.3")
        assert "no cipher suite" in e.message
        assert "AEAD" in e.hint


class TestHelpers:
    """connect() and wrap_client() finish the handshake and never leave a socket open."""

    def test_connect_success(self, xpki: Pki, client: ssl.SSLContext) -> None:
        """The control: connect() returns a socket whose handshake is done."""
        sctx = securelink.server_context(xpki.server.server_options())
        with (
            serve(tls_handler(sctx)) as (port, served),
            securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert served.received == [b"ping"]

    @pytest.mark.parametrize("helper", ["connect", "wrap_client"])
    def test_failed_handshake_closes_every_socket(
        self, xpki: Pki, client: ssl.SSLContext, helper: str
    ) -> None:
        """After a failed handshake no socket of this process is left open, on either end."""
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, served):
            before = open_sockets()
            if helper == "connect":
                with pytest.raises(CertificateExpiredError) as info:
                    securelink.connect(LOOPBACK, port, client, server_hostname="localhost")
            else:
                raw = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
                with pytest.raises(CertificateExpiredError) as info:
                    securelink.wrap_client(raw, client, server_hostname="localhost")
                assert raw.fileno() == -1
            served.wait_idle()
            # The exception (and its traceback's frames) is still alive: nothing was left to
            # the garbage collector.
            assert info.value.peer == (LOOPBACK, port)
            assert open_sockets() <= before

    @pytest.mark.parametrize("case", ["cipher-diagnosis", "reset-diagnosis", "wrap_server"])
    def test_diagnosis_and_server_close_their_sockets(self, xpki: Pki, case: str) -> None:
        """Diagnostic handshakes, and a server whose handshake failed, leave no socket open."""
        client = securelink.client_context(ClientOptions(ca=xpki.ca_file))
        if case == "cipher-diagnosis":
            sctx = stdlib_server_context(xpki.files["server"], max_version=TLS12)
            sctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
            handler = tls_handler(sctx)
        elif case == "reset-diagnosis":
            sctx = securelink.server_context(
                xpki.server.server_options(
                    client_auth=ClientAuth.VERIFY_IF_GIVEN, client_ca=xpki.ca.certificate
                )
            )
            handler = reset_unless_certificate(sctx)
        else:
            handler = wrap_server_handler(securelink.server_context(xpki.server.server_options()))
        with serve(handler) as (port, served):
            before = open_sockets()
            if case == "wrap_server":
                with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as plain:
                    plain.sendall(b"GET / HTTP/1.1\r\n\r\n")
                    with contextlib.suppress(ConnectionResetError):  # unread data: a reset
                        plain.recv(1024)
                assert type(served.first_error()) is NotTLSError
            else:
                with (  # noqa: PT012 - the handshake, the write or the read may fail
                    pytest.raises(securelink.HandshakeError) as info,
                    securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as tls,
                ):
                    tls.sendall(b"ping")
                    tls.recv(1024)
                assert served.accepted == 2  # the diagnostic handshake happened
                assert type(info.value) in (ProtocolMismatchError, ClientCertificateRequiredError)
            served.wait_idle()
            assert open_sockets() <= before

    def test_stdlib_context_through_connect(self, xpki: Pki) -> None:
        """connect() explains failures of a context securelink did not build, too."""
        plain = ssl.create_default_context(cafile=str(xpki.ca_file))
        with serve(tls_handler(stdlib_server_context(xpki.files["expired"]))) as (port, _):
            e = provoke("connect", plain, port)
        assert type(e) is CertificateExpiredError
        assert_explained(
            e,
            cause=ssl.SSLCertVerificationError,
            side="local",
            role="client",
            server_hostname="localhost",
            port=port,
        )
        # Without securelink's socket class the certificate is out of reach: no dates.
        assert e.not_after is None
        assert "expired" in e.message
