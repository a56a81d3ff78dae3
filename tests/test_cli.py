"""The `securelink minica` and `securelink csr` commands, in process and as subprocesses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

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
