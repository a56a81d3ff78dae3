"""Loading certificates, keys and CAs from paths, bytes, objects and PKCS#12, and checking them.

OpenSSL answers nine different problems with ``[SSL] PEM lib``, so nothing here is handed to
OpenSSL until ``cryptography`` has parsed it and we know exactly what each input holds.  The parsed
objects are then given to OpenSSL from memory (see :func:`load_identity`).
"""

from __future__ import annotations

import itertools
import os
import re
import ssl
import stat

from . import _kdf, _warn
from ._compat import dsa_key_classes
from ._options import PKCS12, Trust
from ._x509 import MIN_RSA_BITS, FileStamp, duration, looks_like_pkcs12, unreadable_fields, utcnow
from .errors import (
    CertificateProblemError,
    ConfigurationError,
    InputTooLargeError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    SecurityWarning,
)

# typing, datetime, tempfile and secrets are imported where needed: `import securelink` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Iterable, Sequence
    from typing import Any

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from ._options import Password

__all__ = [
    "MAX_INPUT_SIZE",
    "CASet",
    "Identity",
    "load_cas",
    "load_certificates",
    "load_identity",
    "load_private_key",
]

#: The largest single input (a file, bytes, a PKCS#12 bundle) that securelink reads, in bytes:
#: 16 MiB.  Certifi's bundle of every trusted root is about 280 KiB and a PEM certificate about
#: 1.5 to 2 KiB, so 16 MiB holds some 10,000 certificates: more than every publicly disclosed CA
#: certificate, roots and intermediates together.  Parsing is linear, so the limit bounds the
#: time one input can cost (about 10 s of CPU for ``inspect`` of 16 MiB of certificates, and
#: far less for anything else), and a bigger input is refused before it is read.
MAX_INPUT_SIZE = 16 * 1024 * 1024

# A block is a BEGIN line, then everything up to the first END line after it.  The splitter finds
# the two markers with separate searches that only ever move forward: one lazy regex spanning
# BEGIN to END rescanned the rest of the input for every BEGIN line without an END, which made a
# flood of BEGIN lines quadratic (8,000 of them took 7.5 s).
_PEM_BEGIN_LINE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n")
_PEM_END = re.compile(rb"-----END ([A-Z0-9 ]+)-----")
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_KEY_LABELS = frozenset(
    {"PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"}
)
_CERT_LABELS = frozenset({"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"})
_FRIENDLY = {
    "CERTIFICATE": "a CERTIFICATE",
    "TRUSTED CERTIFICATE": "a TRUSTED CERTIFICATE",
    "PRIVATE KEY": "a PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY": "an ENCRYPTED PRIVATE KEY",
    "RSA PRIVATE KEY": "an RSA PRIVATE KEY",
    "EC PRIVATE KEY": "an EC PRIVATE KEY",
    "CERTIFICATE REQUEST": "a CERTIFICATE REQUEST (CSR)",
    "NEW CERTIFICATE REQUEST": "a CERTIFICATE REQUEST (CSR)",
    "PUBLIC KEY": "a PUBLIC KEY",
    "RSA PUBLIC KEY": "an RSA PUBLIC KEY",
    "X509 CRL": "a certificate revocation list (X509 CRL)",
    "PKCS7": "a PKCS#7 bundle",
    "OPENSSH PRIVATE KEY": "an OpenSSH private key",
    "PKCS#12": "a PKCS#12 bundle",
}


def _friendly(found: str) -> str:
    return _FRIENDLY.get(found, f"a {found} block")


# ---------------------------------------------------------------------------------------------
# Reading raw input


def _describe(source: object, what: str) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return f"the in-memory {what}"


def _too_large(label: str, size: int | None, what: str) -> InputTooLargeError:
    length = f"{size:,} bytes long, larger" if size is not None else "longer"
    return InputTooLargeError(
        f"{label} is {length} than the {MAX_INPUT_SIZE:,} bytes (16 MiB) that securelink reads"
        f" from one input; it was given as the {what}.",
        source=label,
        size=size,
        limit=MAX_INPUT_SIZE,
        hint=f"Check that this is the {what} file you meant: real certificate bundles are far"
        " smaller (every trusted root CA together is about 280 KiB). Split it if it truly holds"
        " that much.",
    )


def check_size(data: bytes | bytearray, label: str, what: str) -> None:
    """Refuse in-memory input larger than :data:`MAX_INPUT_SIZE`, before it is parsed.

    Raises:
        InputTooLargeError: it is larger.
    """
    if len(data) > MAX_INPUT_SIZE:
        raise _too_large(label, len(data), what)


