"""Hints in the command line's words: ``--key``, not ``key=``.

The library's hints speak Python (``pass it as key=``, ``ClientOptions(cert=..., key=...)``),
because that is how its callers fix things.  A command-line user fixes them with flags, so the
commands render every :class:`~securelink.SecureLinkError` through :func:`cli_hint`, which builds
the hint again from the error's *fields* (its class, ``field``, ``found``, ``source``, ``kind``)
rather than by rewriting the library's sentence; errors it has no better words for keep the
library's hint.
"""

from __future__ import annotations

from . import errors as E

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FLAGS", "cli_hint"]

#: For each command, the library's option names (a ConfigurationError's ``field``) and the flag
#: that sets each one.
FLAGS: Mapping[str, Mapping[str, str]] = {
    "csr": {
        "names": "--domains",
        "domains": "--domains",
        "ip_addresses": "--ip-addresses",
        "key": "--key",
    },
    "minica": {"names": "--domains", "domains": "--domains", "ip_addresses": "--ip-addresses"},
    "probe": {
        "ca": "--ca",
        "cert": "--cert",
        "key": "--key",
        "target": "HOST:PORT",
        "host": "HOST:PORT",
        "server_hostname": "--servername",
    },
    "inspect": {"password": "--password-file"},
}

_KEY_FOUND = frozenset(
    {"PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"}
)
_CERT_FOUND = frozenset({"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"})
_CSR_FOUND = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
#: The flag that names the other half of a certificate and key pair, both ways.
_PAIR = {"--cert": "--key", "--key": "--cert", "--ca-cert": "--ca-key", "--ca-key": "--ca-cert"}


def cli_hint(
    command: str, exc: E.SecureLinkError, files: Mapping[str, str | None] | None = None
) -> str:
    """Return the hint for *exc* in the words of ``securelink COMMAND``.

    Args:
        command: The subcommand (``"csr"``, ``"minica"``, ``"probe"``, ``"inspect"``).
        exc: The error to explain.
        files: The flags that name files, each mapped to the path given (``{"--cert":
            "client.pem"}``), so that a MaterialError's ``source`` says which flag was at fault.

    Returns:
        The hint: one the command builds from the error's fields where the library's would
        name Python arguments, else the library's own.
    """
    flags = FLAGS.get(command, {})
    if isinstance(exc, E.ConfigurationError):
        if exc.field in ("names", "domains", "ip_addresses") and "--domains" in flags.values():
            uris = ", URIs such as spiffe://example.org/billing in --domains" * (command == "csr")
            return (
                "Give DNS names with --domains and IP addresses with --ip-addresses, each list"
                f" separated by commas and no spaces{uris}; write internationalised names in"
                " their xn-- (punycode) form."
            )
        return exc.hint
    if isinstance(exc, E.MaterialError):
        return _material_hint(command, exc, flags, files or {})
    if isinstance(exc, E.HandshakeError):
        return _handshake_hint(exc)
    return exc.hint


def _at_fault(found: str, naming: set[str]) -> str | None:
    """Which flag's file was being read when *found* turned up, among the flags *naming* it.

    One path may be given to several flags (``--cert both.pem --key both.pem``); what the file
    holds says which reading failed: a key is only wrong where a certificate was expected, and
    a certificate only where a key was.  Otherwise the certificate is read first.
    """
    order: tuple[str, ...]
    if found in _KEY_FOUND:
        order = ("--cert", "--ca-cert", "--ca")
    elif found in _CERT_FOUND:
        order = ("--key", "--ca-key")
    else:
        order = ("--cert", "--ca-cert", "--key", "--ca-key", "--ca")
    return next((flag for flag in order if flag in naming), None)


