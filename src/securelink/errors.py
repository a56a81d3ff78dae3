"""The exceptions and warnings securelink raises.

Every exception derives from :class:`SecureLinkError` and also from the standard-library exception
it refines, so code that already catches ``ValueError``, ``ssl.SSLError`` or
``ConnectionRefusedError`` keeps working.  Each one carries its facts as attributes (never only in
the text), a :attr:`~securelink.SecureLinkError.hint` that says what to do, keeps the original
exception as ``__cause__``, and survives :mod:`pickle`.  The message starts with one sentence built
from the facts, followed by the hint::

    SecureLinkError
    ├── ConfigurationError (ValueError)          options that cannot work together
    ├── MaterialError (ValueError)               a certificate, key or CA that cannot be used
    │   ├── KeyMismatchError                     the key does not belong to the certificate
    │   ├── KeyPasswordError                     encrypted key: no password, or the wrong one
    │   ├── InputTooLargeError                   one input is larger than MAX_INPUT_SIZE
    │   └── CertificateProblemError              our own certificate would fail at the peer
    ├── IdentityUnavailableError (ValueError)    peer_identity() on a connection not ready
    ├── FrozenInstanceError (AttributeError)     assigning to a field of frozen options or records
    ├── NothingListeningError (ConnectionRefusedError)   wrong port, or the server is down
    └── HandshakeError (ssl.SSLError)            a connection failed; unrecognised causes land here
        ├── NotTLSError                          the peer does not speak TLS
        ├── ProtocolMismatchError                no TLS version or cipher suite in common
        ├── CertificateVerificationError (ssl.SSLCertVerificationError)
        │   ├── UnknownAuthorityError            not issued by a CA this end trusts
        │   ├── HostnameMismatchError            valid, but not for this name
        │   ├── CertificateExpiredError          past its notAfter date
        │   └── CertificateNotYetValidError      before its notBefore date
        ├── RemoteError                          the other end rejected the connection
        │   ├── ClientCertificateRequiredError   mutual TLS, and no client certificate was sent
        │   └── CertificateRejectedError         the peer does not accept our certificate
        ├── ConnectionRejectedError              this end's own hook refused the peer
        └── HandshakeTimeoutError (TimeoutError) this end gave up waiting for the handshake

    SecurityWarning (UserWarning)                works, but weakens security (a readable key file)
"""

from __future__ import annotations

import errno as _errno  # a built-in module: free to import
import ssl

TYPE_CHECKING = False  # typing is not imported at run time, to keep `import securelink` cheap

if TYPE_CHECKING:
    import datetime
    from typing import Any, Literal, TypeAlias

    from ._summary import CertificateSummary

    # The values of each "cause" field, for type checkers.  At run time each alias is built on
    # first use from ``_VOCABULARY`` below (so that ``import securelink`` does not import typing);
    # tests/test_vocabulary.py checks that both spell the same values.

    #: :attr:`CertificateProblemError.problem`.  The codes about one certificate are those of
    #: :attr:`securelink.Finding.code` for the same fact: loading and ``inspect`` agree.
    CertificateProblem: TypeAlias = Literal[
        "no-san",
        "expired",
        "not-yet-valid",
        "chain-out-of-order",
        "ca-as-leaf",
        "weak-key",
        "sha1-signature",
        "md5-signature",
        "no-ca-certificate",
        "all-cas-expired",
        "unreadable-field",
    ]
    #: :attr:`securelink.Finding.code`: what :func:`securelink.inspect` finds.
    FindingCode: TypeAlias = Literal[
        "expired",
        "not-yet-valid",
        "no-san",
        "weak-key",
        "sha1-signature",
        "md5-signature",
        "ca-as-leaf",
        "chain-out-of-order",
        "key-mismatch",
        "invalid-signature",
        "stale-crl",
        "wrong-password",
        "unreadable-field",
        "expires-soon",
        "missing-aki",
        "missing-ski",
        "ca-missing-key-usage",
        "legacy-key-encryption",
        "readable-key-file",
        "no-server-auth",
        "password-required",
        "not-inspected",
    ]
    #: :attr:`KeyPasswordError.reason` (OpenSSL's reason is :attr:`HandshakeError.reason`).
    PasswordReason: TypeAlias = Literal["missing", "wrong"]
    #: :attr:`ProtocolMismatchError.mismatch`.
    MismatchKind: TypeAlias = Literal["version", "cipher", "key_exchange", "unknown"]
    #: :attr:`UnknownAuthorityError.kind`.
    AuthorityKind: TypeAlias = Literal[
        "self-signed", "untrusted-root", "incomplete-chain", "unknown-issuer"
    ]
    #: :attr:`ConnectionRejectedError.hook`.
    RejectingHook: TypeAlias = Literal[
        "verify_connection", "on_server_name", "allowed_peers", "pin_public_keys", "unknown_names"
    ]
    #: :attr:`IdentityUnavailableError.problem`.
    IdentityProblem: TypeAlias = Literal[
        "handshake-not-done", "closed", "unverified", "unreadable-certificate"
    ]