def _read(source: str | os.PathLike[str], what: str, stamps: list[FileStamp]) -> bytes:
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):  # pragma: no cover - open() already refuses on Linux
                raise IsADirectoryError(path)
            # A regular file too large is refused from its size, without reading it; anything
            # else (a pipe, a device) is read up to one byte past the limit, never further.
            if stat.S_ISREG(st.st_mode) and st.st_size > MAX_INPUT_SIZE:
                raise _too_large(path, st.st_size, what)
            data = f.read(MAX_INPUT_SIZE + 1)
            if len(data) > MAX_INPUT_SIZE:
                raise _too_large(path, None, what)
    except FileNotFoundError as exc:
        parent = os.path.dirname(os.path.abspath(path))
        where = "" if os.path.isdir(parent) else f" (the directory {parent} does not exist either)"
        raise MaterialError(
            f"{path}: no such file{where}; it was given as the {what}.",
            source=path,
            hint=f"Check the path (relative paths start from {os.getcwd()}).",
        ) from exc
    except IsADirectoryError as exc:
        raise MaterialError(
            f"{path} is a directory, but the {what} must be a file.",
            source=path,
            found="directory",
            hint=f"Name the {what} file inside it"
            + (" (minica writes <name>/cert.pem and <name>/key.pem)." if what != "CA" else "."),
        ) from exc
    except PermissionError as exc:
        raise MaterialError(
            f"{path} cannot be read by this process (permission denied).",
            source=path,
            hint="Run as a user that may read it, or adjust its permissions (keys: 0600).",
        ) from exc
    except OSError as exc:
        raise MaterialError(
            f"{path} cannot be read: {exc.strerror or exc}.",
            source=path,
            hint=f"Check that the {what} file is a readable regular file.",
        ) from exc
    stamps.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    if not data.strip():
        raise MaterialError(
            f"{path} is empty; it was given as the {what}.",
            source=path,
            found="nothing",
            hint=f"Write the {what} into it, or point at the file that holds it.",
        )
    return data


def stamp(path: str) -> FileStamp | None:
    """Return the current stamp of *path*, or ``None`` if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Block:
    __slots__ = ("label", "pem")

    def __init__(self, label: str, pem: bytes) -> None:
        self.label = label
        self.pem = pem


def _pem_blocks(data: bytes, label: str) -> list[_Block] | None:
    """Split PEM data into blocks; ``None`` if it is not PEM at all.

    Linear in the size of *data*: every search starts where the previous one stopped.
    """
    begin = _PEM_BEGIN.search(data)
    if begin is None:
        return None
    blocks = []
    pos = begin.start()
    while True:
        start = _PEM_BEGIN_LINE.search(data, pos)
        if start is None:
            break
        end = _PEM_END.search(data, start.end())
        if end is None:
            # No END line after this BEGIN means none after any later BEGIN either: stop here
            # rather than look for one again from each of them.
            break
        begin_label, end_label = start.group(1).decode(), end.group(1).decode()
        if begin_label != end_label:
            raise MaterialError(
                f"{label} is corrupt PEM: a '{begin_label}' block ends with an '{end_label}' line.",
                source=label,
                found=begin_label,
                hint="The file was damaged or two blocks were pasted together; copy it again.",
            )
        blocks.append(_Block(begin_label, data[start.start() : end.end()]))
        pos = end.end()
    # Every BEGIN line (with or without a line break after it) must have started a block.
    for count, unmatched in enumerate(_PEM_BEGIN.finditer(data)):
        if count == len(blocks):
            missing = unmatched.group(1).decode()
            raise MaterialError(
                f"{label} is truncated PEM: a '-----BEGIN {missing}-----' line has no matching"
                " END line.",
                source=label,
                found=missing,
                hint="The file was cut short (an interrupted copy or paste?); copy it again in"
                " full.",
            )
    return blocks


def _sniff_der(data: bytes) -> str | None:
    """Name what a DER blob holds, or ``None`` if it is not DER we recognise."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not data or data[0] != 0x30:  # every object we accept is an ASN.1 SEQUENCE
        return None
    try:
        x509.load_der_x509_certificate(data)
        return "CERTIFICATE"
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is not a ValueError
        pass
    try:
        serialization.load_der_private_key(data, None, unsafe_skip_rsa_key_validation=True)
        return "PRIVATE KEY"
    except TypeError:
        return "ENCRYPTED PRIVATE KEY"
    except (ValueError, UnsupportedAlgorithm):
        pass  # not a key we can read: try the other kinds below
    if looks_like_pkcs12(data):
        return "PKCS#12"
    for loader, name in (
        (x509.load_der_x509_csr, "CERTIFICATE REQUEST"),
        (x509.load_der_x509_crl, "X509 CRL"),
    ):
        try:
            loader(data)
            return name
        except (ValueError, x509.InvalidVersion):
            pass
    try:
        public = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        return None
    # cryptography before 47 reads a bare SEQUENCE of two INTEGERs as a PKCS#1 RSA public key
    # (a "3-bit key"); no real key is that small, so such data is not a key at all.
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(public, rsa.RSAPublicKey) and public.key_size < 512:
        return None
    return "PUBLIC KEY"


def _what_is(data: bytes, label: str) -> tuple[str, str]:
    """Return (the ``found`` key, a description) of what *data* holds."""
    blocks = _pem_blocks(data, label)
    if blocks:
        labels = list(dict.fromkeys(b.label for b in blocks))
        return labels[0], " and ".join(_friendly(lab) for lab in labels)
    found = _sniff_der(data)
    if found is not None:
        return found, f"{_friendly(found)} in DER form"
    return "unknown", "data that is neither PEM nor DER"


