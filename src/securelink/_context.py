"""Options -> plain :class:`ssl.SSLContext` objects, with secure defaults and an opt-in cache."""

from __future__ import annotations

import errno
import os
import ssl
import stat
import threading
from collections import OrderedDict

from . import _hooks, _hostnames, _material, _translate, _x509
from ._options import ClientAuth, ClientOptions, Profile, ServerOptions, UnknownNames
from ._sockets import SecureLinkSSLObject, SecureLinkSSLSocket
from ._summary import CertificateSummary
from .errors import ConfigurationError, MaterialError

TYPE_CHECKING = False  # typing is not imported at run time, to keep `import securelink` cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    _O = TypeVar("_O", ClientOptions, ServerOptions)

__all__ = ["MOZILLA_INTERMEDIATE_CIPHERS", "client_context", "server_context"]

#: TLS 1.2 cipher suites: Mozilla's "intermediate" list (v5.8), all ECDHE and AEAD.  5.8 dropped the
#: ``DHE-RSA-*`` suites, which a Python server without DH parameters never negotiates anyway.
#: TLS 1.3 suites are all AEAD with forward secrecy already and are left at OpenSSL's defaults.
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


_VERIFY_MODES = {
    ClientAuth.NONE: ssl.CERT_NONE,
    ClientAuth.VERIFY_IF_GIVEN: ssl.CERT_OPTIONAL,
    ClientAuth.REQUIRE_AND_VERIFY: ssl.CERT_REQUIRED,
}

# With shared=True (and inside securelink's own helpers), contexts built from equal options are
# shared, so the ~20 ms certifi parse is paid once.  The cache is bounded so that programs
# building many distinct option sets do not grow without end.
_CACHE_SIZE = 64
_cache: OrderedDict[object, _Entry] = OrderedDict()
_lock = threading.Lock()


class _Entry:
    __slots__ = ("context", "stamps")

    def __init__(self, context: ssl.SSLContext, stamps: tuple[_x509.FileStamp, ...]) -> None:
        self.context = context
        self.stamps = stamps


def _harden(
    ctx: ssl.SSLContext,
    min_version: ssl.TLSVersion,
    max_version: ssl.TLSVersion | None,
    alpn: Sequence[str],
) -> None:
    # TLS 1.0 and 1.1 are deprecated (RFC 8996); the options refuse anything below 1.2.
    ctx.minimum_version = min_version
    ctx.maximum_version = max_version or ssl.TLSVersion.MAXIMUM_SUPPORTED
    # AEAD ciphers with forward secrecy only, for TLS 1.2 (TLS 1.3 has nothing else).
    ctx.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    # CRIME: compression leaks plaintext lengths (the stdlib sets this too; keep it explicit).
    ctx.options |= ssl.OP_NO_COMPRESSION
    # Renegotiation is a recurring source of attacks and TLS 1.3 dropped it.
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    # A fresh ECDH key per handshake, so one leaked handshake key exposes one session only.
    ctx.options |= ssl.OP_SINGLE_ECDH_USE
    # RFC 5280 strictness on every Python version, as 3.13's create_default_context does, and
    # partial chains so that an intermediate given as trust anchor is one (also as 3.13, and Go).
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    if alpn:
        ctx.set_alpn_protocols(list(alpn))


def _keylog(ctx: ssl.SSLContext, path: str | os.PathLike[str] | None) -> None:
    # Only when asked for: SSLKEYLOGFILE is never read (we never call create_default_context).
    if path is None:
        return
    target = os.fspath(path)
    checked = _keylog_file(target)
    # CPython opens the file itself, by its path: make sure that what it opened is the file
    # checked above (a link swapped in meanwhile would send the secrets elsewhere).
    ctx.keylog_filename = target
    try:
        now: os.stat_result | None = os.stat(target, follow_symlinks=False)
    except OSError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (checked.st_dev, checked.st_ino):
        ctx.keylog_filename = None  # type: ignore[assignment]  # closes it: nothing written
        raise ConfigurationError(
            f"the key log file {target} was replaced while it was being opened.",
            field="keylog",
            hint="Keep the key log in a directory only you can write to.",
        )


def _keylog_refused(target: str, problem: str, hint: str) -> ConfigurationError:
    return ConfigurationError(f"the key log file {target} {problem}.", field="keylog", hint=hint)


