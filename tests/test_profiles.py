"""Mozilla's server-side TLS profiles, checked by sslyze against securelink server contexts.

Each scan serves a securelink server context on 127.0.0.1:0 and runs the scan commands behind
``sslyze --mozilla_config=...`` (its TLS configuration checker, Mozilla guidelines 5.7), trusting
the development CA.  Where the profile can be met, the test asserts compliance; where the
standard library cannot meet it yet, the test asserts the exact remaining finding, so that any
change (a new Python, a new OpenSSL, a change to securelink's contexts) shows up here.

The one finding: before Python 3.15 a context cannot be given a *list* of key-exchange groups
(``SSLContext.set_ecdh_curve`` sets exactly one), so a context either keeps OpenSSL's default
list, which offers X448 and P-521 beyond Mozilla's X25519, P-256 and P-384, or offers one group
only.  The trade-off of each single group is measured in TestGroupTradeoffs.

sslyze is not in the ``test`` extra: it pins ``cryptography<47``, which would downgrade the
cryptography the rest of the suite tests against.  Without it these scans are skipped, with the
reason shown in pytest's summary.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

import securelink
from securelink import ProtocolMismatchError
from securelink.devca import CertificateAuthority, IssuedCertificate, KeyType, Usage

from .helpers import handshake

HAVE_SSLYZE = importlib.util.find_spec("sslyze") is not None
if not HAVE_SSLYZE and os.environ.get("SECURELINK_REQUIRE_SSLYZE"):
    # CI's profile step sets this: there, a missing scanner is a failure, never a skip.
    raise RuntimeError("SECURELINK_REQUIRE_SSLYZE is set but sslyze is not installed")
needs_sslyze = [
    pytest.mark.sslyze,
    pytest.mark.skipif(
        not HAVE_SSLYZE,
        reason="sslyze is not installed (not in the test extra: it pins cryptography<47)",
    ),
    # sslyze's bundled trust stores hold a certificate with a negative serial number, which
    # cryptography >= 45 warns about while sslyze loads them (in its worker threads).
    pytest.mark.filterwarnings(
        "ignore:Parsed a serial number which wasn't positive"
        ":cryptography.utils.CryptographyDeprecationWarning"
    ),
]

REPO = Path(__file__).resolve().parent.parent
#: How long one scan may take; a loopback scan takes about a second.
SCAN_TIMEOUT = 60.0
#: Each connection of the scanned server gives up after this long.
CONNECTION_TIMEOUT = 5.0
#: Within both profiles' certificate lifespan limits (Mozilla: 366 days intermediate, 90 modern).
LIFETIME = datetime.timedelta(days=90)

#: Mozilla's groups (5.7: X25519, prime256v1, secp384r1), under the names sslyze reports.
MOZILLA_GROUPS = frozenset({"X25519", "secp256r1", "secp384r1"})
#: What OpenSSL 3's default group list offers beyond Mozilla's.
OPENSSL_EXTRA_GROUPS = frozenset({"X448", "secp521r1"})

#: The groups the default (intermediate) server context offers beyond Mozilla's list:
#: OpenSSL's defaults.  Before Python 3.15 the stdlib can narrow them only to a single group,
#: which costs an extra round trip (P-256) or old clients (X25519), so securelink leaves them;
#: docs/profiles.md explains the trade-off.  From 3.15, set_groups() fixes it.
DEFAULT_CONTEXT_EXTRA_GROUPS = OPENSSL_EXTRA_GROUPS
#: Profile.MODERN narrows the groups to X25519 (TLS 1.3 clients all have it): none extra.
MODERN_CONTEXT_EXTRA_GROUPS: frozenset[str] = frozenset()

#: The TLS 1.2 suites Mozilla's intermediate profile allows that an ECDSA or an RSA certificate
#: can use.  sslyze checks against 5.7, which also allows DHE suites; 5.8 dropped them, and
#: securelink does not list them (nor could the stdlib negotiate them without DH parameters).
ECDHE_SUITES = {
    KeyType.ECDSA_P256: frozenset(
        {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        }
    ),
    KeyType.RSA_2048: frozenset(
        {
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        }
    ),
}
TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)


# --- a server that sslyze can scan -----------------------------------------------------------


@contextmanager
def serving(ctx: ssl.SSLContext) -> Iterator[int]:
    """Serve *ctx* on 127.0.0.1:0, many connections at once; yield the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def converse(conn: socket.socket) -> None:
        conn.settimeout(CONNECTION_TIMEOUT)
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                # Keep reading until the scanner closes: some checks (renegotiation) send more
                # handshake messages after the first.
                while tls.recv(4096):
                    pass
        except (OSError, ssl.SSLError):
            pass  # the scanner tries many things that are meant to fail
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=converse, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(CONNECTION_TIMEOUT)
        listener.close()
        for worker in workers:
            worker.join(CONNECTION_TIMEOUT)
        assert not acceptor.is_alive()
        assert not any(w.is_alive() for w in workers), "a scanned connection did not end"