def _not_pem_nor_der(label: str, data: bytes, what: str) -> MaterialError:
    text = data[:64]
    if text.startswith(b"\xef\xbb\xbf"):
        detail = " (it starts with a UTF-8 byte-order mark)"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        detail = f" (it starts with {data[:24].decode(errors='replace')!r})"
    else:
        detail = ""
    return MaterialError(
        f"{label} holds data that is neither PEM nor DER{detail}; it was given as the {what}.",
        source=label,
        found="unknown",
        hint=f"Point at the {what} itself: PEM starts with '-----BEGIN', DER is binary."
        " `openssl storeutl -noout -text FILE` shows what a file holds.",
    )


def _wrong_kind(
    label: str, kinds: Sequence[str], what: str, hint: str, *, der: bool = False
) -> MaterialError:
    # `found` is the stable key (the PEM label); the message describes every kind present.
    kinds = list(dict.fromkeys(kinds))
    described = " and ".join(_friendly(kind) for kind in kinds) + (" in DER form" if der else "")
    return MaterialError(
        f"{label} holds {described}, not {what}.", source=label, found=kinds[0], hint=hint
    )


# ---------------------------------------------------------------------------------------------
# Certificates


def _load_pem_certs(blocks: list[_Block], label: str) -> list[x509.Certificate]:
    from cryptography import x509

    certs = []
    for block in blocks:
        if block.label not in _CERT_LABELS:
            continue
        try:
            certs.append(x509.load_pem_x509_certificate(block.pem))
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is not a ValueError
            raise MaterialError(
                f"{label} holds a corrupt {block.label} block: its contents do not decode as"
                " an X.509 certificate.",
                source=label,
                found=block.label,
                hint="The base64 text was damaged (edited, re-wrapped or cut); copy the file"
                " again from its origin.",
            ) from exc
    return certs


def load_certificates(
    source: object, *, what: str, stamps: list[FileStamp]
) -> tuple[list[x509.Certificate], str]:
    """Load every certificate in one source.

    Args:
        source: A path, PEM or DER bytes, or an ``x509.Certificate``.
        what: What the source was given as, for messages ("certificate", "CA").
        stamps: Receives the stamp of every file read.

    Returns:
        The certificates, in order, and the source's label.

    Raises:
        MaterialError: if the source is unreadable or holds no certificate.
    """
    from cryptography import x509

    if isinstance(source, x509.Certificate):
        try:
            label = f"the x509.Certificate for {_subject(source)!r}"
        except Exception:  # an unreadable subject: check_readable names the field
            label = "the in-memory x509.Certificate"
        check_readable([source], label, role=what)
        return [source], label
    if not isinstance(source, str | os.PathLike | bytes):
        raise MaterialError(
            f"the {what} was given as {type(source).__name__}, which securelink cannot read.",
            source=repr(source),
            hint="Pass a path, PEM or DER bytes, or a cryptography x509.Certificate.",
        )
    label = _describe(source, what)
    if isinstance(source, bytes):
        check_size(source, label, what)
    data = source if isinstance(source, bytes) else _read(source, what, stamps)
    blocks = _pem_blocks(data, label)
    if blocks is not None:
        certs = _load_pem_certs(blocks, label)
        if certs:
            check_readable(certs, label, role=what)
            return certs, label
        kinds = [b.label for b in blocks]
        raise _wrong_kind(label, kinds, "a certificate", _hint_for(kinds[0], what))
    try:
        der_cert = x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion):
        pass
    else:
        check_readable([der_cert], label, role=what)
        return [der_cert], label
    found_der = _sniff_der(data)
    if found_der is None:
        raise _not_pem_nor_der(label, data, what)
    raise _wrong_kind(label, [found_der], "a certificate", _hint_for(found_der, what), der=True)


def _hint_for(found: str, what: str) -> str:
    if found in _KEY_LABELS or found == "PRIVATE KEY":
        return f"This looks like the private key: pass it as key=, and the {what} file as" + (
            " ca=/client_ca=." if what == "CA" else " cert=."
        )
    if found in {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}:
        return (
            "A CSR is a request for a certificate, not one: have a CA sign it (for example"
            " securelink.devca.CertificateAuthority.sign_csr) and use the result."
        )
    if found == "PKCS#12":
        return (
            "A PKCS#12 bundle holds a whole identity: pass cert=securelink.PKCS12(path) with"
            " password=, and leave key unset."
        )
    if found in {"PUBLIC KEY", "RSA PUBLIC KEY"}:
        return "A public key is not a certificate: use the certificate that contains it."
    if found == "X509 CRL":
        return "A CRL lists revoked certificates; it is not a certificate."
    if found == "OPENSSH PRIVATE KEY":
        return "Convert it with `ssh-keygen -p -m PKCS8 -f FILE` (OpenSSH keys are not TLS keys)."
    return f"Point at the {what} file (PEM '-----BEGIN CERTIFICATE-----' or DER)."


# ---------------------------------------------------------------------------------------------
# Private keys