#: The values of each cause field at run time, in the order of the aliases above.
_VOCABULARY: dict[str, tuple[str, ...]] = {
    "CertificateProblem": (
        "no-san",
        "expired",
        "not-yet-valid",
        "chain-out-of-order",
        "ca-as-leaf",
        "weak-key",
        "sha1-signature",
        "md5-signature",
        "no-ca-certificate",
        "all-cas-expired",
        "unreadable-field",
    ),
    "FindingCode": (
        "expired",
        "not-yet-valid",
        "no-san",
        "weak-key",
        "sha1-signature",
        "md5-signature",
        "ca-as-leaf",
        "chain-out-of-order",
        "key-mismatch",
        "invalid-signature",
        "stale-crl",
        "wrong-password",
        "unreadable-field",
        "expires-soon",
        "missing-aki",
        "missing-ski",
        "ca-missing-key-usage",
        "legacy-key-encryption",
        "readable-key-file",
        "no-server-auth",
        "password-required",
        "not-inspected",
    ),
    "PasswordReason": ("missing", "wrong"),
    "MismatchKind": ("version", "cipher", "key_exchange", "unknown"),
    "AuthorityKind": ("self-signed", "untrusted-root", "incomplete-chain", "unknown-issuer"),
    "RejectingHook": (
        "verify_connection",
        "on_server_name",
        "allowed_peers",
        "pin_public_keys",
        "unknown_names",
    ),
    "IdentityProblem": ("handshake-not-done", "closed", "unverified", "unreadable-certificate"),
}


def __getattr__(name: str) -> Any:
    """Build the ``Literal`` alias of a cause field on first use (PEP 562).

    ``securelink.errors.CertificateProblem`` and the other aliases are ``typing.Literal`` types
    at run time too (``typing.get_args`` lists the values), without importing :mod:`typing`
    whenever securelink is imported.
    """
    values = _VOCABULARY.get(name)
    if values is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import typing

    literal: Any = typing.Literal  # subscripted with a run-time tuple, which mypy cannot check
    alias = literal[values]  # Literal[("a", "b")] is Literal["a", "b"]
    globals()[name] = alias
    return alias


__all__ = [
    "CertificateExpiredError",
    "CertificateNotYetValidError",
    "CertificateProblemError",
    "CertificateRejectedError",
    "CertificateVerificationError",
    "ClientCertificateRequiredError",
    "ConfigurationError",
    "ConnectionRejectedError",
    "FrozenInstanceError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "HostnameMismatchError",
    "IdentityUnavailableError",
    "InputTooLargeError",
    "KeyMismatchError",
    "KeyPasswordError",
    "MaterialError",
    "NotTLSError",
    "NothingListeningError",
    "ProtocolMismatchError",
    "RemoteError",
    "SecureLinkError",
    "SecurityWarning",
    "UnknownAuthorityError",
]


_SENTENCE_STARTS = frozenset({"the", "a", "an", "every", "some", "nothing", "this"})


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    # Exceptions pickle as (cls, args), which loses keyword-only facts; rebuild without __init__.
    exc = cls.__new__(cls, *args)
    exc.args = args
    errno = state.pop("__errno__", None)
    if errno is not None and isinstance(exc, OSError):
        exc.errno = errno
    exc.__dict__.update(state)
    return exc


