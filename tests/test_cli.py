"""The `securelink minica` and `securelink csr` commands, in process and as subprocesses."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from securelink.__main__ import main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestMinicaCommand:
    """`securelink minica` writes minica's layout with minica's flags."""

    def test_layout(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The CA and the leaf land where minica puts them, keys 0600, leaf directory 0700."""
        status = main(
            ["minica", "--dir", str(tmp_path), "-domains", "localhost,api.test",
             "-ip-addresses", "127.0.0.1"]
        )  # fmt: skip
        assert status == 0
        assert "CA created:" in capsys.readouterr().out
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "localhost",
            "minica-key.pem",
            "minica.pem",
        ]
        assert mode(tmp_path / "minica-key.pem") == 0o600
        assert mode(tmp_path / "localhost") == 0o700
        assert mode(tmp_path / "localhost" / "key.pem") == 0o600
        cert = x509.load_pem_x509_certificate((tmp_path / "localhost" / "cert.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["localhost", "api.test"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    def test_openssl_verify_accepts(self, tmp_path: Path) -> None:
        """`openssl verify -x509_strict` accepts what the command wrote."""
        assert main(["minica", "--dir", str(tmp_path), "--domains", "localhost"]) == 0
        result = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-CAfile", "minica.pem", "localhost/cert.pem"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "localhost/cert.pem: OK"

    def test_reuses_ca_and_never_overwrites(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A second run reuses the CA; issuing the same name again fails with status 1."""
        assert main(["minica", "--dir", str(tmp_path), "--domains", "a.test"]) == 0
        ca = (tmp_path / "minica.pem").read_bytes()
        assert main(["minica", "--dir", str(tmp_path), "--domains", "b.test"]) == 0
        assert "CA reused:" in capsys.readouterr().out
        assert (tmp_path / "minica.pem").read_bytes() == ca
        before = (tmp_path / "a.test" / "cert.pem").read_bytes()
        assert main(["minica", "--dir", str(tmp_path), "--domains", "a.test"]) == 1
        assert "already exists" in capsys.readouterr().err
        assert (tmp_path / "a.test" / "cert.pem").read_bytes() == before

    def test_spaces_in_the_list(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Extra arguments get minica's 'spaces in your domain list?' message and status 2."""
        assert main(["minica", "--dir", str(tmp_path), "--domains", "a.test,", "b.test"]) == 2
        assert "maybe there are spaces in your domain list?" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []

    def test_no_names(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No names is an error naming the domains flag."""
        assert main(["minica", "--dir", str(tmp_path)]) == 1
        assert "at least one DNS name or IP address" in capsys.readouterr().err

    def test_rsa_ca(self, tmp_path: Path) -> None:
        """--ca-alg rsa makes an RSA CA."""
        assert (
            main(["minica", "--dir", str(tmp_path), "--domains", "x.test", "--ca-alg", "rsa"]) == 0
        )
        assert b"BEGIN PRIVATE KEY" in (tmp_path / "minica-key.pem").read_bytes()
        from cryptography.hazmat.primitives.asymmetric import rsa

        cert = x509.load_pem_x509_certificate((tmp_path / "minica.pem").read_bytes())
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)

    def test_subprocess(self, tmp_path: Path) -> None:
        """`python -m securelink minica` works from the shell."""
        result = subprocess.run(
            [sys.executable, "-m", "securelink", "minica", "-domains", "localhost"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "localhost" / "cert.pem").exists()


class TestCsrCommand:
    """`securelink csr` writes a CSR with the names as SANs, and a key when none is given."""

    def test_new_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --key a new 0600 key is written next to the CSR."""
        monkeypatch.chdir(tmp_path)
        assert (
            main(["csr", "--domains", "api.test,www.api.test", "--ip-addresses", "10.0.0.1"]) == 0
        )
        assert mode(tmp_path / "api.test.key") == 0o600
        csr = x509.load_pem_x509_csr((tmp_path / "api.test.csr").read_bytes())
        assert csr.is_signature_valid
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["api.test", "www.api.test"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]

    def test_existing_key(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With an existing --key, the CSR certifies that key and no key is written."""
        monkeypatch.chdir(tmp_path)
        assert main(["csr", "--domains", "a.test"]) == 0
        key_before = (tmp_path / "a.test.key").read_bytes()
        assert main(["csr", "--domains", "a.test", "--key", "a.test.key", "--out", "b.csr"]) == 0
        assert (tmp_path / "a.test.key").read_bytes() == key_before
        first = x509.load_pem_x509_csr((tmp_path / "a.test.csr").read_bytes())
        second = x509.load_pem_x509_csr((tmp_path / "b.csr").read_bytes())
        assert first.public_key() == second.public_key()

    def test_signed_by_devca(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The CSR is accepted by the development CA, which issues for its names."""
        from securelink.devca import CertificateAuthority

        monkeypatch.chdir(tmp_path)
        assert main(["csr", "--domains", "svc.test"]) == 0
        cert = CertificateAuthority().sign_csr((tmp_path / "svc.test.csr").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["svc.test"]

    def test_never_overwrites(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An existing CSR file is not overwritten (status 1)."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "a.test.csr").write_text("keep me")
        assert main(["csr", "--domains", "a.test"]) == 1
        assert (tmp_path / "a.test.csr").read_text() == "keep me"
        assert not os.path.exists(tmp_path / "a.test.key")
        assert "already exists" in capsys.readouterr().err

    def test_bad_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --key that is not a key is reported as a MaterialError (status 1)."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "notakey.pem").write_text("hello")
        assert main(["csr", "--domains", "a.test", "--key", "notakey.pem"]) == 1
        assert "neither PEM nor DER" in capsys.readouterr().err


class TestInspectCommand:
    """`securelink inspect FILE...` describes files, as text or JSON, with meaningful statuses."""

    @pytest.fixture
    def files(self, tmp_path: Path) -> Path:
        """A minica layout to inspect."""
        assert main(["minica", "--dir", str(tmp_path), "--domains", "localhost"]) == 0
        return tmp_path

    def test_text(self, files: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The text form names the certificate, its names, and that the key belongs to it."""
        capsys.readouterr()
        leaf = files / "localhost"
        both = files / "both.pem"
        both.write_bytes((leaf / "cert.pem").read_bytes() + (leaf / "key.pem").read_bytes())
        both.chmod(0o600)
        assert main(["inspect", str(both)]) == 0
        out = capsys.readouterr().out
        assert "#1 certificate: localhost" in out
        assert "names       DNS:localhost" in out
        assert "belongs to  certificate #1" in out
        assert "No findings." in out

    def test_json(self, files: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints one JSON document per file list, for programs."""
        import json

        capsys.readouterr()
        ca = str(files / "minica.pem")
        assert main(["inspect", "--json", ca]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["format"] == "PEM"
        assert document["objects"][0]["is_ca"] is True
        assert main(["inspect", "--json", ca, ca]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 2

    def test_error_findings_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An expired certificate is an error-level finding: status 1."""
        import datetime

        from securelink.devca import CertificateAuthority

        now = datetime.datetime.now(datetime.UTC)
        old = CertificateAuthority().issue(
            "old.test",
            not_before=now - datetime.timedelta(days=10),
            not_after=now - datetime.timedelta(days=1),
        )
        path = tmp_path / "old.pem"
        path.write_bytes(old.cert_pem)
        assert main(["inspect", str(path)]) == 1
        assert "expired" in capsys.readouterr().out

    def test_unreadable_exit_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is neither PEM nor DER is reported on stderr with status 2."""
        path = tmp_path / "garbage.pem"
        path.write_text("garbage")
        assert main(["inspect", str(path)]) == 2
        assert "neither PEM nor DER" in capsys.readouterr().err

    def test_password_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--password-file opens a PKCS#12 bundle; the password stays off the command line."""
        from securelink.devca import CertificateAuthority

        bundle = tmp_path / "id.p12"
        bundle.write_bytes(CertificateAuthority().issue("p12.test").pkcs12("s3cret"))
        bundle.chmod(0o600)
        secret = tmp_path / "pw"
        secret.write_text("s3cret\n")
        assert main(["inspect", str(bundle), "--password-file", str(secret)]) == 0
        out = capsys.readouterr().out
        assert "PKCS#12" in out
        assert "belongs to  certificate #1" in out

    def test_subprocess(self, files: Path) -> None:
        """`python -m securelink inspect` works from the shell."""
        result = subprocess.run(
            [sys.executable, "-m", "securelink", "inspect", "minica.pem"],
            cwd=files,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "certificate: securelink development CA" in result.stdout


class TestCsrFileNames:
    """Without --out, the files are named after the first name, made safe for a file name."""

    @pytest.mark.parametrize(
        ("domains", "stem"),
        [
            ("spiffe://example.test/billing", "billing"),
            ("spiffe://example.test/ns/prod/sa/billing/", "billing"),
            ("spiffe://example.test", "example.test"),
            ("spiffe://example.test/a%20b", "a_b"),
            ("*.apps.test", "_.apps.test"),
            ("spiffe://example.test/..", "request"),
            ("api.test,spiffe://example.test/api", "api.test"),
        ],
    )
    def test_default_names(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        domains: str,
        stem: str,
    ) -> None:
        """A URI SAN gives its last path segment (or host), not a path with '://' in it."""
        monkeypatch.chdir(tmp_path)
        assert main(["csr", "--domains", domains]) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.csr", f"{stem}.key"]
        assert mode(tmp_path / f"{stem}.key") == 0o600
        csr = x509.load_pem_x509_csr((tmp_path / f"{stem}.csr").read_bytes())
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += san.get_values_for_type(x509.UniformResourceIdentifier)
        assert names == domains.split(",")
        assert f"CSR: {stem}.csr (for {', '.join(domains.split(','))})" in capsys.readouterr().out

    def test_uri_with_out(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """--out still decides where the CSR goes; the new key goes next to it."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "reqs").mkdir()
        args = ["csr", "--domains", "spiffe://example.test/billing", "--out", "reqs/b.csr"]
        assert main(args) == 0
        assert sorted(p.name for p in (tmp_path / "reqs").iterdir()) == ["b.csr", "billing.key"]


#: Python spellings that a command line user cannot type: the CLI says --flags instead.
PYTHON_WORDING = re.compile(r"\b[a-z_]+=|Options\(|issue\(|PKCS12\(|Pass each name separately")


def cli_error(capsys: pytest.CaptureFixture[str], command: str) -> tuple[str, str]:
    """The message and hint of the one error line on stderr, checked for Python wording."""
    err = capsys.readouterr().err
    assert err.startswith(f"securelink {command}: ") and err.count("\n") == 1, err
    message, _, hint = err.strip().removeprefix(f"securelink {command}: ").partition(" Hint: ")
    assert hint, err
    assert not PYTHON_WORDING.search(hint), hint
    return message, hint


class TestErrorsInFlags:
    """Errors from the library reach the command line with hints that name flags."""

    NAMES_HINT = (
        "Give DNS names with --domains and IP addresses with --ip-addresses, each list separated"
        " by commas and no spaces"
    )

    @pytest.mark.parametrize("command", ["csr", "minica"])
    def test_no_names(
        self,
        command: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """No names: the hint names --domains and --ip-addresses, not issue(...)."""
        monkeypatch.chdir(tmp_path)
        assert main([command]) == 1
        message, hint = cli_error(capsys, command)
        assert message == "A certificate needs at least one DNS name or IP address."
        assert hint.startswith(self.NAMES_HINT)

    @pytest.mark.parametrize("command", ["csr", "minica"])
    def test_bad_name(
        self,
        command: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A space after a comma: the hint says how to write the list on the command line."""
        monkeypatch.chdir(tmp_path)
        assert main([command, "--domains", "a.test, b.test"]) == 1
        message, hint = cli_error(capsys, command)
        assert message.startswith("' b.test' is not a valid DNS name")
        assert hint.startswith(self.NAMES_HINT)
        assert ("spiffe://" in hint) is (command == "csr")  # minica takes no URIs
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        ("make", "hint"),
        [
            (
                lambda ca: ca.issue("x.test").cert_pem,
                "This looks like a certificate: give its private key file (-----BEGIN PRIVATE"
                " KEY-----) as --key.",
            ),
            (
                lambda ca: ca.issue("x.test").encrypted_key_pem("pw"),
                "securelink csr reads unencrypted keys only: decrypt a copy with `openssl pkey"
                " -in KEY -out plain.key`, keep it mode 0600, and give that as --key.",
            ),
            (
                lambda ca: ca.issue("x.test").pkcs12("pw"),
                "This is a PKCS#12 bundle; securelink csr reads PEM or DER files: split it with"
                " `openssl pkcs12 -in FILE -nocerts -noenc -out key.pem` and give --key.",
            ),
        ],
    )
    def test_csr_key(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        make: Any,
        hint: str,
    ) -> None:
        """A --key that is no usable key: the hint says what to give as --key."""
        from securelink.devca import CertificateAuthority

        monkeypatch.chdir(tmp_path)
        (tmp_path / "given").write_bytes(make(CertificateAuthority()))
        (tmp_path / "given").chmod(0o600)
        assert main(["csr", "--domains", "a.test", "--key", "given"]) == 1
        assert cli_error(capsys, "csr")[1] == hint
        assert sorted(p.name for p in tmp_path.iterdir()) == ["given"]

    @pytest.mark.parametrize(
        ("ca_files", "hint"),
        [
            (
                ("minica-key.pem", "minica.pem"),
                "This looks like the CA's private key: give it as --ca-key, and the certificate"
                " as --ca-cert.",
            ),
            (
                ("minica.pem", "minica.pem"),
                "This looks like a certificate: give its private key file (-----BEGIN PRIVATE"
                " KEY-----) as --ca-key, and the certificate as --ca-cert.",
            ),
            (
                ("minica.pem", "enc.pem"),
                "securelink minica reads unencrypted keys only: decrypt a copy with `openssl"
                " pkey -in KEY -out plain.key`, keep it mode 0600, and give that as --ca-key.",
            ),
        ],
    )
    def test_minica_ca_files(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        ca_files: tuple[str, str],
        hint: str,
    ) -> None:
        """CA files swapped or encrypted: the hint names --ca-cert and --ca-key."""
        from securelink.devca import CertificateAuthority

        ca = CertificateAuthority()
        for name, data in (
            ("minica.pem", ca.cert_pem),
            ("minica-key.pem", ca.key_pem),
            ("enc.pem", ca.issue("x.test").encrypted_key_pem("pw")),
        ):
            (tmp_path / name).write_bytes(data)
            (tmp_path / name).chmod(0o600)
        cert, key = ca_files
        args = ["--dir", str(tmp_path), "--domains", "a.test", "--ca-cert", cert, "--ca-key", key]
        assert main(["minica", *args]) == 1
        message, got = cli_error(capsys, "minica")
        assert message.startswith(str(tmp_path))
        assert got == hint
        assert not (tmp_path / "a.test" / "cert.pem").exists()

    def test_minica_mismatched_ca(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """CA files that do not match: the hint is about files, in no Python terms."""
        from securelink.devca import CertificateAuthority

        (tmp_path / "minica.pem").write_bytes(CertificateAuthority().cert_pem)
        (tmp_path / "minica-key.pem").write_bytes(CertificateAuthority().key_pem)
        (tmp_path / "minica-key.pem").chmod(0o600)
        assert main(["minica", "--dir", str(tmp_path), "--domains", "a.test"]) == 1
        cli_error(capsys, "minica")

    def test_inspect_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not there: status 2, and a hint about the path."""
        assert main(["inspect", str(tmp_path / "nope.pem")]) == 2
        message, hint = cli_error(capsys, "inspect")
        assert message.startswith(f"{tmp_path / 'nope.pem'}: no such file")
        assert hint.startswith("Check the path")


class TestBrokenPipe:
    """`securelink ... | head` ends quietly, as well-behaved commands do: no traceback."""

    def test_inspect_into_a_closed_pipe(self, tmp_path: Path) -> None:
        """The reader takes one line and closes the pipe: status 141, nothing on stderr."""
        from securelink.devca import CertificateAuthority

        cert = tmp_path / "cert.pem"
        cert.write_bytes(CertificateAuthority().issue("pipe.test").cert_pem)
        # Far more than a pipe holds (64 KiB), so the writer is still writing when it closes.
        args = ["inspect", *[str(cert)] * 400]
        with subprocess.Popen(
            [sys.executable, "-m", "securelink", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.readline()
            proc.stdout.close()
            err = proc.stderr.read()
            status = proc.wait(timeout=60)
        assert first == f"{cert}: PEM, 1 certificate\n".encode()
        assert err == b""
        assert status == 141

    def test_demo_into_a_closed_pipe(self) -> None:
        """The demo stops at its next line once the reader is gone, and cleans up quietly.

        --step holds the demo at its first pause until the pipe is closed, so that it is
        certain to write into the closed pipe.
        """
        with subprocess.Popen(
            [sys.executable, "-m", "securelink", "demo", "--step"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            assert proc.stderr is not None
            first = proc.stdout.readline()
            proc.stdout.close()
            proc.stdin.write(b"\n" * 10)
            proc.stdin.close()
            err = proc.stderr.read()
            status = proc.wait(timeout=60)
        assert first.startswith(b"securelink demo: secure connections on 127.0.0.1, in ")
        workdir = first.decode().rsplit(" in ", 1)[1].strip()
        assert err == b""
        assert status == 141
        assert not os.path.exists(workdir)  # the temporary directory went with it
