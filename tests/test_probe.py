"""`securelink probe HOST:PORT`: the chain on success, the explanation on failure."""

from __future__ import annotations

import datetime
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from securelink import ClientAuth, server_context
from securelink.__main__ import main
from securelink.devca import CertificateAuthority, IssuedCertificate

from .explain_peers import ONLY_CAFILE, OPENSSL, s_server, write_identity

requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is missing")

TARGETS: list[tuple[str, tuple[str, int] | None]] = [
    ("example.com:443", ("example.com", 443)),
    ("127.0.0.1:8443", ("127.0.0.1", 8443)),
    ("[::1]:443", ("::1", 443)),
    ("example.com", None),
    ("example.com:", None),
    (":443", None),
    ("example.com:http", None),
    ("example.com:70000", None),
    ("example.com:0", None),
]


@pytest.fixture
def server(server_cert: IssuedCertificate) -> Iterator[int]:
    """A TLS server on 127.0.0.1:0 that completes handshakes until the test ends."""
    yield from _serve(server_context(server_cert.server_options()))


@pytest.fixture
def mtls_server(server_cert: IssuedCertificate, ca: CertificateAuthority) -> Iterator[int]:
    """A TLS 1.3 server that requires a client certificate from the development CA."""
    options = server_cert.server_options(
        client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=ca.certificate
    )
    yield from _serve(server_context(options))


def _serve(ctx: ssl.SSLContext) -> Iterator[int]:
    """Serve TLS connections on 127.0.0.1:0 with *ctx*, one at a time, until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass  # failed handshakes are the point of some tests
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@pytest.fixture
def ca_file(tmp_path: Path, ca: CertificateAuthority) -> str:
    """The development CA's certificate as a file."""
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return str(path)