def _password_bytes(password: Password | None) -> bytes | None:
    if password is None:
        return None
    if callable(password):
        # A raising callable propagates unchanged: it is the caller's own error.
        password = password()
        if not isinstance(password, str | bytes | bytearray):
            raise TypeError(
                f"the password callable returned {type(password).__name__}, not str or bytes"
            )
    if isinstance(password, str):
        return password.encode("utf-8")
    return bytes(password)


def refuse_excessive_work(data: bytes, label: str, found: str) -> None:
    """Refuse an input whose key derivation asks for more work than securelink runs.

    Raises:
        MaterialError: a PBKDF2, PKCS#12 or scrypt setting above the bounds of ``_kdf``.
    """
    der = _kdf.pem_body(data) if data.lstrip()[:5] == b"-----" else data
    excessive = _kdf.excessive_work(der) if der else None
    if excessive is None:
        return
    what, asked, limit = excessive
    raise MaterialError(
        f"{label} asks for {asked:,} {what}; securelink runs at most {limit:,}, so that a small"
        " file cannot hold the CPU for minutes before a password is even checked.",
        source=label,
        found=found,
        hint="Re-encrypt it with a usual setting, for example `openssl pkcs12 -export ... -iter"
        " 2048` or `openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000` (or ask whoever made it"
        " why it asks for so much).",
    )


def _decrypt(load: Any, data: bytes, password: bytes | None, label: str, found: str) -> Any:
    """Run a cryptography key loader with precise password errors."""
    if found == "ENCRYPTED PRIVATE KEY":
        refuse_excessive_work(data, label, found)
    try:
        # RSA validation costs ~30 ms per 2048-bit key and OpenSSL's own SSL_CTX_use_PrivateKey
        # (what the stdlib does) skips it too; the key is ours and is matched to the certificate.
        return load(data, password, unsafe_skip_rsa_key_validation=True)
    except TypeError as exc:
        if password is None:
            raise KeyPasswordError(
                f"{label} holds an encrypted private key and no password was given.",
                source=label,
                reason="missing",
                found=found,
                hint="Pass password= (str, bytes, or a callable that returns it); securelink"
                " never prompts on the terminal.",
            ) from exc
        # A password was given for a key that is not encrypted: like the stdlib, accept it.
        return load(data, None, unsafe_skip_rsa_key_validation=True)
    except ValueError as exc:
        if password is not None:
            try:
                load(data, None, unsafe_skip_rsa_key_validation=True)
            except TypeError:
                raise KeyPasswordError(
                    f"{label} holds an encrypted private key and the password given does not"
                    " decrypt it.",
                    source=label,
                    reason="wrong",
                    found=found,
                    hint="Check the password (and its encoding: str is sent as UTF-8).",
                ) from exc
            except ValueError:
                pass
        raise MaterialError(
            f"{label} holds a corrupt {found} block: it does not decode as a private key.",
            source=label,
            found=found,
            hint="The key was damaged (edited, re-wrapped or cut); copy it again from its origin.",
        ) from exc
    except Exception as exc:  # pragma: no cover - unsupported algorithms raise their own types
        raise MaterialError(
            f"{label} holds a {found} that cannot be used: {exc}.",
            source=label,
            found=found,
            hint="Use an RSA (2048 bits or more), ECDSA or Ed25519 key.",
        ) from exc