# --- scanning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """What sslyze found, reduced to plain data."""

    #: The checker's findings, by its keys ("tls_curves", "ciphers"...); empty means compliant.
    issues: dict[str, str]
    curves: frozenset[str]
    versions: frozenset[str]
    tls12_suites: frozenset[str]
    tls13_suites: frozenset[str]
    seconds: float

    @property
    def extra_groups(self) -> frozenset[str]:
        """The groups the server accepts that the profile does not list."""
        return self.curves - MOZILLA_GROUPS


def scan(port: int, root_pem: bytes, profile: str, workdir: Path) -> Scan:
    """Scan 127.0.0.1:*port* (as localhost) against Mozilla's *profile*, trusting *root_pem*."""
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )
    from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
    from sslyze.scanner.models import (
        ScanCommandsExtraArguments,
        ServerScanRequest,
        ServerScanResult,
        ServerScanStatusEnum,
    )
    from sslyze.scanner.scanner import Scanner
    from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

    ca_file = workdir / "root.pem"
    ca_file.write_bytes(root_pem)
    request = ServerScanRequest(
        server_location=ServerNetworkLocation("localhost", port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(
            "localhost", network_timeout=int(CONNECTION_TIMEOUT), network_max_retries=1
        ),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)
        ),
    )
    results: list[ServerScanResult] = []

    def run() -> None:
        scanner = Scanner()
        scanner.queue_scans([request])
        results.extend(scanner.get_results())

    started = time.monotonic()
    # sslyze has no overall time limit: run it in a thread, and fail (not hang) past ours.
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(SCAN_TIMEOUT)
    assert not worker.is_alive(), f"the sslyze scan took more than {SCAN_TIMEOUT} s"
    seconds = time.monotonic() - started
    [result] = results
    assert result.scan_status is ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    try:
        check_server_against_tls_configuration(
            result, MozillaTlsConfiguration.get(TlsConfigurationEnum(profile))
        )
        issues: dict[str, str] = {}
    except ServerNotCompliantWithTlsConfiguration as exc:
        issues = dict(exc.issues)
    found = result.scan_result
    assert found is not None
    curves = found.elliptic_curves.result
    assert curves is not None
    by_version = {
        "TLSv1.2": found.tls_1_2_cipher_suites.result,
        "TLSv1.3": found.tls_1_3_cipher_suites.result,
        "TLSv1.1": found.tls_1_1_cipher_suites.result,
        "TLSv1": found.tls_1_0_cipher_suites.result,
    }
    suites: dict[str, frozenset[str]] = {}
    for version, suite_result in by_version.items():
        assert suite_result is not None
        suites[version] = frozenset(
            s.cipher_suite.name for s in suite_result.accepted_cipher_suites
        )
    return Scan(
        issues=issues,
        curves=frozenset(c.name for c in curves.supported_curves or ()),
        versions=frozenset(v for v, names in suites.items() if names),
        tls12_suites=suites["TLSv1.2"],
        tls13_suites=suites["TLSv1.3"],
        seconds=seconds,
    )


