"""Session-wide development PKI for the tests (generated once, in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import securelink
from securelink import devca


@pytest.fixture(autouse=True)
def _fresh_context_cache() -> None:
    """Each test starts without shared contexts, so one test's cache cannot hide another's bug."""
    securelink._context.clear_cache()


@pytest.fixture(autouse=True)
def _fresh_diagnoses() -> None:
    """Each test diagnoses afresh.

    A diagnosis remembered from another test's server (its port used again) must not explain
    this test's failure.
    """
    securelink._translate._forget_diagnoses()


@pytest.fixture(scope="session", autouse=True)
def _unlimited_reporter_between_tests() -> Iterator[None]:
    """Fixtures wider than a test (which make many refused handshakes) report without a limit.

    They run before the per-test reporter below is installed; with the default limits their
    left-out count would be summarised at exit, after pytest stopped capturing the log.
    """
    with pytest.MonkeyPatch.context() as patch:
        unlimited = securelink._report.HandshakeReporter(per_address=10**9, total=10**9)
        patch.setattr(securelink._report, "reporter", unlimited)
        yield


@pytest.fixture(autouse=True)
def _fresh_handshake_reporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with its own rate limit for server-side reports (not other tests')."""
    reporter = securelink._report.HandshakeReporter()
    monkeypatch.setattr(securelink._report, "reporter", reporter)
    yield
    reporter.flush()  # its summary, if any, in this test's captured log rather than at exit


@pytest.fixture(scope="session")
def ca() -> devca.CertificateAuthority:
    """An ECDSA development root CA."""
    return devca.CertificateAuthority()


@pytest.fixture(scope="session")
def rsa_ca() -> devca.CertificateAuthority:
    """An RSA development root CA."""
    return devca.CertificateAuthority(key_type=devca.KeyType.RSA_2048)


@pytest.fixture(scope="session")
def server_cert(ca: devca.CertificateAuthority) -> devca.IssuedCertificate:
    """A server certificate for localhost and 127.0.0.1."""
    return ca.issue("localhost", "127.0.0.1", usage=devca.Usage.SERVER)


@pytest.fixture(scope="session")
def client_cert(ca: devca.CertificateAuthority) -> devca.IssuedCertificate:
    """A client certificate for client.test."""
    return ca.issue("client.test", usage=devca.Usage.CLIENT)