class SecureLinkError(Exception):
    """Base class of every securelink exception.

    Attributes:
        message: The first sentence of the explanation, built from the facts.
        hint: What to do about it.
    """

    message: str
    hint: str

    def __init__(self, message: str, *, hint: str = "") -> None:
        # Messages are sentences; the ones that open with a path or a field name keep its case.
        first, _, rest = message.partition(" ")
        if first in _SENTENCE_STARTS:
            message = f"{first.capitalize()} {rest}"
        self.message = message
        self.hint = hint
        super().__init__(f"{message} Hint: {hint}" if hint else message)

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        if isinstance(self, OSError) and self.errno is not None:
            state["__errno__"] = self.errno  # a C-level field, not in __dict__
        return (_restore, (type(self), self.args, state))


class ConfigurationError(SecureLinkError, ValueError):
    """The options ask for something impossible or insecure.

    Raised when the options are constructed wherever possible (a client certificate without a key,
    ``REQUIRE_AND_VERIFY`` without ``client_ca``, a minimum version above the maximum, TLS below
    1.2), otherwise when the context is built.

    Attributes:
        field: The name of the option at fault, such as ``"min_version"``.
    """

    field: str

    def __init__(self, message: str, *, field: str, hint: str = "") -> None:
        self.field = field
        super().__init__(message, hint=hint)


class MaterialError(SecureLinkError, ValueError):
    """A certificate, key or CA source cannot be used.

    Covers a missing path, a directory where a file belongs, an empty file, data that is neither PEM
    nor DER, truncated or corrupt PEM, and the wrong kind of object ("server.key holds a
    CERTIFICATE, not a private key").

    Attributes:
        source: The input at fault: the file path, or a description such as
            ``"the in-memory certificate"``.
        found: What the input actually holds, as a stable key for programs, or ``None``.  For
            PEM and DER objects it is the PEM label of the (first) object found:
            ``"CERTIFICATE"``, ``"PRIVATE KEY"``, ``"ENCRYPTED PRIVATE KEY"``,
            ``"RSA PRIVATE KEY"``, ``"EC PRIVATE KEY"``, ``"CERTIFICATE REQUEST"``,
            ``"PUBLIC KEY"``, ``"X509 CRL"``, ``"OPENSSH PRIVATE KEY"``, or ``"PKCS#12"``;
            otherwise ``"nothing"`` (an empty file), ``"unknown"`` (neither PEM nor DER),
            ``"directory"`` or ``"empty directory"``.  The message describes it in words.
    """

    source: str
    found: str | None

    def __init__(
        self, message: str, *, source: str, found: str | None = None, hint: str = ""
    ) -> None:
        self.source = source
        self.found = found
        super().__init__(message, hint=hint)


class InputTooLargeError(MaterialError):
    """One input is larger than securelink reads: :data:`securelink.MAX_INPUT_SIZE` (16 MiB).

    Raised for a file, bytes or a PKCS#12 bundle given as ``cert``, ``key``, ``ca``,
    ``client_ca`` or to :func:`securelink.inspect`, before anything is parsed; a file is
    refused from its size and never read past the limit.

    Attributes:
        size: The input's size in bytes, or ``None`` when it is not a regular file (a pipe or
            a device) and was read only as far as the limit.
        limit: The limit, in bytes.
    """

    size: int | None
    limit: int

    def __init__(
        self, message: str, *, source: str, size: int | None, limit: int, hint: str = ""
    ) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message, source=source, found=None, hint=hint)


class KeyMismatchError(MaterialError):
    """The private key does not belong to the certificate.

    Attributes:
        source: The key's source.
        cert_source: The certificate's source.
    """

    cert_source: str

    def __init__(self, message: str, *, source: str, cert_source: str, hint: str = "") -> None:
        self.cert_source = cert_source
        super().__init__(message, source=source, found="PRIVATE KEY", hint=hint)


