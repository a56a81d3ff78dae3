"""Every ```python block of README.md and docs/ runs, and passes ``mypy --strict``.

So the examples cannot drift from the code.  A block is one of three kinds, chosen by an HTML
comment on the line just before its fence (invisible on GitHub and in the Sphinx pages):

- no comment: a complete program.  It is run as a script (a fresh interpreter, a fresh temporary
  working directory, a time limit, loopback addresses only) and type-checked with
  ``mypy --strict``.  Its output is not compared with the ```text block after it, which holds
  ports and random CA names.
- ``<!-- not run: REASON -->``: a complete program that cannot run here (a server that serves
  until it is stopped, a client of such a server, a third-party server not installed): it is
  type-checked only.
- ``<!-- continues: REASON -->``: the next step of the last unmarked block of the page, which
  defines its names: the two are run and type-checked together, as one script.
- ``<!-- fragment: REASON -->``: a few lines that continue the text around them (names defined in
  prose, ``await`` outside a function): neither run nor type-checked.

The reason is required.  Setup convention: each block runs in a directory that already holds
development-CA files under the names the pages use (see :func:`write_setup_files`), as a reader
who followed the quickstart's "Certificates for local work" would have; a block that writes
files itself (it calls ``minica()``, ``write_bytes()``, ``write_text()`` or ``open()`` for
writing) starts in an empty one.

The type check needs mypy, which is in the ``dev`` extra, not in ``test``: without it that test is
skipped, unless ``SECURELINK_REQUIRE_MYPY=1`` (CI's dev venv) makes its absence a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from securelink import devca

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: The opening fence of a Python block: ```python, or MyST's ```{code-block} python.
FENCE = re.compile(r"^```(?:python|\{code-block\} python)\s*$")
#: The marker comment on the line before a fence.
MARKER = re.compile(r"^<!--\s*(fragment|not run|continues)\s*:\s*(.*?)\s*-->\s*$")
#: Calls that write files.
WRITES = re.compile(r"minica\(|\.write_(?:bytes|text)\(|open\([^)]*\"[wx]b?\"")
#: Other spellings of a Python fence, which the collector would miss.
OTHER_FENCE = re.compile(r"\s*```\s*(?:\{code-block\}\s*)?(?:py|python3|pycon|ipython)\s*$")
#: A comment that looks like a marker but is not one (a typo would silently run nothing).
ALMOST = re.compile(r"<!--\s*(fragment|not[ -]?run|continues)", re.IGNORECASE)

TIMEOUT = 60  # seconds for one block; the slowest take about 2 s

#: Run before each block, in the same interpreter: the examples reach loopback addresses only.
GUARD = textwrap.dedent(
    """\
    import ipaddress
    import runpy
    import sys


    def _loopback(host: object) -> bool:
        if host is None or host in ("localhost", b"localhost", ""):
            return True
        if isinstance(host, bytes):
            host = host.decode()
        if not isinstance(host, str):
            return True  # AF_UNIX paths and the like
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False


    def _guard(event: str, args: tuple) -> None:
        if event == "socket.getaddrinfo" and not _loopback(args[0]):
            raise OSError(f"documentation examples use loopback only, not {args[0]!r}")
        if event == "socket.connect" and isinstance(args[1], tuple) and not _loopback(args[1][0]):
            raise OSError(f"documentation examples use loopback only, not {args[1]!r}")


    sys.addaudithook(_guard)
    sys.argv = ["example.py"]
    runpy.run_path("example.py", run_name="__main__")
    """
)


@dataclass(frozen=True)
class Block:
    """One ```python block of a page."""

    page: Path
    line: int  # the line of the opening fence, 1-based
    code: str
    kind: str  # "run", "not run", "continues" or "fragment"
    reason: str
    prefix: str = ""  # for "continues": the code of the block it continues

    @property
    def script(self) -> str:
        """What is run and type-checked: the block, after the block it continues."""
        return self.prefix + self.code

    @property
    def writes_files(self) -> bool:
        """Whether the block makes its own files (then it starts in an empty directory)."""
        return bool(WRITES.search(self.script))

    @property
    def where(self) -> str:
        """``docs/page.md:12``, for test ids and messages."""
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def module(self) -> str:
        """A module name for the type check: ``ex_docs_page_md_12``."""
        return "ex_" + re.sub(r"\W", "_", self.page.relative_to(ROOT).as_posix()) + f"_{self.line}"


def collect(page: Path) -> list[Block]:
    """The Python blocks of one page, with the marker before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            i += 1
            continue
        end = i + 1
        while not lines[end].startswith("```"):
            end += 1
        body = lines[i + 1 : end]
        while body and body[0].startswith(":"):  # MyST directive options (:class: ...)
            body = body[1:]
        if body and not body[0].strip():
            body = body[1:]
        marker = MARKER.match(lines[i - 1]) if i else None
        kind, reason = (marker.group(1), marker.group(2)) if marker else ("run", "")
        prefix = ""
        if kind == "continues":
            base = [b for b in blocks if b.kind == "run"]
            assert base, f"{page.name}:{i + 1}: continues no block"
            prefix = base[-1].code + "\n\n"
        blocks.append(Block(page, i + 1, "\n".join(body) + "\n", kind, reason, prefix))
        i = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in collect(page)]
RUN = [b for b in BLOCKS if b.kind in ("run", "continues")]
CHECKED = [b for b in BLOCKS if b.kind != "fragment"]


