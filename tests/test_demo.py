"""The demo and the command line around it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from securelink.__main__ import main


class TestDemo:
    """`securelink demo` runs mutual TLS and two failures on loopback, and exits 0."""

    def test_in_process(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The walkthrough tells each step with what securelink says, and exits 0."""
        assert main(["demo"]) == 0
        out = capsys.readouterr().out
        steps = [line for line in out.splitlines() if line[:2] in {f"{n}." for n in range(1, 9)}]
        assert [s.split(" ", 1)[0] for s in steps] == [f"{n}." for n in range(1, 9)]
        # 1. the wrong port
        assert "client: NothingListeningError" in out
        # 2. self-signed, from both sides
        assert "client: UnknownAuthorityError" in out
        assert "is self-signed: it vouches for itself" in out
        assert "server: CertificateRejectedError" in out
        # 3. the development CA and the hooks
        assert "wrote minica-key.pem         mode 0600" in out
        assert "[server] the client hello asks for 'localhost': sending localhost/cert.pem" in out
        assert "[client] verified the server's chain for 'localhost':" in out
        assert out.count("'Hey GopherCon! You said: hello'") == 2
        # 4. the wrong name
        assert "client: HostnameMismatchError" in out
        assert "is valid for localhost, 127.0.0.1, not 'liz-server'." in out
        # 5. mutual TLS refused, explained on both sides
        assert "client: ClientCertificateRequiredError" in out
        assert "server: ClientCertificateRequiredError" in out
        # 6. mutual TLS accepted: each side says who the other is
        assert "[server] verified the client's chain; it is client.demo" in out
        # 7. the files, inspected; 8. the load-time error
        assert "#1 certificate: localhost" in out
        assert "localhost/key.pem: EC P-256, mode 0600" in out
        assert "securelink says:     MaterialError:" in out
        assert "holds a PRIVATE KEY, not a certificate." in out

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
        assert len(pauses) == 6


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


def test_step_without_a_terminal() -> None:
    """--step with stdin closed goes on instead of failing (no terminal to press Enter on)."""
    result = subprocess.run(
        [sys.executable, "-m", "securelink", "demo", "--step"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[press Enter to continue]") == 6