class KeyPasswordError(MaterialError):
    """An encrypted key (or PKCS#12 bundle) was given no password, or the wrong one.

    securelink never lets OpenSSL prompt on the terminal, so this is raised instead of a hang.

    Attributes:
        reason: ``"missing"`` (encrypted, no password given) or ``"wrong"`` (decryption failed);
            typed ``securelink.errors.PasswordReason``.  Not OpenSSL's reason: a
            :class:`HandshakeError`'s ``reason`` is that.
    """

    reason: PasswordReason

    def __init__(
        self,
        message: str,
        *,
        source: str,
        reason: PasswordReason,
        found: str | None = None,
        hint: str = "",
    ) -> None:
        self.reason = reason
        super().__init__(message, source=source, found=found, hint=hint)


class CertificateProblemError(MaterialError):
    """Our own certificate or chain is unusable, found before any connection is made.

    Attributes:
        problem: A stable key for the cause, typed ``securelink.errors.CertificateProblem``:
            ``"no-san"``, ``"expired"``, ``"not-yet-valid"``, ``"chain-out-of-order"``,
            ``"ca-as-leaf"``, ``"weak-key"``, ``"sha1-signature"``, ``"md5-signature"``,
            ``"no-ca-certificate"``, ``"all-cas-expired"`` or ``"unreadable-field"`` (a
            certificate that parses, but one of
            whose fields cannot be read: a malformed name or extension, a duplicated extension,
            a public key of an unknown algorithm or an EC point off its curve; a CA refused for
            its key at load says so).
        subject: The subject of the certificate at fault, in RFC 4514 form.
        not_before: Start of its validity period (timezone-aware UTC), where relevant.
        not_after: End of its validity period (timezone-aware UTC), where relevant.
    """

    problem: CertificateProblem
    subject: str
    not_before: datetime.datetime | None
    not_after: datetime.datetime | None

    def __init__(
        self,
        message: str,
        *,
        source: str,
        problem: CertificateProblem,
        subject: str,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        hint: str = "",
    ) -> None:
        self.problem = problem
        self.subject = subject
        self.not_before = not_before
        self.not_after = not_after
        super().__init__(message, source=source, found="CERTIFICATE", hint=hint)


class SecurityWarning(UserWarning):
    """Something works but weakens security or will soon stop working.

    Examples: a private key file readable by group or others, or an expired certificate in a CA
    source that still holds valid ones.
    """


class NothingListeningError(SecureLinkError, ConnectionRefusedError):
    """Nothing accepted the TCP connection: the port is wrong, or the server is not running.

    Raised before any TLS is spoken, so no certificate was involved.

    Attributes:
        host: The host connected to, or ``None`` when it is not known (from
            :func:`~securelink.explain` without ``peer``).
        port: The port connected to, or ``None`` when it is not known.
    """

    host: str | None
    port: int | None

    def __init__(self, message: str, *, host: str | None, port: int | None, hint: str = "") -> None:
        self.host = host
        self.port = port
        super().__init__(message, hint=hint)
        # The platform's ECONNREFUSED (111 on Linux, 61 on macOS, 10061 on Windows), as the
        # ConnectionRefusedError it replaces; translation keeps the original's when it has one.
        self.errno = _errno.ECONNREFUSED


class HandshakeError(SecureLinkError, ssl.SSLError):
    """A TLS connection failed, during the handshake or on the first reads and writes after it.

    The generic class: failures securelink does not recognise are raised as this class, with the
    original exception kept as ``__cause__``; the subclasses name the recognised causes.

    Attributes:
        side: Who detected the problem: ``"local"`` (this end refused) or ``"peer"`` (the other
            end refused, by an alert or by closing the connection).
        role: Which end this is: ``"client"`` or ``"server"``.
        server_hostname: On a client, the name it connected to (verified, and sent as SNI);
            ``None`` when not known.  Always ``None`` on a server.
        peer: The other end's address, as ``(host, port)``, when known.
        library: The OpenSSL library that reported the error (``"SSL"``), when known.
        reason: OpenSSL's reason code (``"CERTIFICATE_VERIFY_FAILED"``), when known.
        errno: The original exception's ``errno``: for an ``ssl.SSLError``, the ``SSL_ERROR_*``
            class (1 for an SSL error, 8 for an unexpected EOF); ``None`` when it had none.
    """

    side: str
    role: str
    server_hostname: str | None
    peer: tuple[str, int] | None
    library: str | None  # type: ignore[assignment]  # typeshed says str; OpenSSL may give none
    reason: str | None  # type: ignore[assignment]

    def __init__(
        self,
        message: str,
        *,
        side: str,
        role: str,
        server_hostname: str | None = None,
        peer: tuple[str, int] | None = None,
        library: str | None = None,
        reason: str | None = None,
        hint: str = "",
    ) -> None:
        self.side = side
        self.role = role
        self.server_hostname = server_hostname
        self.peer = peer
        self.library = library
        self.reason = reason
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        # ssl.SSLError.__str__ prefers strerror, which we do not set: show our message.
        return str(self.args[0]) if self.args else ""