def load_private_key(
    source: object, password: Password | None, *, stamps: list[FileStamp]
) -> tuple[PrivateKeyTypes, str]:
    """Load one private key from a path, PEM or DER bytes, or a key object.

    Raises:
        MaterialError: unreadable, or not a private key.
        KeyPasswordError: encrypted and no or the wrong password.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(
        source,
        (
            rsa.RSAPrivateKey,
            ec.EllipticCurvePrivateKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PrivateKey,
            dsa_key_classes()[0],
        ),
    ):
        return source, "the in-memory private key object"
    if not isinstance(source, str | os.PathLike | bytes):
        raise MaterialError(
            f"the key was given as {type(source).__name__}, which securelink cannot read.",
            source=repr(type(source)),
            hint="Pass a path, PEM or DER bytes, or a cryptography private key object.",
        )
    label = _describe(source, "key")
    if isinstance(source, bytes):
        check_size(source, label, "private key")
    data = source if isinstance(source, bytes) else _read(source, "private key", stamps)
    key, label = _load_key_data(data, password, label)
    if not isinstance(source, bytes):
        _warn_if_readable(os.fspath(source))
    return key, label


def _load_key_data(
    data: bytes, password: Password | None, label: str
) -> tuple[PrivateKeyTypes, str]:
    from cryptography.hazmat.primitives import serialization

    pw = _password_bytes(password)
    blocks = _pem_blocks(data, label)
    if blocks is not None:
        keys = [b for b in blocks if b.label in _KEY_LABELS]
        if not keys:
            kinds = [b.label for b in blocks]
            raise _wrong_kind(label, kinds, "a private key", _key_hint(kinds[0]))
        if len(keys) > 1:
            raise MaterialError(
                f"{label} holds {len(keys)} private keys; securelink cannot tell which one"
                " belongs to the certificate.",
                source=label,
                found="PRIVATE KEY",
                hint="Keep one private key per file.",
            )
        block = keys[0]
        found = block.label
        return _decrypt(serialization.load_pem_private_key, block.pem, pw, label, found), label
    found_der = _sniff_der(data)
    if found_der in {"PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}:
        return _decrypt(serialization.load_der_private_key, data, pw, label, found_der), label
    if found_der is None:
        raise _not_pem_nor_der(label, data, "private key")
    raise _wrong_kind(label, [found_der], "a private key", _key_hint(found_der), der=True)


def _key_hint(found: str) -> str:
    if found in _CERT_LABELS:
        return (
            "This looks like the certificate: pass it as cert=, and the private key file"
            " (-----BEGIN PRIVATE KEY-----) as key=."
        )
    if found == "OPENSSH PRIVATE KEY":
        return "Convert it with `ssh-keygen -p -m PKCS8 -f FILE`, then pass the result as key=."
    if found == "PKCS#12":
        return "Pass cert=securelink.PKCS12(path) with password=, and leave key unset."
    if found in {"PUBLIC KEY", "RSA PUBLIC KEY"}:
        return "A public key cannot prove anything: pass the matching PRIVATE KEY file as key=."
    if found in {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}:
        return "A CSR is not a key: pass the private key that the CSR was made from as key=."
    return "Pass the private key file (-----BEGIN PRIVATE KEY-----) as key=."


def _warn_if_readable(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:  # pragma: no cover - it was just read
        return
    if mode & 0o077:
        _warn.warn(
            f"{path} holds a private key and can be read by group or others"
            f" (mode {stat.S_IMODE(mode):04o}). Restrict it with `chmod 600 {path}`.",
            SecurityWarning,
        )


def _load_pkcs12(
    bundle: PKCS12, password: Password | None, stamps: list[FileStamp]
) -> tuple[list[x509.Certificate], PrivateKeyTypes, str]:
    label = _describe(bundle.source, "PKCS#12 bundle")
    if isinstance(bundle.source, bytes | bytearray):
        check_size(bundle.source, label, "PKCS#12 bundle")
    data = (
        bytes(bundle.source)
        if isinstance(bundle.source, bytes | bytearray)
        else _read(bundle.source, "PKCS#12 bundle", stamps)
    )
    if not looks_like_pkcs12(data):
        found, described = _what_is(data, label)
        raise MaterialError(
            f"{label} holds {described}, not a PKCS#12 bundle.",
            source=label,
            found=found,
            hint="Use PKCS12(...) only for .p12/.pfx files; pass PEM or DER material as cert= and"
            " key=.",
        )
    pw = _password_bytes(password)
    key, cert, extra, _ = _open_pkcs12(data, pw, [pw] if pw is not None else [None, b""], label)
    if cert is None or key is None:
        missing = "certificate" if cert is None else "private key"
        raise MaterialError(
            f"{label} is a PKCS#12 bundle without a {missing}, so it is not a whole identity.",
            source=label,
            found="PKCS#12",
            hint="Export the bundle with both the certificate and its private key.",
        )
    if not isinstance(bundle.source, bytes | bytearray):
        _warn_if_readable(os.fspath(bundle.source))
    check_readable([cert, *extra], label, role="certificate")
    chain = _order_chain(cert, list(extra))
    return [cert, *chain], key, label


def _open_pkcs12(
    data: bytes, pw: bytes | None, attempts: Sequence[bytes | None], label: str
) -> tuple[PrivateKeyTypes | None, x509.Certificate | None, list[x509.Certificate], bytes | None]:
    """Open a PKCS#12 bundle with the first password in *attempts* that works.

    Returns:
        The key, the certificate, the other certificates, and the password that opened it.

    Raises:
        KeyPasswordError: no attempt opened it (*pw* says whether a password was given).
    """
    from cryptography.hazmat.primitives.serialization import pkcs12

    # Before any attempt: each one pays the bundle's key derivation again.
    refuse_excessive_work(data, label, "PKCS#12")
    error: Exception | None = None
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            return key, cert, list(extra), attempt
        except ValueError as exc:
            error = exc
    raise KeyPasswordError(
        f"{label} is a PKCS#12 bundle that "
        + (
            "is protected by a password, and none was given."
            if pw is None
            else "the password given does not open (or the bundle is corrupt)."
        ),
        source=label,
        reason="missing" if pw is None else "wrong",
        found="PKCS#12",
        hint="Pass the bundle's password as password=."
        if pw is None
        else "Check the password; `openssl pkcs12 -info -in FILE -noout` tests it.",
    ) from error


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    # PKCS#12 bundles carry their CA certificates in no particular order: walk up from the leaf.
    # Issuers are found by name through an index, so that the walk is linear in the number of
    # certificates (a search of the whole list at each step made 6,922 of them take a minute).
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for cert in reversed(others):  # reversed: pop() then gives the first one given
        by_subject.setdefault(cert.subject, []).append(cert)
    ordered: list[x509.Certificate] = []
    current = leaf
    while candidates := by_subject.get(current.issuer):
        parent = candidates.pop()  # each certificate is used once: the walk cannot loop
        if parent.subject == parent.issuer:
            break  # roots are not sent: the peer must already trust them
        ordered.append(parent)
        current = parent
    return ordered


# ---------------------------------------------------------------------------------------------
# Identity (certificate chain + key) checks


class Identity:
    """A certificate chain and its key, loaded and checked."""

    __slots__ = ("cert_label", "chain", "key", "key_label")

    def __init__(
        self,
        chain: tuple[x509.Certificate, ...],
        key: PrivateKeyTypes,
        cert_label: str,
        key_label: str,
    ) -> None:
        self.chain = chain
        self.key = key
        self.cert_label = cert_label
        self.key_label = key_label


def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _reason(exc: Exception) -> str:
    """Describe *exc* in cryptography's words, saying so when an algorithm is not supported."""
    from cryptography.exceptions import UnsupportedAlgorithm

    text = str(exc).strip().rstrip(".") or type(exc).__name__
    if isinstance(exc, UnsupportedAlgorithm):
        return f"its algorithm is not supported ({text})"
    if text == "Invalid key":  # OpenSSL's verdict on an EC point off its curve, among others
        return "the key is invalid (for an EC key, its point is not on its curve)"
    return text