def write_setup_files(directory: Path) -> None:
    """The files the examples open, made by the development CA.

    ``certs/`` in minica's layout, as the quickstart makes it (``minica.pem``, ``minica-key.pem``,
    ``localhost/`` for localhost and 127.0.0.1, ``client.example/``), and the flat names of the
    README and the option pages, from a second CA: ``ca.pem``; ``server.pem`` and ``server.key``
    (localhost, 127.0.0.1), ``old-server.key`` (a key of another certificate); ``client.pem`` and
    ``client.key`` (client.example); ``server.p12`` and ``client.p12`` (password ``changeit``).
    """
    certs = directory / "certs"
    certs.mkdir()
    devca.minica(certs, domains=["localhost"], ip_addresses=["127.0.0.1"])
    devca.minica(certs, domains=["client.example"])
    ca = devca.CertificateAuthority()
    server = ca.issue("localhost", "127.0.0.1", usage=devca.Usage.SERVER)
    client = ca.issue("client.example", usage=devca.Usage.CLIENT)
    old = ca.issue("localhost", usage=devca.Usage.SERVER)
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_pem,
        "server.key": server.key_pem,
        "old-server.key": old.key_pem,
        "client.pem": client.cert_pem,
        "client.key": client.key_pem,
        "server.p12": server.pkcs12("changeit"),
        "client.p12": client.pkcs12("changeit"),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)


@pytest.fixture(scope="module")
def setup_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set of setup files, copied into each block's directory."""
    directory = tmp_path_factory.mktemp("doc-setup")
    write_setup_files(directory)
    return directory


class TestMarkers:
    """Each block is run, or marked with a reason; markers are spelled right."""

    def test_blocks_found(self) -> None:
        """The collector finds the pages' blocks (a broken pattern would test nothing)."""
        assert len(BLOCKS) > 50
        assert any(b.page.name == "README.md" for b in RUN)

    @pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind != "run"], ids=lambda b: b.where)
    def test_marked_with_reason(self, block: Block) -> None:
        """A block that is not run says why, in words."""
        assert len(block.reason.split()) >= 3, f"{block.where}: give the reason in a few words"

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
    def test_no_misspelled_marker(self, page: Path) -> None:
        """A marker comment sits right before a Python fence, in the one spelling collected."""
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            # Python under another fence would escape the collector: one spelling only.
            assert not OTHER_FENCE.match(line), f"{page.name}:{number}: write ```python"
            assert not re.match(r"\s+```(python|\{code-block\})", line), (
                f"{page.name}:{number}: an indented Python block is not collected"
            )
            if line.startswith("<!--") and ALMOST.search(line):
                assert MARKER.match(line), f"{page.name}:{number}: marker not understood"
                assert number < len(lines) and FENCE.match(lines[number]), (
                    f"{page.name}:{number}: a marker must be on the line before a ```python fence"
                )


class TestRun:
    """The complete examples run."""

    @pytest.mark.parametrize("block", RUN, ids=lambda b: b.where)
    def test_runs(self, block: Block, setup_files: Path, tmp_path: Path) -> None:
        """The block runs as a script, in a directory holding the setup files, and exits 0."""
        work = tmp_path / "work"
        if block.writes_files:
            work.mkdir()
        else:
            shutil.copytree(setup_files, work)
        (work / "example.py").write_text(block.script, encoding="utf-8")
        (work / "_guard.py").write_text(GUARD, encoding="utf-8")
        # No SSL_CERT_FILE/SSL_CERT_DIR: the examples must not depend on this machine's settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_CERT_")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            done = subprocess.run(
                [sys.executable, "_guard.py"],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:  # run() has killed it
            pytest.fail(f"{block.where} did not finish in {TIMEOUT} s")
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"

    def test_guard_refuses_other_hosts(self, tmp_path: Path) -> None:
        """The loopback guard the blocks run under stops a name that is not loopback."""
        (tmp_path / "example.py").write_text(
            'import socket\nsocket.create_connection(("example.com", 443), timeout=1)\n'
        )
        (tmp_path / "_guard.py").write_text(GUARD, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "_guard.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 1
        assert "examples use loopback only, not 'example.com'" in done.stderr


class TestTypes:
    """The examples pass ``mypy --strict``, as users' code that copies them would."""

    def test_mypy_strict(self, tmp_path: Path) -> None:
        """All the run and type-checked blocks, each as its own module, in one mypy run."""
        if importlib.util.find_spec("mypy") is None:
            if os.environ.get("SECURELINK_REQUIRE_MYPY") == "1":
                pytest.fail("SECURELINK_REQUIRE_MYPY=1 but mypy is not installed")
            pytest.skip("mypy is not installed (it is in the dev extra, not in test)")
        by_file = {}
        for block in CHECKED:
            (tmp_path / f"{block.module}.py").write_text(block.script, encoding="utf-8")
            by_file[f"{block.module}.py"] = block
        # From tmp_path, so the project's [tool.mypy] (its file list) does not apply.
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--strict",
                "--no-error-summary",
                "--cache-dir",
                str(tmp_path / ".mypy_cache"),
                *sorted(by_file),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        errors = []
        for output in done.stdout.splitlines():
            name, _, rest = output.partition(":")
            found = by_file.get(name)
            number, _, message = rest.partition(":")
            if found is None or not number.isdigit():
                errors.append(output)
                continue
            line = int(number) - found.prefix.count("\n")  # <= 0: in the block continued
            where = f"{found.page.relative_to(ROOT).as_posix()}:{found.line + line}"
            errors.append(f"{where}:{message}")
        assert done.returncode == 0, "mypy --strict:\n" + "\n".join(errors) + done.stderr