def scan_context(
    ctx: ssl.SSLContext, ca: CertificateAuthority, profile: str, workdir: Path
) -> Scan:
    """Serve *ctx* and scan it against *profile*."""
    with serving(ctx) as port:
        return scan(port, ca.cert_pem, profile, workdir)


# --- certificates ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leaves(
    ca: CertificateAuthority, rsa_ca: CertificateAuthority
) -> dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]]:
    """An ECDSA and an RSA server certificate, each from a CA of its own kind, valid 90 days."""
    return {
        key_type: (
            issuer,
            issuer.issue(
                "localhost", "127.0.0.1", usage=Usage.SERVER, key_type=key_type, valid_for=LIFETIME
            ),
        )
        for key_type, issuer in ((KeyType.ECDSA_P256, ca), (KeyType.RSA_2048, rsa_ca))
    }


KEY_TYPES = pytest.mark.parametrize(
    "key_type", [KeyType.ECDSA_P256, KeyType.RSA_2048], ids=["ecdsa", "rsa"]
)


def private_context(leaf: IssuedCertificate, **options: object) -> ssl.SSLContext:
    """A context of our own (shared=False), so that changing its groups touches no other test."""
    return securelink.server_context(leaf.server_options(**options), shared=False)


def with_group(ctx: ssl.SSLContext, group: str) -> ssl.SSLContext:
    """*ctx*, restricted to the one key-exchange group *group* (all the stdlib can do < 3.15)."""
    ctx.set_ecdh_curve(group)
    return ctx


# --- the profiles ----------------------------------------------------------------------------


class TestIntermediate:
    """The default server context against Mozilla's "intermediate" profile."""

    pytestmark = needs_sslyze

    @KEY_TYPES
    def test_default_context(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        key_type: KeyType,
        tmp_path: Path,
    ) -> None:
        """server_context(ServerOptions()) meets the profile but for the groups it offers."""
        issuer, leaf = leaves[key_type]
        found = scan_context(
            securelink.server_context(leaf.server_options()), issuer, "intermediate", tmp_path
        )
        assert found.extra_groups == DEFAULT_CONTEXT_EXTRA_GROUPS
        expected = {"tls_curves"} if DEFAULT_CONTEXT_EXTRA_GROUPS else set()
        assert expected == set(found.issues)
        # Everything else the profile checks is already right.
        assert {"TLSv1.2", "TLSv1.3"} == found.versions
        assert ECDHE_SUITES[key_type] == found.tls12_suites
        assert found.tls13_suites == TLS13_SUITES

    @KEY_TYPES
    def test_p256_only_complies(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        key_type: KeyType,
        tmp_path: Path,
    ) -> None:
        """Restricted to P-256 (set_ecdh_curve("prime256v1")): compliant, every suite usable."""
        issuer, leaf = leaves[key_type]
        ctx = with_group(private_context(leaf), "prime256v1")
        found = scan_context(ctx, issuer, "intermediate", tmp_path)
        assert ({}, frozenset({"secp256r1"})) == (found.issues, found.curves)
        assert ECDHE_SUITES[key_type] == found.tls12_suites
        assert found.tls13_suites == TLS13_SUITES

    def test_x25519_only_complies_but_loses_old_clients(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        tmp_path: Path,
    ) -> None:
        """Restricted to X25519: compliant, but clients without X25519 cannot connect."""
        issuer, leaf = leaves[KeyType.ECDSA_P256]
        ctx = with_group(private_context(leaf), "X25519")
        found = scan_context(ctx, issuer, "intermediate", tmp_path)
        assert ({}, frozenset({"X25519"})) == (found.issues, found.curves)
        # sslyze tests the AES-GCM suites with its OpenSSL 1.0.2 client, which has no X25519
        # (like every client older than OpenSSL 1.1.0, Windows 10, Android 7, Java 11): refused.
        assert {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"} == found.tls12_suites

    def test_devca_default_lifetime_is_flagged(
        self, ca: CertificateAuthority, tmp_path: Path
    ) -> None:
        """The development CA's default leaf lifetime (825 days) exceeds the profile's 366."""
        leaf = ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER)
        ctx = with_group(private_context(leaf), "prime256v1")
        found = scan_context(ctx, ca, "intermediate", tmp_path)
        assert {"maximum_certificate_lifespan"} == set(found.issues)
        assert "should be less than 366" in found.issues["maximum_certificate_lifespan"]


