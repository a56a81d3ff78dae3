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