class NotTLSError(HandshakeError):
    """The other end does not speak TLS.

    Typical causes: a plaintext HTTP server on the port (the client reads ``HTTP/1.1 400`` where a
    TLS ServerHello belongs), a plaintext client talking to a TLS server, or the wrong port.
    """


class ProtocolMismatchError(HandshakeError):
    """The two ends have no TLS version, or no cipher suite, in common.

    Attributes:
        mismatch: Typed ``securelink.errors.MismatchKind``: ``"version"``, ``"cipher"``,
            ``"key_exchange"`` (the server's finite-field
            Diffie-Hellman group is too small: ``DH_KEY_TOO_SMALL``), or ``"unknown"`` when
            OpenSSL's report does not say.
        local_versions: The TLS versions this end allows, such as ``("TLSv1.2", "TLSv1.3")``.
        peer_version: The TLS version the server chose, such as ``"TLSv1.2"``, when a client's
            diagnostic handshake (one that offers every version and cipher suite, made only to
            explain an ambiguous refusal) found it out; otherwise ``None``.
        peer_cipher: The cipher suite the server chose in that diagnostic handshake, such as
            ``"ECDHE-ECDSA-AES128-SHA"``; otherwise ``None``.
    """

    mismatch: MismatchKind
    local_versions: tuple[str, ...]
    peer_version: str | None
    peer_cipher: str | None

    def __init__(
        self,
        message: str,
        *,
        mismatch: MismatchKind,
        local_versions: tuple[str, ...],
        peer_version: str | None = None,
        peer_cipher: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.mismatch = mismatch
        self.local_versions = local_versions
        self.peer_version = peer_version
        self.peer_cipher = peer_cipher
        super().__init__(message, **kwargs)


class CertificateVerificationError(HandshakeError, ssl.SSLCertVerificationError):
    """A certificate failed verification.

    Raised as this class itself for the causes without a subclass: wrong extended key usage
    (code 26), a weak key (66, 67) or signature digest (68), an invalid CA certificate (79), the
    RFC 5280 strict-mode failures (85 missing authority key identifier, 89 non-critical basic
    constraints, 92 CA without key usage, and similar), revoked (23), missing CRL (3), bad
    signature (7), and the rest.  The message and hint name the cause and the certificate at
    fault; ``verify_code`` keys it (OpenSSL 3.0's numbering).

    Attributes:
        verify_code: OpenSSL's verification error code (``X509_V_ERR_*``).
        verify_message: OpenSSL's text for it.
        certificate: A summary of the certificate at fault, when it can be had: the leaf for
            most causes, and for a problem in a CA certificate (an invalid CA, a CA key too small,
            a CA that fails strict mode) the first CA certificate in the chain that has it.
        chain: Summaries of the chain the peer presented, leaf first (empty when unknown).
    """

    verify_code: int
    verify_message: str
    certificate: CertificateSummary | None
    chain: tuple[CertificateSummary, ...]

    def __init__(
        self,
        message: str,
        *,
        verify_code: int,
        verify_message: str,
        certificate: CertificateSummary | None = None,
        chain: tuple[CertificateSummary, ...] = (),
        **kwargs: Any,
    ) -> None:
        self.verify_code = verify_code
        self.verify_message = verify_message
        self.certificate = certificate
        self.chain = chain
        super().__init__(message, **kwargs)


class UnknownAuthorityError(CertificateVerificationError):
    """The certificate was not issued by a CA this end trusts ("unknown authority").

    Attributes:
        kind: What went wrong, typed ``securelink.errors.AuthorityKind``: ``"self-signed"``
            (the certificate signed itself),
            ``"untrusted-root"`` (the chain ends at a root that is not trusted; also a chain
            that reaches a trusted intermediate CA whose own root is not trusted, on a context
            without ``VERIFY_X509_PARTIAL_CHAIN``),
            ``"incomplete-chain"`` (the peer did not send the intermediate that issued its
            certificate), or ``"unknown-issuer"`` (only the certificate was sent, and its issuer
            is not trusted: either an untrusted CA or a missing intermediate).
        issuer: The issuer that is not trusted, in RFC 4514 form; empty when it is not known
            (from :func:`~securelink.explain`, which does not see the chain).
        trusted: What this end trusts, in words: ``"the certifi bundle"``,
            ``"ca.pem with CN=Example Root CA"``, ``"the CA certificate CN=Example Root CA"``
            (given as an object or as bytes), or for a context securelink did not build
            ``"2 CA certificates loaded into the context"``.
    """

    kind: AuthorityKind
    issuer: str
    trusted: str

    def __init__(
        self, message: str, *, kind: AuthorityKind, issuer: str, trusted: str, **kwargs: Any
    ) -> None:
        self.kind = kind
        self.issuer = issuer
        self.trusted = trusted
        super().__init__(message, **kwargs)


class HostnameMismatchError(CertificateVerificationError):
    """The certificate is valid, but not for the name (or IP address) that was asked for.

    Attributes:
        expected: The name or address the client connected to; empty when it is not known.
        presented: The DNS names and IP addresses in the certificate's SubjectAltName.
        common_name: The certificate's Common Name, if it has one.  It is never checked.
    """

    expected: str
    presented: tuple[str, ...]
    common_name: str | None

    def __init__(
        self,
        message: str,
        *,
        expected: str,
        presented: tuple[str, ...],
        common_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.expected = expected
        self.presented = presented
        self.common_name = common_name
        super().__init__(message, **kwargs)


class CertificateExpiredError(CertificateVerificationError):
    """A certificate in the chain has expired.

    Attributes:
        not_after: When it expired (timezone-aware UTC), when known.
        expired_for: How long ago, when known.
    """

    not_after: datetime.datetime | None
    expired_for: datetime.timedelta | None

    def __init__(
        self,
        message: str,
        *,
        not_after: datetime.datetime | None = None,
        expired_for: datetime.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        self.not_after = not_after
        self.expired_for = expired_for
        super().__init__(message, **kwargs)


class CertificateNotYetValidError(CertificateVerificationError):
    """A certificate in the chain is not valid yet (or this machine's clock is behind).

    Attributes:
        not_before: When it becomes valid (timezone-aware UTC), when known.
        valid_in: How long until then, when known.
    """

    not_before: datetime.datetime | None
    valid_in: datetime.timedelta | None

    def __init__(
        self,
        message: str,
        *,
        not_before: datetime.datetime | None = None,
        valid_in: datetime.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        self.not_before = not_before
        self.valid_in = valid_in
        super().__init__(message, **kwargs)


class RemoteError(HandshakeError):
    """The other end rejected the connection, with a TLS alert or by closing it.

    Attributes:
        alert: The alert received, in words (``"handshake failure"``, ``"unknown CA"``), or
            ``None`` when the peer closed the connection without one.
    """

    alert: str | None

    def __init__(self, message: str, *, alert: str | None = None, **kwargs: Any) -> None:
        self.alert = alert
        super().__init__(message, **kwargs)


class ClientCertificateRequiredError(RemoteError):
    """The server requires a client certificate (mutual TLS), and none was sent.

    Recognised in all its forms: TLS 1.3's ``certificate required`` alert on the first read, TLS
    1.2's generic ``handshake failure`` after the server asked for a certificate, and the reset or
    EOF on a write after such a handshake.  On the server, ``side`` is ``"local"``: this server
    refused a client that sent no certificate.
    """


class CertificateRejectedError(RemoteError):
    """The peer rejected our certificate (unknown CA, bad, expired or unsupported certificate).

    Attributes:
        certificate: A summary of the certificate this end presented, when known.
    """

    certificate: CertificateSummary | None

    def __init__(
        self, message: str, *, certificate: CertificateSummary | None = None, **kwargs: Any
    ) -> None:
        self.certificate = certificate
        super().__init__(message, **kwargs)


class ConnectionRejectedError(HandshakeError):
    """This end's own hook (``verify_connection`` or ``on_server_name``) refused the connection.

    The connection was closed on purpose; the hook's exception is ``__cause__``.

    Attributes:
        hook: Which hook or rule refused, typed ``securelink.errors.RejectingHook``:
            ``"verify_connection"``, ``"on_server_name"``,
            ``"allowed_peers"``, ``"pin_public_keys"`` or ``"unknown_names"``.
        hook_reason: The hook's exception message.
    """

    hook: RejectingHook
    hook_reason: str

    def __init__(
        self, message: str, *, hook: RejectingHook, hook_reason: str, **kwargs: Any
    ) -> None:
        self.hook = hook
        self.hook_reason = hook_reason
        super().__init__(message, **kwargs)


class HandshakeTimeoutError(HandshakeError, TimeoutError):
    """This end gave up on a TLS handshake that did not finish in time.

    ``side`` is ``"local"``: this end stopped waiting, whoever was slow.  Raised by the server
    helpers (:func:`~securelink.wrap_server`, :func:`securelink.aio.start_server`, and any
    server socket of a securelink context that has a timeout), and for asyncio's handshake
    timeout on either end (``ssl_handshake_timeout``).  A :class:`TimeoutError` too, like the
    error it replaces.

    Attributes:
        timeout: How long this end waited, in seconds, when known.
        silent: ``True`` when the peer never started the handshake (a client that connected and
            sent no ClientHello; a server that did not answer this client's ClientHello),
            ``False`` when it started but did not finish, ``None`` when not known.
    """

    timeout: float | None
    silent: bool | None

    def __init__(
        self,
        message: str,
        *,
        timeout: float | None = None,
        silent: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self.timeout = timeout
        self.silent = silent
        super().__init__(message, **kwargs)


class IdentityUnavailableError(SecureLinkError, ValueError):
    """The connection cannot say who the peer is: not yet, no longer, or not reliably.

    A ``ValueError``, like the one ``ssl.SSLSocket.getpeercert()`` raises before the handshake.
    It is not raised when the peer simply sent no certificate: :func:`peer_identity` returns
    ``None`` then.

    Attributes:
        problem: A stable key for the cause, typed ``securelink.errors.IdentityProblem``:
            ``"handshake-not-done"`` (not connected yet, or
            the handshake has not finished), ``"closed"`` (the socket was closed, and its TLS
            state with it), ``"unverified"`` (the context does not verify the peer's
            certificate, ``verify_mode`` ``CERT_NONE``, so the names in it prove nothing), or
            ``"unreadable-certificate"`` (OpenSSL verified it, but cryptography cannot read one
            of its fields).
    """

    problem: IdentityProblem

    def __init__(self, message: str, *, problem: IdentityProblem, hint: str = "") -> None:
        self.problem = problem
        super().__init__(message, hint=hint)


class FrozenInstanceError(SecureLinkError, AttributeError):
    """Code tried to change or delete an attribute of a frozen securelink value.

    The option classes (:class:`~securelink.ClientOptions`, :class:`~securelink.ServerOptions`
    and their parts) and the records securelink returns (:class:`~securelink.PeerIdentity`,
    :class:`~securelink.CertificateSummary`, the results of :func:`~securelink.inspect`...) never
    change once made: options are hashed and shared between contexts, so changing one in place
    would silently change contexts already built.  Make a changed copy with ``replace()``
    instead.  An ``AttributeError``, like :exc:`dataclasses.FrozenInstanceError`; type
    checkers already report the assignment (``mypy``: "Property ... is read-only").

    Attributes:
        type_name: The class of the frozen value, such as ``"ClientOptions"``.
        field: The attribute that code tried to set or delete, such as ``"ca"``.
    """

    type_name: str
    field: str

    def __init__(self, message: str, *, type_name: str, field: str, hint: str = "") -> None:
        self.type_name = type_name
        self.field = field
        super().__init__(message, hint=hint)