class TestModern:
    """The TLS 1.3-only choice (Profile.MODERN) against Mozilla's "modern" profile."""

    pytestmark = needs_sslyze

    def test_modern_context(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        tmp_path: Path,
    ) -> None:
        """ServerOptions(profile=MODERN) meets Mozilla's modern profile in full (ECDSA)."""
        issuer, leaf = leaves[KeyType.ECDSA_P256]
        ctx = securelink.server_context(leaf.server_options(profile=securelink.Profile.MODERN))
        assert ssl.TLSVersion.TLSv1_3 == ctx.minimum_version
        found = scan_context(ctx, issuer, "modern", tmp_path)
        assert found.extra_groups == MODERN_CONTEXT_EXTRA_GROUPS
        expected = {"tls_curves"} if MODERN_CONTEXT_EXTRA_GROUPS else set()
        assert expected == set(found.issues)
        assert (frozenset({"TLSv1.3"}), TLS13_SUITES) == (found.versions, found.tls13_suites)

    @pytest.mark.parametrize("group", ["X25519", "prime256v1"])
    def test_one_group_complies(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        group: str,
        tmp_path: Path,
    ) -> None:
        """Restricted to X25519, or to P-256: compliant."""
        issuer, leaf = leaves[KeyType.ECDSA_P256]
        ctx = with_group(private_context(leaf, profile=securelink.Profile.MODERN), group)
        found = scan_context(ctx, issuer, "modern", tmp_path)
        assert found.issues == {}
        assert len(found.curves) == 1

    def test_rsa_certificate_is_flagged(
        self,
        leaves: dict[KeyType, tuple[CertificateAuthority, IssuedCertificate]],
        tmp_path: Path,
    ) -> None:
        """The modern profile wants an ECDSA certificate: an RSA one is the remaining finding."""
        issuer, leaf = leaves[KeyType.RSA_2048]
        ctx = with_group(private_context(leaf, profile=securelink.Profile.MODERN), "X25519")
        found = scan_context(ctx, issuer, "modern", tmp_path)
        assert {"certificate_types", "certificate_signatures"} == set(found.issues)


# A process-wide alternative: OpenSSL's configuration file can set the group list for every
# context in the process, which the stdlib cannot do per context before 3.15.
OPENSSL_CONF = """\
openssl_conf = securelink_init

[securelink_init]
ssl_conf = securelink_ssl

[securelink_ssl]
system_default = securelink_groups

[securelink_groups]
Groups = X25519:prime256v1:secp384r1
"""

_CHILD = """
import json, sys
from pathlib import Path
from tests import test_profiles as t
print(json.dumps(t.scan_in_child(Path(sys.argv[1]))))
"""


def scan_in_child(workdir: Path) -> dict[str, object]:
    """Scan the default contexts of both profiles, in a process started with OPENSSL_CONF."""
    ca = CertificateAuthority()
    leaf = ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER, valid_for=LIFETIME)
    found: dict[str, object] = {}
    for name, profile in (
        ("intermediate", securelink.Profile.INTERMEDIATE),
        ("modern", securelink.Profile.MODERN),
    ):
        ctx = securelink.server_context(leaf.server_options(profile=profile))
        result = asdict(scan_context(ctx, ca, name, workdir))
        found[name] = {key: sorted(value) for key, value in result.items() if key != "seconds"}
    return found


