"""The exceptions and warnings securelink raises.

Every exception derives from :class:`SecureLinkError` and also from the standard-library exception
it refines, so code that already catches ``ValueError`` keeps working.  Each one carries its facts
as attributes (never only in the text), a :attr:`~securelink.SecureLinkError.hint` that says what
to do, and
survives :mod:`pickle`.  The message starts with one sentence built from the facts, followed by the
hint::

    SecureLinkError
    ├── ConfigurationError (ValueError)     options that cannot work together
    └── MaterialError (ValueError)          a certificate, key or CA that cannot be used
        ├── KeyMismatchError                the key does not belong to the certificate
        ├── KeyPasswordError                encrypted key: no password, or the wrong one
        └── CertificateProblemError         our own certificate would fail at the peer

    SecurityWarning (UserWarning)           works, but weakens security (a readable key file)
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time, to keep `import securelink` cheap
if TYPE_CHECKING:
    import datetime
    from typing import Any

__all__ = [
    "CertificateProblemError",
    "ConfigurationError",
    "KeyMismatchError",
    "KeyPasswordError",
    "MaterialError",
    "SecureLinkError",
    "SecurityWarning",
]


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    # Exceptions pickle as (cls, args), which loses keyword-only facts; rebuild without __init__.
    exc = cls.__new__(cls, *args)
    exc.args = args
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
        self.message = message
        self.hint = hint
        super().__init__(f"{message} Hint: {hint}" if hint else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


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
        reason: ``"missing"`` (encrypted, no password given) or ``"wrong"`` (decryption failed).
    """

    reason: str

    def __init__(
        self, message: str, *, source: str, reason: str, found: str | None = None, hint: str = ""
    ) -> None:
        self.reason = reason
        super().__init__(message, source=source, found=found, hint=hint)


class CertificateProblemError(MaterialError):
    """Our own certificate or chain is unusable, found before any connection is made.

    Attributes:
        problem: A stable key for the cause: ``"no-subject-alt-name"``, ``"expired"``,
            ``"not-yet-valid"``, ``"chain-order"``, ``"ca-as-leaf"``, ``"weak-key"``,
            ``"weak-signature"`` (SHA-1 or MD5), ``"no-ca-certificate"`` or
            ``"all-cas-expired"``.
        subject: The subject of the certificate at fault, in RFC 4514 form.
        not_before: Start of its validity period (timezone-aware UTC), where relevant.
        not_after: End of its validity period (timezone-aware UTC), where relevant.
    """

    problem: str
    subject: str
    not_before: datetime.datetime | None
    not_after: datetime.datetime | None

    def __init__(
        self,
        message: str,
        *,
        source: str,
        problem: str,
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
