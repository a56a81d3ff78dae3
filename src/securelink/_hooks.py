"""Handshake hooks and tracing: watch and steer each step, as Go's ``tls.Config`` callbacks do.

- ``verify_connection`` (Go's ``VerifyConnection``) runs after the peer's chain has been verified,
  with a :class:`ConnectionInfo`; raising rejects the connection.
- ``on_server_name`` (the moment of Go's ``GetCertificate``) runs on a server when the client's
  hello names the server it wants, before the certificate is chosen.
- ``trace`` receives each handshake message as a :class:`HandshakeMessage`, in the order sent and
  received.  It uses the private ``SSLContext._msg_callback`` hook of CPython (there is no public
  one), which costs time on every TLS record, so it is for debugging and teaching, not for
  production traffic.
"""

from __future__ import annotations

import ssl
import weakref

from ._compat import der_chain
from ._frozen import Frozen
from ._x509 import public_key_sha256
from .errors import ConnectionRejectedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from cryptography import x509

    from .errors import RejectingHook

__all__ = [
    "ConnectionInfo",
    "HandshakeMessage",
    "make_tracer",
    "peer_chain_der",
]

_HANDSHAKE_TYPES = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    4: "NewSessionTicket",
    5: "EndOfEarlyData",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    22: "CertificateStatus",
    24: "KeyUpdate",
    254: "MessageHash",
}
_ALERT_DESCRIPTIONS = {
    0: "close notify",
    10: "unexpected message",
    20: "bad record MAC",
    40: "handshake failure",
    42: "bad certificate",
    43: "unsupported certificate",
    44: "certificate revoked",
    45: "certificate expired",
    46: "certificate unknown",
    47: "illegal parameter",
    48: "unknown CA",
    49: "access denied",
    50: "decode error",
    51: "decrypt error",
    70: "protocol version",
    71: "insufficient security",
    80: "internal error",
    86: "inappropriate fallback",
    90: "user canceled",
    109: "missing extension",
    110: "unsupported extension",
    112: "unrecognized name",
    116: "certificate required",
    120: "no application protocol",
}
_VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
_RECORD_HEADER, _INNER_CONTENT_TYPE = 256, 257  # OpenSSL pseudo content types: not messages
_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE = 20, 21, 22


#: A check run after verification: (its name in error messages, the callable).
Check = tuple["RejectingHook", "Callable[[ConnectionInfo], None]"]


class Hooks:
    """The checks a context runs after verification, in order."""

    __slots__ = ("__weakref__", "checks")

    def __init__(self, checks: tuple[Check, ...]) -> None:
        self.checks = checks


_hooks: weakref.WeakKeyDictionary[ssl.SSLContext, Hooks] = weakref.WeakKeyDictionary()


def register(ctx: ssl.SSLContext, hooks: Hooks) -> None:
    """Remember the post-verification checks of a context securelink built."""
    _hooks[ctx] = hooks


def verify_connection_hook(ctx: ssl.SSLContext) -> tuple[Check, ...] | None:
    """The post-verification checks of *ctx*, if it has any."""
    hooks = _hooks.get(ctx)
    return hooks.checks if hooks is not None else None


def allowed_peers_check(patterns: tuple[str, ...]) -> Callable[[ConnectionInfo], None]:
    """A check that accepts only peers one of whose names matches one of *patterns*."""
    import fnmatch

    def check(info: ConnectionInfo) -> None:
        for name in info.peer_names:
            for pattern in patterns:
                if name == pattern or fnmatch.fnmatchcase(name, pattern):
                    return
        names = ", ".join(info.peer_names) or "no names"
        raise PermissionError(f"{names} matches none of the allowed peers {list(patterns)}")

    return check


def pin_check(pins: tuple[str, ...]) -> Callable[[ConnectionInfo], None]:
    """A check that accepts only a peer whose leaf public key has one of the *pins*."""

    def check(info: ConnectionInfo) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm

        leaf = info.peer_certificate
        try:
            digest = public_key_sha256(leaf) if leaf is not None else "(no certificate)"
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # A key cryptography cannot read matches no pin: refused, and saying why.
            raise PermissionError(f"its public key cannot be read ({exc})") from exc
        if digest not in pins:
            raise PermissionError(
                f"its public key (SHA-256 {digest}) is not one of the {len(pins)} pinned keys"
            )

    return check