class TestOpenSSLConfiguration:
    """OPENSSL_CONF with a Groups line gives every context Mozilla's exact group list."""

    pytestmark = needs_sslyze

    def test_groups_from_openssl_conf(self, tmp_path: Path) -> None:
        """With a Groups line both profiles comply, each with the groups it allows.

        Intermediate offers Mozilla's three; modern, which securelink narrows to X25519 before
        Python 3.15, offers X25519.
        """
        conf = tmp_path / "openssl.cnf"
        conf.write_text(OPENSSL_CONF)
        env = {**os.environ, "OPENSSL_CONF": str(conf)}
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=2 * SCAN_TIMEOUT,
            check=False,
        )
        assert child.returncode == 0, child.stderr
        found = json.loads(child.stdout)
        for profile in ("intermediate", "modern"):
            assert found[profile]["issues"] == []
        assert sorted(MOZILLA_GROUPS) == found["intermediate"]["curves"]
        assert found["modern"]["curves"] == (
            sorted(MOZILLA_GROUPS) if hasattr(ssl.SSLContext, "set_groups") else ["X25519"]
        )


# --- the trade-offs of one group, without sslyze -----------------------------------------------


def received(trace: list[securelink.HandshakeMessage], name: str) -> int:
    """How many *name* handshake messages the client received."""
    return sum(1 for m in trace if (m.direction, m.kind, m.name) == ("received", "handshake", name))


class TestGroupTradeoffs:
    """What restricting a server to one key-exchange group costs, measured with real clients."""

    @pytest.mark.parametrize(("group", "server_hellos"), [("X25519", 1), ("prime256v1", 2)])
    def test_hello_retry(self, ca: CertificateAuthority, group: str, server_hellos: int) -> None:
        """An OpenSSL 3 client sends an X25519 key share: a P-256-only server asks again."""
        # A HelloRetryRequest travels as a second ServerHello: one more round trip per full
        # handshake for Python, curl and Go clients, and for Chrome.
        leaf = ca.issue("localhost", usage=Usage.SERVER)
        server = with_group(private_context(leaf), group)
        trace: list[securelink.HandshakeMessage] = []
        client = securelink.client_context(ca.client_options(trace=trace.append))
        _, seen = handshake(server, client)
        assert (seen.error, seen.version) == (None, "TLSv1.3")
        assert server_hellos == received(trace, "ServerHello")

    @pytest.mark.parametrize(
        "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
    )
    @pytest.mark.parametrize(("group", "works"), [("prime256v1", True), ("X25519", False)])
    def test_client_without_x25519(
        self, ca: CertificateAuthority, version: ssl.TLSVersion, group: str, works: bool
    ) -> None:
        """A client limited to P-256 connects to a P-256 server, not to an X25519-only one."""
        leaf = ca.issue("localhost", usage=Usage.SERVER)
        server = with_group(private_context(leaf), group)
        client = securelink.client_context(ca.client_options(max_version=version), shared=False)
        client.set_ecdh_curve("prime256v1")
        server_side, client_side = handshake(server, client)
        if works:
            assert (server_side.error, client_side.error) == (None, None)
        else:
            assert type(client_side.error) is ProtocolMismatchError
            assert type(server_side.error) is ProtocolMismatchError
            # OpenSSL's reason, under securelink's explanation ("no cipher suite in common").
            reason = getattr(server_side.error.__cause__, "reason", None)
            expected = (
                "NO_SUITABLE_KEY_SHARE"
                if version is ssl.TLSVersion.TLSv1_3
                else ("NO_SHARED_CIPHER")
            )
            assert expected == reason