def _material_hint(
    command: str, exc: E.MaterialError, flags: Mapping[str, str], files: Mapping[str, str | None]
) -> str:
    found = exc.found
    naming = {flag for flag, path in files.items() if path is not None and path == exc.source}
    flag = _at_fault(found, naming) if found is not None else None
    if isinstance(exc, E.KeyPasswordError):
        if "password" in flags:
            return (
                f"Give the password with {flags['password']} FILE (or --password, which other"
                " local users can see in the process list)."
            )
        key_flag = "--ca-key" if "--ca-key" in naming else "--key"
        return (
            f"securelink {command} reads unencrypted keys only: decrypt a copy with `openssl"
            f" pkey -in KEY -out plain.key`, keep it mode 0600, and give that as {key_flag}."
        )
    if isinstance(exc, E.KeyMismatchError):
        return (
            "Give as --key the key that was generated with the --cert certificate (compare"
            " `openssl x509 -noout -pubkey -in CERT` with `openssl pkey -pubout -in KEY`); a"
            " renewal often comes with a new key."
        )
    if flag is None or found is None:
        return exc.hint
    return _misplaced_hint(command, found, flag, files) or exc.hint


def _misplaced_hint(
    command: str, found: str, flag: str, files: Mapping[str, str | None]
) -> str | None:
    """Say what the file given as `flag` is instead, and where it belongs (None: no advice)."""
    if found in _KEY_FOUND and flag in ("--cert", "--ca-cert"):
        whose = "the CA's" if flag == "--ca-cert" else "the"
        return (
            f"This looks like {whose} private key: give it as {_PAIR[flag]}, and the"
            f" certificate as {flag}."
        )
    if found in _KEY_FOUND and flag == "--ca":
        return "This looks like a private key, not a CA: give the CA's certificate file as --ca."
    if found in _CERT_FOUND and flag in ("--key", "--ca-key"):
        pair = _PAIR[flag]
        where = f", and the certificate as {pair}" if pair in files else ""
        return (
            "This looks like a certificate: give its private key file"
            f" (-----BEGIN PRIVATE KEY-----) as {flag}{where}."
        )
    if found == "PKCS#12":
        split = (
            "`openssl pkcs12 -in FILE -nocerts -noenc -out key.pem`"
            if command == "csr"
            else "`openssl pkcs12 -in FILE -nokeys -out cert.pem` and `openssl pkcs12 -in FILE"
            " -nocerts -noenc -out key.pem`"
        )
        give = "--key" if command == "csr" else "--cert and --key"
        return (
            f"This is a PKCS#12 bundle; securelink {command} reads PEM or DER files: split it"
            f" with {split} and give {give}."
        )
    if found in _CSR_FOUND:
        if flag == "--key":
            return "A CSR is not a key: give as --key the private key the CSR was made from."
        return (
            f"A CSR is a request for a certificate, not one: have a CA sign it and give the"
            f" result as {flag}."
        )
    if found in {"PUBLIC KEY", "RSA PUBLIC KEY"} and flag == "--key":
        return "A public key cannot prove anything: give the matching private key file as --key."
    if found == "OPENSSH PRIVATE KEY":
        return "Convert it with `ssh-keygen -p -m PKCS8 -f FILE`, then give the result as --key."
    return None


def _handshake_hint(exc: E.HandshakeError) -> str:
    # Only the client side reaches the command line (securelink probe).
    if isinstance(exc, E.ClientCertificateRequiredError):
        return (
            "Give a client certificate with --cert and its key with --key, issued by a CA that"
            " the server trusts for its clients."
        )
    if isinstance(exc, E.CertificateRejectedError):
        return (
            "The server does not accept the certificate given with --cert: it must come from a"
            " CA the server trusts for its clients, be valid now, and allow client"
            " authentication. The server's logs say which."
        )
    if isinstance(exc, E.UnknownAuthorityError):
        if exc.kind == "incomplete-chain":
            return (
                "The server must send its full chain: its certificate, then the intermediate CAs."
            )
        if exc.kind == "self-signed":
            return (
                "The server's certificate vouches for itself. If the server is yours, issue its"
                " certificate from a CA (`securelink minica`) and give that CA with --ca."
                " Never turn verification off."
            )
        who = f"{exc.issuer!r}" if exc.issuer else "the CA that issued it"
        return (
            f"If {who} is the CA that should vouch for this server, give its certificate file"
            " with --ca (without --ca, the public CAs of the certifi bundle are trusted); if it"
            " is an intermediate, the server must send it with its certificate. Never turn"
            " verification off."
        )
    if isinstance(exc, E.HostnameMismatchError) and exc.presented:
        return (
            f"Probe a name the certificate holds (with --servername NAME), or reissue it with"
            f" {exc.expected!r} as a SubjectAltName."
        )
    return exc.hint