def server_name_callback(
    on_server_name: Callable[[str | None], None] | None,
    by_name: dict[str, ssl.SSLContext] | None = None,
    reject_unknown: bool = False,
) -> Callable[[Any, str | None, ssl.SSLContext], int | None]:
    """Return an ``sni_callback`` for securelink's server hooks and certificates by name.

    It records the requested name, runs *on_server_name*, and switches to the context for that
    name (an exact match first, then a ``*.`` wildcard of one label).
    """

    def callback(conn: Any, server_name: str | None, ctx: ssl.SSLContext) -> int | None:
        # Kept on the connection for ConnectionInfo.server_name (the stdlib does not expose it).
        conn._securelink_server_name = server_name
        if on_server_name is not None:
            try:
                on_server_name(server_name)
            except Exception as exc:  # any exception means "refuse this name"
                conn._securelink_hook_error = ("on_server_name", exc)
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        if by_name is None or server_name is None:
            return None
        name = server_name.lower().rstrip(".")
        target = by_name.get(name)
        if target is None and "." in name:
            target = by_name.get("*." + name.split(".", 1)[1])
        if target is not None:
            conn.context = target  # the stdlib's supported way to switch certificates here
        elif reject_unknown:
            conn._securelink_hook_error = (
                "unknown_names",
                LookupError(f"it has no certificate for {server_name!r}"),
            )
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    return callback


def run_verify_connection(
    obj: Any, checks: tuple[Check, ...], peer: tuple[str, int] | None
) -> None:
    """Run the *checks* on a completed handshake; raise ConnectionRejectedError on a refusal."""
    info = connection_info(obj, peer)
    for name, check in checks:
        try:
            check(info)
        except Exception as exc:
            raise rejected(obj, name, exc, info.peer_names, peer) from exc


def rejected(
    obj: Any,
    hook: RejectingHook,
    exc: BaseException,
    peer_names: tuple[str, ...],
    peer: tuple[str, int] | None,
) -> ConnectionRejectedError:
    """The error for a connection that one of this end's hooks refused."""
    role = "server" if obj.server_side else "client"
    other = "client" if role == "server" else "server"
    who = f"the {other} {peer[0]} port {peer[1]}" if peer else f"the {other}"
    names = f" ({', '.join(peer_names)})" if peer_names else ""
    reason = str(exc) or type(exc).__name__
    rule = hook if hook in {"allowed_peers", "pin_public_keys", "unknown_names"} else None
    what = f"{rule} rule" if rule else f"{hook} hook"
    return ConnectionRejectedError(
        f"This {role}'s {what} rejected {who}{names}: {reason}",
        hook=hook,
        hook_reason=reason,
        side="local",
        role=role,
        server_hostname=getattr(obj, "server_hostname", None),
        peer=peer,
        hint="The connection was closed on purpose by this end's own hook; if the peer should be"
        " accepted, change the hook's rule (its exception is attached as __cause__).",
    )


class HandshakeMessage:
    """One TLS handshake message or alert, as :attr:`~securelink.ClientOptions.trace` sees it.

    Attributes:
        role: Which end observed it: ``"client"`` or ``"server"``.
        direction: ``"sent"`` or ``"received"`` (from *role*'s point of view).
        kind: ``"handshake"``, ``"alert"`` or ``"change_cipher_spec"`` (TLS 1.2 and the
            middlebox-compatibility messages of TLS 1.3; OpenSSL reports only the ones sent).
        name: The message's name (``"ClientHello"``, ``"CertificateRequest"``...), or for an
            alert its description (``"certificate required"``).
        version: The TLS version OpenSSL reported for it (``"TLSv1.3"``).  Until the client
            has processed the ServerHello, that is the client's highest version, so a TLS 1.2
            ClientHello, and the ServerHello as the client receives it, say ``"TLSv1.3"``.
        length: Its length in bytes.
        alert_level: For alerts, ``"warning"`` or ``"fatal"``; otherwise ``None``.
        connection: The ``ssl.SSLSocket`` or ``ssl.SSLObject`` it belongs to, to tell concurrent
            connections apart.
    """

    __slots__ = (
        "alert_level",
        "connection",
        "direction",
        "kind",
        "length",
        "name",
        "role",
        "version",
    )

    def __init__(
        self,
        *,
        role: str,
        direction: str,
        kind: str,
        name: str,
        version: str,
        length: int,
        alert_level: str | None = None,
        connection: object = None,
    ) -> None:
        self.role = role
        self.direction = direction
        self.kind = kind
        self.name = name
        self.version = version
        self.length = length
        self.alert_level = alert_level
        self.connection = connection

    def __repr__(self) -> str:
        return (
            f"HandshakeMessage(role={self.role!r}, direction={self.direction!r},"
            f" kind={self.kind!r}, name={self.name!r}, version={self.version!r},"
            f" length={self.length})"
        )

    def __str__(self) -> str:
        arrow = "->" if self.direction == "sent" else "<-"
        what = self.name if self.kind != "alert" else f"alert: {self.name} ({self.alert_level})"
        size = f"{self.length} byte" + ("" if self.length == 1 else "s")
        return f"{self.role:<6} {arrow} {what} [{self.version}, {size}]"


def _version_text(version: object) -> str:
    try:
        return _VERSIONS.get(int(version), str(version))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # pragma: no cover - OpenSSL always gives a number
        return str(version)