_NOT_A_LINK_HINT = (
    "Name the file itself, not a link to it: securelink does not follow links for a file that"
    " receives session secrets."
)
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def _keylog_file(target: str) -> os.stat_result:
    """Create *target* 0600, or check the regular file there; never follow a link to it.

    The key log receives every session's secrets, so: a link is refused (its target could be
    anyone's file), and so is anything but a regular file (a FIFO or a device would be opened,
    with their side effects); a new file is created 0600; an existing file is never changed
    (not even its mode), and is refused if it belongs to another user or if anyone but its
    owner may read or write it.
    """
    try:
        before: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise _cannot(target, exc) from exc
    if before is not None:
        # Checked before opening: opening a FIFO or a device is not harmless.
        if stat.S_ISLNK(before.st_mode):
            raise _keylog_refused(target, "is a symbolic link", _NOT_A_LINK_HINT)
        if not stat.S_ISREG(before.st_mode):
            raise _keylog_refused(
                target, f"is {_kind(before.st_mode)}", "Name a regular file for the key log."
            )
    # O_NOFOLLOW and O_NONBLOCK: what was checked may be replaced by a link or a FIFO before
    # this open, which then fails (ELOOP) or does not block; fstat below says what it opened.
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    created = False
    try:
        try:
            fd = os.open(target, flags | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
        except FileExistsError:
            fd = os.open(target, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _keylog_refused(target, "is a symbolic link", _NOT_A_LINK_HINT) from exc
        raise _cannot(target, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _keylog_refused(
                target, f"is {_kind(info.st_mode)}", "Name a regular file for the key log."
            )
        if created:
            # Ours: exactly 0600, whatever the umask left.
            os.fchmod(fd, 0o600)
            return os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise _keylog_refused(
                target,
                f"belongs to another user (uid {info.st_uid}), who could read the secrets",
                "Name a file of your own, or one that does not exist yet (securelink creates"
                " it with mode 0600).",
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise _keylog_refused(
                target,
                f"may be read or written by others (mode {mode:04o}); securelink does not"
                " change the mode of an existing file",
                f"Run `chmod 600 {target}` if it is yours to change, or name a file that does"
                " not exist yet (securelink creates it with mode 0600).",
            )
        return info
    finally:
        os.close(fd)


def _cannot(target: str, exc: OSError) -> ConfigurationError:
    return _keylog_refused(
        target,
        f"cannot be created: {exc.strerror or exc}",
        "Point keylog at a writable location.",
    )


def _load_trust(ctx: ssl.SSLContext, cas: _material.CASet, stamps: list[_x509.FileStamp]) -> None:
    if cas.certifi:
        import certifi

        where = certifi.where()
        ctx.load_verify_locations(cafile=where)
        found = _material.stamp(where)
        if found is not None:
            stamps.append(found)
    if cas.system:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        paths = ssl.get_default_verify_paths()
        for path in (paths.cafile, paths.capath):
            found = _material.stamp(path) if path else None
            if found is not None:
                stamps.append(found)
    cadata = cas.cadata()
    if cadata is not None:
        try:
            ctx.load_verify_locations(cadata=cadata)
        except ssl.SSLError as exc:  # pragma: no cover - cryptography already parsed them
            raise MaterialError(
                f"OpenSSL refused the CA certificates from {', '.join(cas.labels)}: {exc}.",
                source=", ".join(cas.labels),
                found="CERTIFICATE",
                hint="Check them with `openssl x509 -noout -text -in FILE`.",
            ) from exc


def _load_own(
    ctx: ssl.SSLContext,
    options: ClientOptions | ServerOptions,
    role: str,
    stamps: list[_x509.FileStamp],
) -> CertificateSummary:
    identity = _material.load_identity_material(
        options._cert, options.key, options.password, role=role, stamps=stamps
    )
    try:
        _material.load_identity(ctx, identity)
    except ssl.SSLError as exc:
        # Everything cryptography can see was checked; this is OpenSSL's own policy speaking.
        raise MaterialError(
            f"OpenSSL refused the {role} certificate from {identity.cert_label} with key"
            f" {identity.key_label}: {exc.reason or exc}.",
            source=identity.cert_label,
            found="CERTIFICATE",
            hint="Check the certificate with `openssl x509 -noout -text -in FILE`.",
        ) from exc
    return CertificateSummary.from_certificate(identity.chain[0])


_OBJECT_LABEL = "the x509.Certificate for "  # _material's label for an x509.Certificate
_MEMORY_LABELS = ("the in-memory CA", "the in-memory client CA")  # ...and for bytes


def _describe_trust(cas: _material.CASet) -> str:
    """What *cas* trusts, in words: "ca.pem with CN=Root", "the CA certificate CN=Root"."""
    parts = []
    if cas.certifi:
        parts.append("the certifi bundle")
    if cas.system:
        parts.append("the operating system's store")
    subjects = [_material.subject_of(c) for c in cas.certificates]
    # The certificates are in the order of their sources (cas.labels).  An x509.Certificate
    # holds exactly one; when one other source remains, it holds the rest.
    sizes = [1 if label.startswith(_OBJECT_LABEL) else 0 for label in cas.labels]
    unknown = [i for i, size in enumerate(sizes) if not size]
    if len(unknown) == 1:
        sizes[unknown[0]] = len(subjects) - sum(sizes)
    if len(unknown) > 1:
        # Several files (a CA directory) or byte strings: their shares are not recorded.
        files = [label for label in cas.labels if not _in_memory(label)]
        if len(files) < len(cas.labels):
            files.append("CA certificates given in memory")
        parts.append(f"{', '.join(files)} with {_subjects(subjects)}")
        return " and ".join(parts)
    start = 0
    memory: list[str] = []  # consecutive in-memory certificates read as one phrase
    for label, size in zip(cas.labels, sizes, strict=True):
        mine = subjects[start : start + size]
        start += size
        if _in_memory(label):
            memory += mine
            continue
        if memory:
            parts.append(_memory_phrase(memory))
            memory = []
        parts.append(f"{label} with {_subjects(mine)}")
    if memory:
        parts.append(_memory_phrase(memory))
    return " and ".join(parts) or "nothing"


def _in_memory(label: str) -> bool:
    return label.startswith(_OBJECT_LABEL) or label in _MEMORY_LABELS


def _memory_phrase(subjects: list[str]) -> str:
    return f"the CA certificate{'s' if len(subjects) > 1 else ''} {_subjects(subjects)}"


def _subjects(subjects: list[str]) -> str:
    more = f" and {len(subjects) - 3} more" if len(subjects) > 3 else ""
    return ", ".join(subjects[:3]) + more


def _finish(
    ctx: ssl.SSLContext,
    role: str,
    options: ClientOptions | ServerOptions,
    trusted: str,
    identity: CertificateSummary | None,
) -> None:
    # Failures anywhere this context is used are explained by these classes (see _sockets).
    ctx.sslsocket_class = SecureLinkSSLSocket
    ctx.sslobject_class = SecureLinkSSLObject
    # wrap_bio (asyncio) encodes the server name with the IDNA 2003 codec before the object
    # class sees it, and straße would become strasse unseen: the name is checked instead (an
    # attribute of this instance; the stdlib has no other hook there).
    ctx._encode_hostname = _hostnames.encode_hostname  # type: ignore[attr-defined]
    checks: list[_hooks.Check] = []
    if isinstance(options, ServerOptions) and options.allowed_peers:
        checks.append(("allowed_peers", _hooks.allowed_peers_check(options.allowed_peers)))
    if isinstance(options, ClientOptions) and options.pin_public_keys:
        checks.append(("pin_public_keys", _hooks.pin_check(options.pin_public_keys)))
    if options.verify_connection is not None:
        checks.append(("verify_connection", options.verify_connection))
    if checks:
        _hooks.register(ctx, _hooks.Hooks(tuple(checks)))
    if isinstance(options, ServerOptions) and (
        checks or options.on_server_name is not None or options._names
    ):
        # Records the requested name for ConnectionInfo, runs on_server_name, and picks the
        # certificate for the name (Go's GetCertificate).
        ctx.sni_callback = _hooks.server_name_callback(
            options.on_server_name,
            _contexts_by_name(options) if options._names else None,
            reject_unknown=options.unknown_names is UnknownNames.REJECT,
        )
    if options.trace is not None:
        # Opt-in only: CPython calls this for every TLS record, which halves bulk throughput.
        ctx._msg_callback = _hooks.make_tracer(options.trace)  # type: ignore[attr-defined]
    low = _translate._version_name(options.min_version)
    high = _translate._version_name(options.max_version or ssl.TLSVersion.MAXIMUM_SUPPORTED)
    _translate.register(
        ctx,
        _translate.ContextFacts(
            role=role,
            trusted=trusted,
            versions=(low, high),
            identity=identity,
            diagnose=not isinstance(options, ClientOptions) or options.diagnose,
        ),
    )


def _contexts_by_name(options: ServerOptions) -> dict[str, ssl.SSLContext]:
    # One full context per name: the same policy, another certificate.  The handshake switches
    # to it in the SNI callback, before the certificate is sent.
    return {
        name: server_context(
            options.replace(
                cert=identity.cert,
                key=identity.key,
                password=identity.password,
                certificates_by_name=None,
                unknown_names=UnknownNames.DEFAULT,
            ),
            shared=False,
        )
        for name, identity in options._names
    }


def _modern_groups(ctx: ssl.SSLContext) -> None:
    # Mozilla "modern" lists X25519, P-256 and P-384; OpenSSL also offers X448 and P-521, which
    # scanners flag.  Before Python 3.15 the stdlib can set only one group: X25519, which every
    # TLS 1.3 client has and which clients send their key share for first (no extra round trip).
    # Clients limited to NIST curves (FIPS builds) cannot connect; docs/profiles explains.
    set_groups = getattr(ctx, "set_groups", None)
    if set_groups is not None:  # pragma: no cover - Python 3.15+
        set_groups("X25519:prime256v1:secp384r1")
    else:
        ctx.set_ecdh_curve("X25519")


def _build_client(options: ClientOptions) -> _Entry:
    stamps: list[_x509.FileStamp] = []
    # PROTOCOL_TLS_CLIENT: the client-only method, with verification and hostname checks on.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Verification is never optional on the client: an unverified server could be anyone.
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    # SAN only: a certificate with just a Common Name never matches (RFC 6125, as Go and browsers).
    ctx.hostname_checks_common_name = False
    _harden(ctx, options.min_version, options.max_version, options.alpn)
    cas = _material.load_cas(options._ca, what="CA", stamps=stamps)
    _load_trust(ctx, cas, stamps)
    identity = _load_own(ctx, options, "client", stamps) if options._cert else None
    _keylog(ctx, options.keylog)
    _finish(ctx, "client", options, _describe_trust(cas), identity)
    return _Entry(ctx, tuple(stamps))


def _build_server(options: ServerOptions) -> _Entry:
    stamps: list[_x509.FileStamp] = []
    # PROTOCOL_TLS_SERVER: the server-only method; client settings cannot leak in.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx, options.min_version, options.max_version, options.alpn)
    if options.profile is Profile.MODERN:
        _modern_groups(ctx)
    identity = _load_own(ctx, options, "server", stamps)
    trusted = "no client CA (client certificates are not requested)"
    if options.client_auth is not ClientAuth.NONE:
        cas = _material.load_cas(options._client_ca, what="client CA", stamps=stamps)
        _load_trust(ctx, cas, stamps)
        trusted = _describe_trust(cas)
    # Mutual TLS: ask for (and verify) client certificates only when asked to.
    ctx.verify_mode = _VERIFY_MODES[options.client_auth]
    _keylog(ctx, options.keylog)
    _finish(ctx, "server", options, trusted, identity)
    return _Entry(ctx, tuple(stamps))


def _fresh(entry: _Entry) -> bool:
    return all(_material.stamp(s[0]) == s for s in entry.stamps)


class _Build:
    """A build of a shared context in progress: the threads that want the same one wait for it."""

    __slots__ = ("done", "entry", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: _Entry | None = None
        self.error: BaseException | None = None


#: The builds in progress, by key (under _lock): on a cold cache, 16 threads asking for equal
#: options would otherwise parse the certifi bundle 16 times (about 20 ms each, and the GIL).
_building: dict[object, _Build] = {}


def _shared(key: object, build: Callable[[_O], _Entry], options: _O) -> ssl.SSLContext:
    try:
        hash(key)
    except TypeError:  # an unhashable component (a custom password object): no sharing
        return build(options).context
    with _lock:
        entry = _cache.get(key)
        if entry is not None and _fresh(entry):
            _cache.move_to_end(key)
            return entry.context
        pending = _building.get(key)
        mine = pending is None
        if pending is None:
            pending = _building[key] = _Build()
    if not mine:
        # Another thread is building this very context: its result (or its error) is ours.
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None
        return pending.entry.context
    built: _Entry | None = None
    try:
        built = build(options)
    except BaseException as exc:
        pending.error = exc
        raise
    finally:
        # Whatever happened, the waiters are released and the next call may build again.
        with _lock:
            del _building[key]
            if built is not None:
                _cache[key] = built
                _cache.move_to_end(key)
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
                pending.entry = built
        pending.done.set()
    return built.context


def client_context(
    options: ClientOptions | None = None, /, *, shared: bool = False
) -> ssl.SSLContext:
    """Build a client :class:`ssl.SSLContext` from *options*.

    The result is a plain ``ssl.SSLContext`` (not a subclass or proxy) with secure defaults: TLS 1.2
    or newer, certificate verification and hostname checks on, hostnames matched against the
    SubjectAltName only, ``VERIFY_X509_STRICT``, AEAD cipher suites with forward secrecy, no
    compression, no renegotiation, and ``SSLKEYLOGFILE`` ignored.

    Each call returns a **new** context, as :func:`ssl.create_default_context` does, because the
    libraries a context is handed to change it: httpx sets its ALPN protocols, and urllib3 (under
    requests) loads certifi's bundle into it, widening what it trusts.  A new context is yours
    alone.  It costs one parse of the trust store: with the certifi bundle, about what
    ``ssl.create_default_context(cafile=certifi.where())`` costs.

    ``shared=True`` returns the process-wide context for these options instead: equal options
    built from the same files give the same object, so the bundle is parsed once per process;
    it is rebuilt when a file it was built from changes.  Opt in where contexts are built often
    (per request, per client object) and are only ever passed to code that does not change
    them, such as ``wrap_socket``, ``asyncio`` or ``http.client``.  **Never mutate a shared
    context**, and do not hand one to httpx or to requests' adapters.

    Args:
        options: What to trust and who to be; ``None`` means ``ClientOptions()`` (trust the certifi
            bundle, no client certificate).
        shared: Return the process-wide context for these options, or build a new one (default).

    Returns:
        A context for ``wrap_socket(..., server_hostname=...)``,
        ``asyncio.open_connection(ssl=...)``, ``http.client``, ``urllib``, httpx's ``verify=`` or
        aiohttp's ``ssl=``.

    Raises:
        MaterialError: a certificate, key or CA cannot be used (see its subclasses).
        ConfigurationError: the key log file cannot be created.

    .. versionchanged:: 0.2.0
       A new context by default; the shared one only with ``shared=True``.
    """
    if options is None:
        options = ClientOptions()
    if not isinstance(options, ClientOptions):
        raise TypeError(f"client_context() takes ClientOptions, not {type(options).__name__}")
    if not shared:
        return _build_client(options).context
    return _shared(("client", options), _build_client, options)


def server_context(options: ServerOptions, /, *, shared: bool = False) -> ssl.SSLContext:
    """Build a server :class:`ssl.SSLContext` from *options*.

    The result is a plain ``ssl.SSLContext`` with the server's certificate chain and key loaded
    (from memory, never as plaintext on disk), TLS 1.2 or newer, AEAD cipher suites with forward
    secrecy, no compression, no renegotiation, and client certificates requested and verified
    according to ``options.client_auth``.

    Like :func:`client_context`, each call returns a new context, yours to change (a server
    framework may set ALPN or callbacks on it).  ``shared=True`` returns the process-wide
    context for equal options (rebuilt when a file changes), which must never be mutated.

    Args:
        options: The server's identity and client-certificate policy.
        shared: Return the process-wide context for these options, or build a new one (default).

    Returns:
        A context for ``wrap_socket(..., server_side=True)`` or ``asyncio.start_server(ssl=...)``.

    Raises:
        MaterialError: a certificate, key or CA cannot be used (see its subclasses).
        ConfigurationError: the key log file cannot be created.

    .. versionchanged:: 0.2.0
       A new context by default; the shared one only with ``shared=True``.
    """
    if not isinstance(options, ServerOptions):
        raise TypeError(f"server_context() takes ServerOptions, not {type(options).__name__}")
    if not shared:
        return _build_server(options).context
    return _shared(("server", options), _build_server, options)


def clear_cache() -> None:
    """Forget every shared context (the next call rebuilds)."""
    with _lock:
        _cache.clear()
