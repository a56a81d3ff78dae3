"""Who is on the other end: :func:`peer_identity` and :class:`PeerIdentity`.

A handshake that verifies proves only that the peer's certificate chains to a trusted CA.  A
server that requires client certificates usually needs more: *which* client connected (its SPIFFE
ID, its DNS name), to authorise it or to log it.  :func:`peer_identity` reads that from a finished
connection (a blocking ``ssl.SSLSocket``, an ``ssl.SSLObject``, or an asyncio stream or transport)
as a typed, frozen value, from the verified chain only.
"""

from __future__ import annotations

import ssl

from ._frozen import Frozen
from ._hooks import peer_chain_der
from ._x509 import certificate_sha256, public_key_sha256, unreadable_fields
from .errors import IdentityUnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import datetime
    import ipaddress
    from collections.abc import Iterable
    from typing import Any

    from cryptography import x509

    from .errors import IdentityProblem

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["IdentityUnavailableError", "PeerIdentity", "peer_identity"]


class PeerIdentity(Frozen):
    """The identity the peer proved in the handshake: its verified certificate, typed.

    Build one with :func:`peer_identity` from a connection, or with :meth:`from_chain` from
    certificates (to test an authorisation function without a connection).

    Every name comes from the leaf certificate's SubjectAltName, which is what verification
    checks; the subject and its Common Name are informational.  Compare identities by
    ``spiffe_id``, a SAN, or ``public_key_sha256``, never by the subject alone: any CA you trust
    can issue a certificate with any subject.

    Attributes:
        dns_names: The leaf's DNS SubjectAltNames, as written (``"*.example.test"`` included).
        ip_addresses: Its IP address SANs, as :mod:`ipaddress` objects: compare them with
            ``ipaddress.ip_address("10.0.0.7")``, not with a string.
        uris: Its URI SANs (SPIFFE IDs among them), as written.
        spiffe_id: The first URI SAN whose scheme is ``spiffe`` (a SPIFFE X.509-SVID has
            exactly one), or ``None``.
        subject: The leaf's subject, in RFC 4514 form (``"CN=api,O=Example"``).
        issuer: The leaf's issuer, in RFC 4514 form.
        common_name: The subject's Common Name, if any (informational: never matched).
        sha256: The SHA-256 fingerprint of the leaf's DER encoding, colon-separated upper-case
            hex, as :attr:`CertificateSummary.sha256 <securelink.CertificateSummary>` and
            ``openssl x509 -fingerprint -sha256`` show it.
        public_key_sha256: The SHA-256 of the leaf's SubjectPublicKeyInfo as lower-case hex,
            the form :attr:`ClientOptions.pin_public_keys <securelink.ClientOptions>` stores,
            so ``identity.public_key_sha256 in options.pin_public_keys`` works.  It survives
            certificate renewals that keep the key.
        not_before: Start of the leaf's validity (timezone-aware UTC).
        not_after: End of the leaf's validity (timezone-aware UTC).
        chain: The verified chain as ``cryptography`` certificates, leaf first, up to the
            trust anchor.  On a resumed TLS session only the leaf is known (OpenSSL keeps no
            verified chain in a session: the chain was verified by the handshake that created
            it), so the chain is then the leaf alone.

    .. versionadded:: 0.2.0
    """

    __slots__ = (
        "chain",
        "common_name",
        "dns_names",
        "ip_addresses",
        "issuer",
        "not_after",
        "not_before",
        "public_key_sha256",
        "sha256",
        "spiffe_id",
        "subject",
        "uris",
    )
    _fields = (
        "dns_names",
        "ip_addresses",
        "uris",
        "spiffe_id",
        "subject",
        "issuer",
        "common_name",
        "sha256",
        "public_key_sha256",
        "not_before",
        "not_after",
        "chain",
    )
    # Certificates are bulky in a repr; the fields above already say which ones they are.
    _hidden = frozenset({"chain"})

    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    uris: tuple[str, ...]
    spiffe_id: str | None
    subject: str
    issuer: str
    common_name: str | None
    sha256: str
    public_key_sha256: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    chain: tuple[x509.Certificate, ...]

    def __init__(
        self,
        *,
        dns_names: Iterable[str],
        ip_addresses: Iterable[IPAddress],
        uris: Iterable[str],
        spiffe_id: str | None,
        subject: str,
        issuer: str,
        common_name: str | None,
        sha256: str,
        public_key_sha256: str,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        chain: Iterable[x509.Certificate],
    ) -> None:
        chain = tuple(chain)
        if not chain:
            raise ValueError("a PeerIdentity needs at least the leaf certificate in chain")
        self._set("dns_names", tuple(dns_names))
        self._set("ip_addresses", tuple(ip_addresses))
        self._set("uris", tuple(uris))
        self._set("spiffe_id", spiffe_id)
        self._set("subject", subject)
        self._set("issuer", issuer)
        self._set("common_name", common_name)
        self._set("sha256", sha256)
        self._set("public_key_sha256", public_key_sha256)
        self._set("not_before", not_before)
        self._set("not_after", not_after)
        self._set("chain", chain)

    @classmethod
    def from_chain(cls, chain: Iterable[x509.Certificate | bytes]) -> PeerIdentity:
        """Describe the leaf of *chain* (``cryptography`` certificates or DER, leaf first).

        Nothing is verified here: use it for certificates that were verified elsewhere, or to
        test code that takes a :class:`PeerIdentity`.

        Raises:
            ValueError: *chain* is empty, an item is not a DER certificate, or a field of the
                leaf cannot be read (cryptography parses fields on first use, so a certificate
                that loads can still have a name, an extension or a key it cannot read).
        """
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        try:
            certs = tuple(
                x509.load_der_x509_certificate(c) if isinstance(c, bytes) else c for c in chain
            )
        except x509.InvalidVersion as exc:  # not a ValueError
            raise ValueError(f"not an X.509 certificate: {exc}") from exc
        if not certs:
            raise ValueError("from_chain() needs at least the leaf certificate")
        leaf = certs[0]
        bad = unreadable_fields(leaf)
        if bad:
            # Names that cannot all be read must not pass for no names: refuse, not guess.
            _, words, error = bad[0]
            raise ValueError(f"the leaf certificate's {words} cannot be read: {error}") from error
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            dns: list[str] = []
            ips: list[IPAddress] = []
            uris: list[str] = []
        else:
            dns = san.get_values_for_type(x509.DNSName)
            ips = san.get_values_for_type(x509.IPAddress)  # type: ignore[assignment]
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return cls(
            dns_names=dns,
            ip_addresses=ips,
            uris=uris,
            spiffe_id=next((u for u in uris if u[:9].lower() == "spiffe://"), None),
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            common_name=str(cns[0].value) if cns else None,
            sha256=certificate_sha256(leaf),
            public_key_sha256=public_key_sha256(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            chain=certs,
        )

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf certificate (``chain[0]``)."""
        return self.chain[0]

    @property
    def names(self) -> tuple[str, ...]:
        """Every SAN as text: DNS names, then IP addresses, then URIs.

        The names :attr:`ServerOptions.allowed_peers <securelink.ServerOptions>` matches, in the
        order of :attr:`ConnectionInfo.peer_names <securelink.ConnectionInfo>`.
        """
        return (*self.dns_names, *(str(ip) for ip in self.ip_addresses), *self.uris)

    def __reduce__(self) -> tuple[Any, ...]:
        # cryptography's certificates do not pickle: carry the chain as DER.
        from cryptography.hazmat.primitives.serialization import Encoding

        values = {name: getattr(self, name) for name in self._fields}
        values["chain"] = tuple(c.public_bytes(Encoding.DER) for c in self.chain)
        return (_rebuild, (values,))


def _rebuild(values: dict[str, Any]) -> PeerIdentity:
    from cryptography import x509

    values = dict(values, chain=tuple(map(x509.load_der_x509_certificate, values["chain"])))
    return PeerIdentity(**values)


def _unavailable(problem: IdentityProblem, what: str) -> IdentityUnavailableError:
    if problem == "closed":
        return IdentityUnavailableError(
            f"{what} is closed, so its peer's identity is gone with its TLS state.",
            problem=problem,
            hint="Call peer_identity() while the connection is open (right after the handshake)"
            " and keep the result for the connection's lifetime.",
        )
    return IdentityUnavailableError(
        f"{what} has not finished its TLS handshake, so the peer has not proved who it is yet.",
        problem=problem,
        hint="Call peer_identity() after the handshake: once connect(), wrap_socket() or"
        " do_handshake() has returned, or in an asyncio handler (its handshake is done before"
        " the handler runs).",
    )


def _tls_object(conn: object) -> ssl.SSLSocket | ssl.SSLObject:
    """The ``SSLSocket`` or ``SSLObject`` behind *conn*, its handshake done."""
    if isinstance(conn, ssl.SSLSocket):
        if conn.fileno() == -1:
            raise _unavailable("closed", "The socket")
        if getattr(conn, "_sslobj", None) is None:  # wrap_socket() on an unconnected socket
            raise _unavailable("handshake-not-done", "The socket")
        return conn
    if isinstance(conn, ssl.SSLObject):
        return conn
    get_extra_info = getattr(conn, "get_extra_info", None)
    if not callable(get_extra_info):
        raise TypeError(
            "peer_identity() takes an ssl.SSLSocket, an ssl.SSLObject, or an asyncio"
            f" StreamWriter or transport, not {type(conn).__name__}"
        )
    obj = get_extra_info("ssl_object")
    if isinstance(obj, ssl.SSLObject):
        return obj
    # asyncio's TLS transports know their context from the start, but publish the
    # ssl_object only once the handshake has completed.
    if get_extra_info("sslcontext") is not None:
        raise _unavailable("handshake-not-done", f"The {type(conn).__name__}")
    raise TypeError(f"this {type(conn).__name__} is not a TLS connection (it has no ssl_object)")


def peer_identity(
    conn: ssl.SSLSocket | ssl.SSLObject | asyncio.StreamWriter | asyncio.BaseTransport,
) -> PeerIdentity | None:
    """Return who the peer of a TLS connection proved to be, or ``None`` if it sent no certificate.

    Works on either end: a client learns the server's identity, a server its client's (with
    mutual TLS).  The identity comes from the verified chain; a context that does not verify
    certificates gets an error instead of names that prove nothing.

    A server that asks for no client certificate (``ClientAuth.NONE``), or makes it optional
    (``ClientAuth.VERIFY_IF_GIVEN``) and got none, sees ``None``: check for it before using the
    result.  Each call parses the certificates again (tens of microseconds): call it once per
    connection and keep the result.

    An allow-list of SPIFFE IDs in an asyncio server (``ServerOptions.allowed_peers`` does the
    same for names and patterns right after the handshake: the server raises and logs
    ``ConnectionRejectedError`` and closes, and the refused client reads end of stream)::

        ALLOWED = {"spiffe://example.org/ns/prod/sa/billing"}

        async def handle(reader, writer):
            identity = securelink.peer_identity(writer)
            if identity is None or identity.spiffe_id not in ALLOWED:
                writer.close()  # not a workload we serve
            else:
                log.info("request from %s", identity.spiffe_id)
                await serve(reader, writer, identity)

        server = await securelink.aio.start_server(handle, "127.0.0.1", 8443, server_options)

    On a blocking client, the server's identity::

        with securelink.connect("api.example.test", 443, options) as tls:
            print(securelink.peer_identity(tls).dns_names)

    Args:
        conn: A connected ``ssl.SSLSocket``, an ``ssl.SSLObject`` (from ``wrap_bio``), or an
            asyncio ``StreamWriter`` or transport (anything with ``get_extra_info``, whose
            ``"ssl_object"`` is read).  Any context works, securelink's or not, as long as it
            verifies the peer.

    Returns:
        The peer's :class:`PeerIdentity`, or ``None`` when the peer presented no certificate.

    Raises:
        IdentityUnavailableError: the handshake has not finished (``problem ==
            "handshake-not-done"``), the socket is closed (``"closed"``), the context does not
            verify the peer's certificate (``"unverified"``: ``verify_mode`` is ``CERT_NONE``),
            or a field of the peer's certificate cannot be read (``"unreadable-certificate"``).
        TypeError: *conn* is not a TLS connection.

    .. versionadded:: 0.2.0
    """
    obj = _tls_object(conn)
    try:
        leaf = obj.getpeercert(binary_form=True)
    except ValueError as exc:  # "handshake not done yet"
        raise _unavailable("handshake-not-done", f"The {type(obj).__name__}") from exc
    if not leaf:
        return None
    if obj.context.verify_mode == ssl.CERT_NONE:
        # A server with CERT_NONE never asks for a client certificate, so this is a client
        # whose context accepts any server: OpenSSL still builds a "verified" chain then.
        raise IdentityUnavailableError(
            "The connection's context does not verify the peer's certificate"
            " (verify_mode CERT_NONE), so the names in it prove nothing.",
            problem="unverified",
            hint="Verify the peer (securelink's client contexts always do); to look at an"
            " unverified certificate anyway, use PeerIdentity.from_chain() on"
            " getpeercert(binary_form=True).",
        )
    chain = peer_chain_der(obj)
    if not chain or chain[0] != leaf:  # a resumed session keeps the leaf, not the chain
        chain = [leaf]
    try:
        return PeerIdentity.from_chain(chain)
    except ValueError as exc:  # OpenSSL verified it, but cryptography cannot read a field
        raise IdentityUnavailableError(
            f"The peer's certificate was verified, but {exc}, so its identity cannot be told.",
            problem="unreadable-certificate",
            hint="The peer's certificate is malformed or uses an algorithm this cryptography"
            " library does not support; its owner should have it reissued.",
        ) from exc