def make_tracer(trace: Callable[[HandshakeMessage], None]) -> Callable[..., None]:
    """Return a ``_msg_callback`` that turns OpenSSL's reports into :class:`HandshakeMessage`."""

    def callback(
        conn: Any, direction: str, version: object, content_type: object, msg_type: object,
        data: bytes,
    ) -> None:  # fmt: skip
        content = int(content_type)  # type: ignore[call-overload]
        if content in (_RECORD_HEADER, _INNER_CONTENT_TYPE):
            return
        role = "server" if getattr(conn, "server_side", False) else "client"
        way = "sent" if direction == "write" else "received"
        if content == _HANDSHAKE:
            code = int(msg_type)  # type: ignore[call-overload]
            name = _HANDSHAKE_TYPES.get(code, f"handshake message {code}")
            kind, level = "handshake", None
        elif content == _ALERT and len(data) >= 2:
            kind = "alert"
            level = "fatal" if data[0] == 2 else "warning"
            name = _ALERT_DESCRIPTIONS.get(data[1], f"alert {data[1]}")
        elif content == _CHANGE_CIPHER_SPEC:
            kind, name, level = "change_cipher_spec", "ChangeCipherSpec", None
        else:
            return
        message = HandshakeMessage(
            role=role,
            direction=way,
            kind=kind,
            name=name,
            version=_version_text(version),
            length=len(data),
            alert_level=level,
            connection=conn,
        )
        try:
            trace(message)
        except Exception:
            # An exception escaping here would abort the handshake in a way the stdlib does not
            # clean up after (the socket stays open and the peer waits): log it instead.
            import logging  # only now: `import securelink` stays cheap

            logging.getLogger("securelink").exception("the trace callback failed on %s", message)

    return callback


class ConnectionInfo(Frozen):
    """What a ``verify_connection`` hook is told about a connection whose chain has verified.

    Attributes:
        role: Which end this is: ``"client"`` or ``"server"``.
        version: The negotiated TLS version (``"TLSv1.3"``).
        cipher: The negotiated cipher suite.
        alpn: The negotiated application protocol, or ``None``.
        server_name: The name the client asked for (SNI); ``None`` if it sent none.
        peer_address: The peer's ``(host, port)``, when known (not for asyncio objects).
        peer_chain: The peer's verified chain as ``cryptography`` certificates, leaf first
            (empty when a server does not ask for or did not get a client certificate).
        peer_names: The leaf's SubjectAltNames: DNS names, IP addresses and URIs (SPIFFE IDs).
    """

    __slots__ = (
        "alpn",
        "cipher",
        "peer_address",
        "peer_chain",
        "peer_names",
        "role",
        "server_name",
        "version",
    )
    _fields = (
        "role",
        "version",
        "cipher",
        "alpn",
        "server_name",
        "peer_address",
        "peer_chain",
        "peer_names",
    )

    role: str
    version: str | None
    cipher: str | None
    alpn: str | None
    server_name: str | None
    peer_address: tuple[str, int] | None
    peer_chain: tuple[x509.Certificate, ...]
    peer_names: tuple[str, ...]

    def __init__(
        self,
        *,
        role: str,
        version: str | None,
        cipher: str | None,
        alpn: str | None,
        server_name: str | None,
        peer_address: tuple[str, int] | None,
        peer_chain: tuple[x509.Certificate, ...],
        peer_names: tuple[str, ...],
    ) -> None:
        for name, value in (
            ("role", role),
            ("version", version),
            ("cipher", cipher),
            ("alpn", alpn),
            ("server_name", server_name),
            ("peer_address", peer_address),
            ("peer_chain", tuple(peer_chain)),
            ("peer_names", tuple(peer_names)),
        ):
            self._set(name, value)

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The peer's leaf certificate, or ``None`` if it presented none."""
        return self.peer_chain[0] if self.peer_chain else None


def peer_chain_der(obj: Any) -> list[bytes]:
    """The peer's verified chain (leaf first) as DER, from an ``SSLSocket`` or ``SSLObject``."""
    chain = der_chain(obj, verified=True)
    if not chain:
        leaf = obj.getpeercert(binary_form=True)
        chain = [leaf] if leaf else []
    return chain


def connection_info(obj: Any, peer: tuple[str, int] | None) -> ConnectionInfo:
    """Describe a connection whose handshake has completed."""
    from cryptography import x509

    certs = tuple(x509.load_der_x509_certificate(der) for der in peer_chain_der(obj))
    names: list[str] = []
    if certs:
        try:
            san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            names += san.get_values_for_type(x509.DNSName)
            names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
            names += san.get_values_for_type(x509.UniformResourceIdentifier)
    cipher = obj.cipher()
    server_name = (
        getattr(obj, "_securelink_server_name", None) if obj.server_side else obj.server_hostname
    )
    return ConnectionInfo(
        role="server" if obj.server_side else "client",
        version=obj.version(),
        cipher=cipher[0] if cipher else None,
        alpn=obj.selected_alpn_protocol(),
        server_name=server_name,
        peer_address=peer,
        peer_chain=certs,
        peer_names=tuple(names),
    )