def check_readable(
    certs: Sequence[x509.Certificate], label: str, *, role: str, signature: bool = False
) -> None:
    """Raise if a field of one of *certs* cannot be read (see :func:`unreadable_fields`).

    Raises:
        CertificateProblemError: ``problem == "unreadable-field"``, naming *label*, the
            certificate's subject (when that can be read) and the field.
    """
    for position, cert in enumerate(certs):
        bad = unreadable_fields(cert, signature=signature)
        if not bad:
            continue
        field, words, exc = bad[0]
        subject = "(unreadable subject)" if field == "subject" else _subject(cert)
        which = f"#{position + 1} " if len(certs) > 1 else ""
        noun = role if role.endswith("certificate") else f"{role} certificate"
        if field == "public-key" and role.startswith(("CA", "client CA")):
            message = (
                f"the {noun} {which}{subject!r} from {label} has a public key"
                f" securelink cannot use: {_reason(exc)}. Nothing it issued could be verified,"
                " so it is refused rather than trusted."
            )
        else:
            message = (
                f"the {noun} {which}{subject!r} from {label} cannot be used: its"
                f" {words} cannot be read: {_reason(exc)}."
            )
        raise CertificateProblemError(
            message,
            source=label,
            problem="unreadable-field",
            subject=subject,
            hint="The certificate is malformed or uses an algorithm this cryptography library"
            " does not support; `openssl x509 -noout -text -in FILE` shows what it holds. Get"
            " a well-formed copy, or have it reissued.",
        ) from exc


subject_of = _subject


def _names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def _check_validity(cert: x509.Certificate, label: str, role: str, now: datetime.datetime) -> None:
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > not_after:
        raise CertificateProblemError(
            f"the {role} certificate {_subject(cert)!r} from {label} expired on"
            f" {not_after:%Y-%m-%d %H:%M:%S} UTC, {duration(now - not_after)} ago.",
            source=label,
            problem="expired",
            subject=_subject(cert),
            not_before=not_before,
            not_after=not_after,
            hint="Renew it (issue a new certificate for the same names) and load the new file.",
        )
    if now < not_before:
        raise CertificateProblemError(
            f"the {role} certificate {_subject(cert)!r} from {label} is not valid until"
            f" {not_before:%Y-%m-%d %H:%M:%S} UTC, {duration(not_before - now)} from now.",
            source=label,
            problem="not-yet-valid",
            subject=_subject(cert),
            not_before=not_before,
            not_after=not_after,
            hint="Check this machine's clock and time zone; if the clock is right, wait or"
            " reissue the certificate with an earlier start date.",
        )


def _check_signature_hash(cert: x509.Certificate, label: str, role: str) -> None:
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in {"sha1", "md5"}:
        raise CertificateProblemError(
            f"the {role} certificate {_subject(cert)!r} from {label} is signed with"
            f" {algorithm.name.upper()}, which OpenSSL and every current client reject.",
            source=label,
            problem="sha1-signature" if algorithm.name == "sha1" else "md5-signature",
            subject=_subject(cert),
            hint="Reissue it with a SHA-256 signature.",
        )