class TestProbe:
    """The probe command reports success, failures and usage errors with distinct statuses."""

    def test_success(
        self,
        server: int,
        ca_file: str,
        ca: CertificateAuthority,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A verified connection prints the version, cipher and chain, and exits 0."""
        assert main(["probe", f"localhost:{server}", "--ca", ca_file]) == 0
        out = capsys.readouterr().out
        assert f"localhost port {server} (localhost): OK" in out
        assert "version:  TLSv1.3" in out
        assert "names:    localhost, 127.0.0.1" in out
        root = ca.certificate.subject.rfc4514_string()
        assert f"  verified: yes, for localhost against {ca_file} with {root}\n" in out
        assert "the chain the server presented:\n  0 leaf:" in out
        assert "(verified)" not in out

    @pytest.mark.parametrize(
        ("args", "said"),
        [
            (["127.0.0.1:{port}", "--servername", "a.."], "server_hostname"),
            (["0177.0.0.1:{port}"], "127.0.0.1"),
        ],
        ids=["servername", "host"],
    )
    def test_unreadable_name_is_a_usage_error(
        self, server: int, capsys: pytest.CaptureFixture[str], args: list[str], said: str
    ) -> None:
        """A name that cannot be checked is the command line's fault: exit 2, nothing connects."""
        status = main(["probe", *(a.format(port=server) for a in args)])
        assert status == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("securelink probe: ")
        assert said in captured.err

    def test_unknown_authority(self, server: int, capsys: pytest.CaptureFixture[str]) -> None:
        """Against the certifi bundle, the explanation and the presented chain are printed."""
        assert main(["probe", f"127.0.0.1:{server}"]) == 1
        out = capsys.readouterr().out
        assert "UnknownAuthorityError:" in out
        assert "(the certifi bundle)" in out
        assert "the chain the server presented:" in out

    def test_servername_mismatch(
        self, server: int, ca_file: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--servername is verified and reported as a hostname mismatch."""
        status = main(["probe", f"127.0.0.1:{server}", "--ca", ca_file, "--servername", "api.test"])
        assert status == 1
        out = capsys.readouterr().out
        assert "HostnameMismatchError:" in out
        assert "valid for localhost, 127.0.0.1, not 'api.test'" in out

    def test_client_certificate_required_tls13(
        self, mtls_server: int, ca_file: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A TLS 1.3 server refuses a client without a certificate only after the handshake."""
        assert main(["probe", f"localhost:{mtls_server}", "--ca", ca_file]) == 1
        out = capsys.readouterr().out
        assert f"localhost port {mtls_server} (localhost): FAILED" in out
        assert "ClientCertificateRequiredError:" in out
        assert "OK" not in out

    def test_client_certificate_given(
        self,
        mtls_server: int,
        ca_file: str,
        client_cert: IssuedCertificate,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """With --cert and --key the same server accepts the probe: the wait is no verdict."""
        files = write_identity(
            tmp_path, "client", (client_cert.certificate,), client_cert.private_key
        )
        args = ["--cert", str(files.cert), "--key", str(files.key)]
        assert main(["probe", f"localhost:{mtls_server}", "--ca", ca_file, *args]) == 0
        assert f"localhost port {mtls_server} (localhost): OK" in capsys.readouterr().out

    @requires_openssl
    def test_client_certificate_required_openssl(
        self,
        tmp_path: Path,
        server_cert: IssuedCertificate,
        ca_file: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The same against `openssl s_server -Verify 1` (TLS 1.3)."""
        files = write_identity(
            tmp_path, "server", (server_cert.certificate,), server_cert.private_key
        )
        args = ("-tls1_3", "-Verify", "1", "-verify_return_error", "-CAfile", ca_file, *ONLY_CAFILE)
        with s_server(tmp_path, files, *args, naccept=3) as peer:
            status = main(["probe", f"localhost:{peer.port}", "--ca", ca_file])
        out = capsys.readouterr().out
        assert status == 1, out
        assert "ClientCertificateRequiredError:" in out
        assert "mutual TLS" in out

    def test_nothing_listening(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A closed port is reported as nothing listening."""
        with socket.create_server(("127.0.0.1", 0)) as s:
            port = s.getsockname()[1]
        assert main(["probe", f"127.0.0.1:{port}"]) == 1
        assert f"Nothing is listening on 127.0.0.1 port {port}" in capsys.readouterr().out

    def test_bad_ca_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing --ca file is a usage error (status 2) naming the file."""
        missing = str(tmp_path / "nope.pem")
        assert main(["probe", "127.0.0.1:1", "--ca", missing]) == 2
        assert f"{missing}: no such file" in capsys.readouterr().err

    @pytest.mark.parametrize(("target", "expected"), TARGETS)
    def test_target_parsing(
        self, target: str, expected: tuple[str, int] | None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """HOST:PORT is parsed, IPv6 in brackets; anything else is a usage error."""
        from securelink._probe import parse_target
        from securelink.errors import ConfigurationError

        if expected is None:
            with pytest.raises(ConfigurationError) as info:
                parse_target(target)
            assert info.value.field == "target"
            assert main(["probe", target]) == 2
        else:
            assert parse_target(target) == expected

    def test_cert_without_key(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--cert without --key is refused by argparse (status 2)."""
        with pytest.raises(SystemExit) as info:
            main(["probe", "127.0.0.1:1", "--cert", "c.pem"])
        assert info.value.code == 2

    def test_subprocess(self, server: int, ca_file: str) -> None:
        """`python -m securelink probe` works as a command and exits 0."""
        result = subprocess.run(
            [sys.executable, "-m", "securelink", "probe", f"localhost:{server}", "--ca", ca_file],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK" in result.stdout


#: Python spellings that a command line user cannot type: the CLI must say --flags instead.
PYTHON_WORDING = re.compile(r"\b[a-z_]+=(?!\S*\.pem)|Options\(|issue\(|PKCS12\(")


def assert_cli_wording(text: str) -> None:
    """No hint in *text* tells a command line user to pass a Python argument."""
    hints = [line for line in text.splitlines() if "hint" in line.lower()]
    assert hints, text
    for line in hints:
        assert not PYTHON_WORDING.search(line.split("int:", 1)[-1]), line


class TestChainProblems:
    """Each certificate of a failed chain is checked for what else is wrong with it."""

    @pytest.fixture
    def expired_server(self, rogue: CertificateAuthority, tmp_path: Path) -> Iterator[int]:
        """A server whose certificate expired and comes from a CA nobody trusts.

        A plain ssl context serves it: securelink refuses to serve an expired certificate.
        """
        now = datetime.datetime.now(datetime.UTC)
        leaf = rogue.issue(
            "localhost",
            not_before=now - datetime.timedelta(days=400),
            not_after=now - datetime.timedelta(days=30, hours=1),
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(
            write_bytes(tmp_path / "expired.pem", leaf.chain_pem),
            write_bytes(tmp_path / "expired-key.pem", leaf.key_pem),
        )
        yield from _serve(ctx)

    @pytest.fixture
    def rogue(self) -> CertificateAuthority:
        """A CA of its own, in no trust store."""
        return CertificateAuthority(common_name="Rogue CA")

    def test_expired_and_unknown_ca(
        self, expired_server: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --ca the unknown CA is reported, and the chain shows the expiry too (as Go)."""
        assert main(["probe", f"localhost:{expired_server}"]) == 1
        out = capsys.readouterr().out
        assert "UnknownAuthorityError:" in out
        lines = out.splitlines()
        leaf = lines.index(next(line for line in lines if line.startswith("  0: ")))
        assert lines[leaf + 1].startswith("     problem: expired on ")
        assert lines[leaf + 1].endswith(", 30 days ago")
        assert all("problem" not in line for line in lines[leaf + 2 :])  # the CA is fine
        assert_cli_wording(out)

    def test_wrong_name_flagged(
        self, expired_server: int, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The leaf is checked against the name probed (--servername) as well."""
        status = main(["probe", f"127.0.0.1:{expired_server}", "--servername", "api.test"])
        assert status == 1
        out = capsys.readouterr().out
        assert "     problem: not valid for 'api.test' (it holds localhost)" in out

    @pytest.mark.parametrize(
        ("names", "wanted", "holds"),
        [
            (("localhost", "127.0.0.1"), "localhost", True),
            (("LocalHost",), "localhost.", True),
            (("*.example.test",), "api.example.test", True),
            (("*.example.test",), "a.b.example.test", False),
            (("*.example.test",), "example.test", False),
            (("127.0.0.1",), "127.0.0.1", True),
            (("::1",), "[::1]", True),
            (("localhost",), "127.0.0.1", False),
            (("127.0.0.1",), "localhost", False),
            (("spiffe://example.test/api",), "example.test", False),
        ],
    )
    def test_name_rules(self, names: tuple[str, ...], wanted: str, holds: bool) -> None:
        """Names match as in RFC 6125: wildcards only as the whole left-most label, IPs exactly."""
        from securelink._probe import _holds

        assert _holds(names, wanted) is holds

    def test_not_yet_valid(self, rogue: CertificateAuthority) -> None:
        """A certificate whose validity starts later is flagged with when."""
        from securelink import CertificateSummary
        from securelink._probe import problems

        now = datetime.datetime.now(datetime.UTC)
        leaf = rogue.issue(
            "localhost", not_before=now + datetime.timedelta(days=2, hours=1),
            not_after=now + datetime.timedelta(days=90),
        )  # fmt: skip
        summary = CertificateSummary.from_certificate(leaf.certificate)
        assert [p.split(" UTC, ")[1] for p in problems(summary, "localhost", now)] == [
            "2 days from now"
        ]
        assert problems(CertificateSummary.from_certificate(rogue.root), None, now) == []


class TestHintsInFlags:
    """Errors speak the command line's language: --cert, --key, --ca, --servername."""

    def test_client_certificate_required(
        self, mtls_server: int, ca_file: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The server wants a certificate: the hint names --cert and --key."""
        assert main(["probe", f"localhost:{mtls_server}", "--ca", ca_file]) == 1
        out = capsys.readouterr().out
        assert "  hint: Give a client certificate with --cert and its key with --key" in out
        assert_cli_wording(out)

    def test_unknown_authority(self, server: int, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown CA: the hint names --ca."""
        assert main(["probe", f"localhost:{server}"]) == 1
        out = capsys.readouterr().out
        assert "give its certificate file with --ca" in out
        assert_cli_wording(out)

    def test_hostname_mismatch(
        self, server: int, ca_file: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A name the certificate does not hold: the hint names --servername."""
        args = ["probe", f"127.0.0.1:{server}", "--ca", ca_file, "--servername", "api.test"]
        assert main(args) == 1
        out = capsys.readouterr().out
        assert "(with --servername NAME)" in out
        assert_cli_wording(out)

    def test_rejected_certificate(
        self,
        mtls_server: int,
        ca_file: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A client certificate from another CA: the hint talks about --cert."""
        other = CertificateAuthority().issue("client.test")
        files = write_identity(tmp_path, "other", (other.certificate,), other.private_key)
        args = ["--cert", str(files.cert), "--key", str(files.key)]
        assert main(["probe", f"localhost:{mtls_server}", "--ca", ca_file, *args]) == 1
        out = capsys.readouterr().out
        assert "CertificateRejectedError:" in out
        assert "the certificate given with --cert" in out
        assert_cli_wording(out)

    @pytest.mark.parametrize(
        ("flags", "hint"),
        [
            (
                ("--cert", "key", "--key", "key"),
                "This looks like the private key: give it as --key, and the certificate as --cert.",
            ),
            (
                ("--cert", "cert", "--key", "cert"),
                "This looks like a certificate: give its private key file (-----BEGIN PRIVATE"
                " KEY-----) as --key, and the certificate as --cert.",
            ),
            (
                ("--ca", "key"),
                "This looks like a private key, not a CA: give the CA's certificate file as --ca.",
            ),
            (("--cert", "cert", "--key", "other_key"), "Give as --key the key that was generated"),
            (("--cert", "cert", "--key", "encrypted"), "give that as --key."),
            (("--cert", "p12", "--key", "p12"), "split it with `openssl pkcs12"),
        ],
    )
    def test_file_errors(
        self,
        tmp_path: Path,
        server_cert: IssuedCertificate,
        flags: tuple[str, ...],
        hint: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each file error says which flag to fix, in flags (status 2)."""
        paths = {
            "cert": write_bytes(tmp_path / "cert.pem", server_cert.cert_pem),
            "key": write_bytes(tmp_path / "key.pem", server_cert.key_pem),
            "other_key": write_bytes(tmp_path / "other.pem", CertificateAuthority().key_pem),
            "encrypted": write_bytes(tmp_path / "enc.pem", server_cert.encrypted_key_pem("pw")),
            "p12": write_bytes(tmp_path / "id.p12", server_cert.pkcs12("pw")),
        }
        argv = [paths.get(arg, arg) for arg in flags]
        assert main(["probe", "127.0.0.1:1", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("securelink probe: ")
        assert hint in err.split(" Hint: ", 1)[1]
        assert_cli_wording(err)


def write_bytes(path: Path, data: bytes) -> str:
    """Write *data* to *path*, mode 0600; return the path."""
    path.write_bytes(data)
    path.chmod(0o600)
    return str(path)
