"""The demo and the command line around it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from securelink.__main__ import main


class TestDemo:
    """`securelink demo` runs mutual TLS and two failures on loopback, and exits 0."""

    def test_in_process(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The demo prints what each side verified and securelink's explanations."""
        assert main(["demo"]) == 0
        out = capsys.readouterr().out
        assert "the client verified the server:" in out
        assert "SANs     localhost, 127.0.0.1" in out
        assert "the server verified the client:" in out
        assert "SANs     client.demo" in out
        assert "negotiated TLSv1.3 with TLS_" in out
        assert "unable to get local issuer certificate (verify code 20)" in out
        assert "securelink says:     UnknownAuthorityError:" in out
        assert "not among the trusted CAs (the certifi bundle)" in out
        assert "(verify code 62)" in out
        assert "securelink says:     HostnameMismatchError:" in out
        assert "valid for localhost, 127.0.0.1, not 'api.internal.example'" in out
        assert "securelink says:     MaterialError:" in out
        assert "holds a PRIVATE KEY, not a certificate." in out
        assert "mode 0600" in out

    def test_as_module(self) -> None:
        """`python -m securelink demo` exits 0 in a subprocess."""
        result = subprocess.run(
            [sys.executable, "-m", "securelink", "demo"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("the files are removed.")

    def test_step_waits_for_enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """--step pauses between steps by reading a line from standard input."""
        pauses: list[str] = []

        def fake_input(prompt: str = "") -> str:
            pauses.append(prompt)
            return ""

        monkeypatch.setattr("builtins.input", fake_input)
        assert main(["demo", "--step"]) == 0
        assert len(pauses) == 4


class TestCommandLine:
    """The argparse front end."""

    def test_no_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a command, help is printed and the status is 2."""
        assert main([]) == 2
        assert "demo" in capsys.readouterr().out

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the version and exits 0."""
        with pytest.raises(SystemExit) as info:
            main(["--version"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith("securelink 0.")