def check_identity(
    chain: Sequence[x509.Certificate],
    key: PrivateKeyTypes,
    *,
    cert_label: str,
    key_label: str,
    role: str,
) -> Identity:
    """Check that *chain* and *key* form a usable identity for *role* ("server" or "client").

    Raises:
        KeyMismatchError: the key does not belong to the leaf.
        CertificateProblemError: no SAN (server), expired, not yet valid, chain out of order, a CA
            certificate as leaf, a weak key or signature, a field that cannot be read.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    # The loaders have read every other field; one's own chain also needs its signatures read.
    check_readable(chain, cert_label, role=role, signature=True)
    leaf = chain[0]
    subject = _subject(leaf)
    if leaf.public_key() != key.public_key():
        raise KeyMismatchError(
            f"the private key ({key_label}) does not belong to the certificate {subject!r}"
            f" ({cert_label}).",
            source=key_label,
            cert_source=cert_label,
            hint="Pass the key that was generated with this certificate (compare"
            " `openssl x509 -noout -pubkey` with `openssl pkey -pubout`); a renewal often comes"
            " with a new key.",
        )
    if _is_ca(leaf):
        raise CertificateProblemError(
            f"the {role} certificate {subject!r} from {cert_label} is a CA certificate"
            " (basicConstraints CA:TRUE), not a leaf.",
            source=cert_label,
            problem="ca-as-leaf",
            subject=subject,
            hint=f"Use the CA to issue a {role} certificate (minica, or securelink.devca in"
            " development) and use that; give the CA itself only as ca= or client_ca=.",
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise CertificateProblemError(
            f"the {role} certificate {subject!r} from {cert_label} has a {key.key_size}-bit RSA"
            f" key; OpenSSL and current clients refuse RSA keys under {MIN_RSA_BITS} bits.",
            source=cert_label,
            problem="weak-key",
            subject=subject,
            hint="Issue a new certificate with an ECDSA P-256 or RSA-2048 (or larger) key.",
        )
    if isinstance(key, dsa_key_classes()[0]) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size < 256
    ):
        raise CertificateProblemError(
            f"the {role} certificate {subject!r} from {cert_label} uses a key type or size"
            " that TLS clients no longer accept.",
            source=cert_label,
            problem="weak-key",
            subject=subject,
            hint="Issue a new certificate with an ECDSA P-256 or RSA-2048 (or larger) key.",
        )
    if role == "server" and not _names(leaf):
        raise CertificateProblemError(
            f"the server certificate {subject!r} from {cert_label} has no DNS or IP"
            " SubjectAltName. Clients check host names only against the SAN (the Common Name is"
            " ignored, as by browsers, Go and securelink), so no client could verify it.",
            source=cert_label,
            problem="no-san",
            subject=subject,
            hint="Reissue it with the server's names as SANs (for example"
            " `minica --domains example.internal`, securelink.devca.minica(), or openssl's"
            " -addext subjectAltName=DNS:example.internal).",
        )
    now = utcnow()
    for cert in chain:
        _check_validity(cert, cert_label, role if cert is leaf else "intermediate", now)
        _check_signature_hash(cert, cert_label, role if cert is leaf else "intermediate")
    for child, parent in itertools.pairwise(chain):
        if child.issuer != parent.subject or not _signed_by(child, parent):
            present = [_subject(c) for c in chain]
            raise CertificateProblemError(
                f"the certificate chain from {cert_label} is out of order: {_subject(child)!r}"
                f" is followed by {_subject(parent)!r}, which did not issue it. Chain as given:"
                f" {present}.",
                source=cert_label,
                problem="chain-out-of-order",
                subject=_subject(child),
                hint="Put the leaf first, then each certificate's issuer in turn; leave out the"
                " root (`cat leaf.pem intermediate.pem > chain.pem`).",
            )
    return Identity(tuple(chain), key, cert_label, key_label)


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        child.verify_directly_issued_by(parent)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # cryptography refuses to verify SHA-1 (and other legacy) signatures; check the
        # signature itself so that a legacy chain is still recognised as a chain.
        return child.issuer == parent.subject and _legacy_signature_ok(child, parent)
    return True


def _legacy_signature_ok(child: x509.Certificate, parent: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        key = parent.public_key()
        algorithm = child.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError, TypeError):  # unreadable: it proves nothing
        return False
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_identity_material(
    cert: tuple[object, ...],
    key: object,
    password: Password | None,
    *,
    role: str,
    stamps: list[FileStamp],
) -> Identity:
    """Load and check ``cert``/``key``/``password`` from options."""
    if len(cert) == 1 and isinstance(cert[0], PKCS12):
        chain, private_key, label = _load_pkcs12(cert[0], password, stamps)
        return check_identity(chain, private_key, cert_label=label, key_label=label, role=role)
    chain = []
    labels = []
    for item in cert:
        certs, label = load_certificates(item, what="certificate", stamps=stamps)
        chain.extend(certs)
        labels.append(label)
    # Paths are worth listing; descriptions of in-memory objects would only repeat themselves.
    in_memory = [lab for lab in labels if lab.startswith("the ")]
    cert_label = (
        ", ".join(labels)
        if not in_memory
        else labels[0] + (f" and {len(labels) - 1} more" if len(labels) > 1 else "")
    )
    if key is None:
        # Only a lone cert= named .p12/.pfx gets here (the options refuse every other cert
        # without key): it held certificates after all, not the PKCS#12 bundle its name says.
        raise ConfigurationError(
            f"cert was given without key ({cert_label} holds a certificate, not a PKCS#12"
            " bundle): a certificate is useless without its private key.",
            field="key",
            hint="Pass key= as well; for a file holding both, pass the same path to cert= and"
            " key=.",
        )
    private_key, key_label = load_private_key(key, password, stamps=stamps)
    return check_identity(chain, private_key, cert_label=cert_label, key_label=key_label, role=role)


def load_identity(ctx: ssl.SSLContext, identity: Identity) -> None:
    """Give *identity* to *ctx* without writing plaintext key material to disk.

    On Linux the PEM goes into an anonymous memory file (``memfd_create``) that OpenSSL reads
    through ``/proc/self/fd``.  Elsewhere, or if that fails, the key is written *encrypted* with a
    random one-time password to a 0600 temporary file that is removed as soon as OpenSSL has read
    it.
    """
    from cryptography.hazmat.primitives import serialization

    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in identity.chain)
    if _memfd_supported():
        key_pem = identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            _load_via_memfd(ctx, key_pem + chain_pem)
            return
        except _MemfdUnavailable:
            pass
    _load_via_encrypted_tempfile(ctx, identity, chain_pem)


class _MemfdUnavailable(Exception):
    pass


def _memfd_supported() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _load_via_memfd(ctx: ssl.SSLContext, pem: bytes) -> None:
    try:
        fd = os.memfd_create("securelink-identity", os.MFD_CLOEXEC)
    except OSError as exc:  # seccomp filters or old kernels
        raise _MemfdUnavailable from exc
    try:
        view = memoryview(pem)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _load_via_encrypted_tempfile(ctx: ssl.SSLContext, identity: Identity, chain: bytes) -> None:
    import secrets
    import tempfile

    from cryptography.hazmat.primitives import serialization

    one_time = secrets.token_urlsafe(32)
    key_pem = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode()),
    )
    # mkstemp creates the file with O_EXCL and mode 0600.
    fd, path = tempfile.mkstemp(prefix="securelink-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + chain)
        ctx.load_cert_chain(path, password=one_time)
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------------------------
# Trust (CA sets)


class CASet:
    """What a context should trust, resolved from ``ca`` / ``client_ca``."""

    __slots__ = ("certifi", "certificates", "labels", "system")

    def __init__(self) -> None:
        self.certifi = False
        self.system = False
        self.certificates: list[x509.Certificate] = []
        self.labels: list[str] = []

    def cadata(self) -> str | None:
        """All explicit certificates as one PEM string, for ``load_verify_locations``."""
        # Checked before the import: a context that trusts only certifi or the system store must
        # not pay for importing cryptography (10 to 20 ms, which made the first such context
        # cost 1.5x the standard library's).
        if not self.certificates:
            return None
        from cryptography.hazmat.primitives import serialization

        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in self.certificates
        )


def _iter_ca_sources(source: object, stamps: list[FileStamp]) -> Iterable[object]:
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if os.path.isdir(path):
            st = os.stat(path)
            stamps.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
            entries = sorted(
                e
                for e in os.listdir(path)
                if not e.startswith(".") and os.path.isfile(os.path.join(path, e))
            )
            if not entries:
                raise MaterialError(
                    f"{path} is a directory with no files in it; it was given as the CA.",
                    source=path,
                    found="empty directory",
                    hint="Put the CA certificates (PEM or DER files) in it, or name the CA file.",
                )
            for entry in entries:
                yield os.path.join(path, entry)
            return
    yield source


def load_cas(sources: tuple[object, ...], *, what: str, stamps: list[FileStamp]) -> CASet:
    """Resolve CA sources into a :class:`CASet`, checking that each one holds a usable CA.

    A source that holds no certificate, or only non-CA certificates, is an error; so is a set in
    which every CA certificate has expired.  Some expired CAs among valid ones give a
    :class:`~securelink.SecurityWarning`.
    """
    result = CASet()
    for source in sources:
        if source is Trust.CERTIFI:
            result.certifi = True
            continue
        if source is Trust.SYSTEM:
            result.system = True
            continue
        for item in _iter_ca_sources(source, stamps):
            certs, label = load_certificates(item, what=what, stamps=stamps)
            cas = [c for c in certs if _is_ca(c)]
            if not cas:
                leaf = certs[0]
                raise CertificateProblemError(
                    f"{label} holds no CA certificate: {_subject(leaf)!r} is a leaf"
                    f" (issued by {leaf.issuer.rfc4514_string()!r}), and only CA certificates"
                    f" can be trusted as {what}.",
                    source=label,
                    problem="no-ca-certificate",
                    subject=_subject(leaf),
                    hint="Trust the CA that issued it (minica writes it as minica.pem), not the"
                    " leaf itself.",
                )
            result.certificates.extend(cas)
            result.labels.append(label)
    _check_ca_expiry(result, what)
    return result


def _check_ca_expiry(result: CASet, what: str) -> None:
    if not result.certificates:
        return
    now = utcnow()
    expired = [c for c in result.certificates if c.not_valid_after_utc < now]
    if not expired:
        return
    listing = ", ".join(
        f"{_subject(c)!r} (expired {c.not_valid_after_utc:%Y-%m-%d})" for c in expired
    )
    if len(expired) == len(result.certificates) and not (result.certifi or result.system):
        first = expired[0]
        raise CertificateProblemError(
            f"every {what} certificate given has expired: {listing}; nothing could be verified"
            " against them.",
            source=", ".join(result.labels),
            problem="all-cas-expired",
            subject=_subject(first),
            not_before=first.not_valid_before_utc,
            not_after=first.not_valid_after_utc,
            hint="Replace the CA certificate with its renewed version.",
        )
    _warn.warn(
        f"Some {what} certificates have expired and will not verify anything: {listing}.",
        SecurityWarning,
    )
