"""One vocabulary for the causes: each cause field's values are one ``Literal`` alias.

The values the code can produce are read from the source with :mod:`ast` (never by grepping
text): every string that reaches a cause keyword (``problem=``, ``kind=``, ``mismatch=``,
``hook=``, ``reason=``, ``code=``) directly, through a conditional expression, through a local
variable or through a parameter of the function that raises.  They must be exactly the values of
the alias, which must be exactly the values the docs list.  And the same certificate problem has
the same code whether loading or :func:`securelink.inspect` finds it, on real certificates.
"""

from __future__ import annotations

import ast
import re
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import securelink
from securelink import CertificateProblemError, ServerOptions, devca, errors

from . import pki

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "securelink"
DOCS = ROOT / "docs"

#: Every alias of a cause field, by name.
ALIASES = (
    "CertificateProblem",
    "FindingCode",
    "PasswordReason",
    "MismatchKind",
    "AuthorityKind",
    "RejectingHook",
    "IdentityProblem",
)

#: (the class that takes the keyword, the keyword): the alias of its values.
FIELDS = {
    ("CertificateProblemError", "problem"): "CertificateProblem",
    ("KeyPasswordError", "reason"): "PasswordReason",
    ("ProtocolMismatchError", "mismatch"): "MismatchKind",
    ("UnknownAuthorityError", "kind"): "AuthorityKind",
    ("ConnectionRejectedError", "hook"): "RejectingHook",
    ("IdentityUnavailableError", "problem"): "IdentityProblem",
    ("Finding", "code"): "FindingCode",
}

#: Names whose values come from a table rather than a literal at the call: (module, function,
#: name).  The hook names travel in (name, callable) pairs, collected by :func:`hook_pairs`.
FROM_PAIRS = {
    ("_hooks", "run_verify_connection", "name"),
    ("_sockets", "_explained", "hook"),
}

#: The old spellings, renamed so that loading and inspect agree (CHANGELOG, 0.x).
RENAMED = {
    "no-subject-alt-name": "no-san",
    "chain-order": "chain-out-of-order",
    "weak-signature": "sha1-signature / md5-signature",
}

#: Codes of CertificateProblemError about a CA source as a whole: no one certificate has them.
CA_SOURCE_ONLY = {"no-ca-certificate", "all-cas-expired"}


def values(alias: str) -> tuple[str, ...]:
    """The values of an alias of securelink.errors, as typing sees them at run time."""
    return typing.get_args(getattr(errors, alias))


# ---------------------------------------------------------------------------------------------
# Reading the source


class Module:
    """One source module: its tree, and each node's enclosing function."""

    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.parent: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
        self._walk(self.tree, None)

    def _walk(self, node: ast.AST, func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            self.parent[child] = func
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            self._walk(child, inner)

    def calls(self) -> Iterator[tuple[ast.Call, str]]:
        """Every call, with the name it calls (``f(...)`` and ``x.f(...)`` both give ``f``)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                yield node, name

    def calls_of(self, defining: Module, function: str) -> Iterator[ast.Call]:
        """The calls in this module of *function*, defined in module *defining*.

        In its own module any call by that name counts; elsewhere ``_module.function(...)``, or
        ``function(...)`` where it was imported with ``from ._module import function``.
        """
        imported = any(
            isinstance(node, ast.ImportFrom)
            and node.module == defining.name
            and any(alias.name == function for alias in node.names)
            for node in ast.walk(self.tree)
        )
        for call, name in self.calls():
            if name != function:
                continue
            func = call.func
            if (
                self is defining
                or (isinstance(func, ast.Name) and imported)
                or (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == defining.name
                )
            ):
                yield call


MODULES = [Module(p) for p in sorted(SOURCE.glob("*.py"))]


def modules() -> list[Module]:
    return MODULES


class Unresolved(Exception):
    """A value that is neither a literal nor traceable to one."""


def strings(
    module: Module, expr: ast.expr, func: ast.FunctionDef | ast.AsyncFunctionDef | None
) -> set[str]:
    """The string values *expr* can have, traced through locals and parameters in *module*."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return strings(module, expr.body, func) | strings(module, expr.orelse, func)
    if isinstance(expr, ast.Name) and func is not None:
        if (module.name, func.name, expr.id) in FROM_PAIRS:
            return set()
        # Each place the name gets its value from; one may give no string (FROM_PAIRS).
        found: list[set[str]] = []
        for node in ast.walk(func):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign) and node.value is not None
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == expr.id for t in targets):
                assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
                found.append(strings(module, node.value, func))
        params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
        if expr.id in params or expr.id in [a.arg for a in func.args.kwonlyargs]:
            position = params.index(expr.id) if expr.id in params else None
            if position is not None and params and params[0] == "self":
                position -= 1  # a method, called as obj.method(...)
            for caller in modules():
                for call in caller.calls_of(module, func.name):
                    for keyword in call.keywords:
                        if keyword.arg == expr.id:
                            found.append(strings(caller, keyword.value, caller.parent[call]))
                    if position is not None and position < len(call.args):
                        found.append(strings(caller, call.args[position], caller.parent[call]))
        if found:
            return set().union(*found)
    raise Unresolved(f"{module.name}: {ast.unparse(expr)} in {func.name if func else '<module>'}")


def produced() -> dict[str, set[str]]:
    """The values the source can give each cause keyword, by the alias that types it."""
    result: dict[str, set[str]] = {alias: set() for alias in ALIASES}
    for module in modules():
        for call, name in module.calls():
            for keyword in call.keywords:
                alias = FIELDS.get((name, keyword.arg or ""))
                if alias is not None:
                    result[alias] |= strings(module, keyword.value, module.parent[call])
    result["RejectingHook"] |= hook_pairs()
    return result


def hook_pairs() -> set[str]:
    """The names of the (name, check) pairs that reach ConnectionRejectedError's ``hook``.

    They are the context's checks (``checks.append(("allowed_peers", ...))``) and the refusal
    an ``on_server_name`` callback leaves on the connection (``_securelink_hook_error``).
    """
    names = set()
    for module in modules():
        for node in ast.walk(module.tree):
            pair = None
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "append"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "checks"
            ):
                pair = node.args[0]
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "_securelink_hook_error"
                for t in node.targets
            ):
                pair = node.value
            if isinstance(pair, ast.Tuple) and isinstance(pair.elts[0], ast.Constant):
                names.add(str(pair.elts[0].value))
    return names


def type_checking_literals() -> dict[str, tuple[str, ...]]:
    """Each alias's values in its ``Literal[...]`` in errors.py, as type checkers read them."""
    tree = ast.parse((SOURCE / "errors.py").read_text(encoding="utf-8"))
    result = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(node.value, ast.Subscript)
            and ast.unparse(node.value.value) == "Literal"
        ):
            elements = node.value.slice
            items = elements.elts if isinstance(elements, ast.Tuple) else [elements]
            result[node.target.id] = tuple(ast.literal_eval(e) for e in items)
    return result


# ---------------------------------------------------------------------------------------------
# The aliases


class TestAliases:
    """Each cause field has one list of values, the same for type checkers and at run time."""

    def test_run_time_aliases_are_the_type_checkers(self) -> None:
        """typing.get_args of each alias equals its Literal[...] in errors.py, in order."""
        literals = type_checking_literals()
        assert sorted(literals) == sorted(ALIASES)
        assert {alias: values(alias) for alias in ALIASES} == literals

    def test_aliases_are_literals_without_duplicates(self) -> None:
        for alias in ALIASES:
            assert typing.get_origin(getattr(errors, alias)) is typing.Literal
            assert len(set(values(alias))) == len(values(alias)), alias

    def test_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError, match="NoSuchAlias"):
            _ = errors.NoSuchAlias

    def test_import_does_not_load_typing(self) -> None:
        """The aliases are built on first use: importing securelink does not import typing."""
        code = "import sys, securelink, securelink.errors; print('typing' in sys.modules)"
        out = subprocess.run(
            [__import__("sys").executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert out.strip() == "False"

    def test_one_vocabulary_for_certificates(self) -> None:
        """Every problem loading finds in one certificate is a Finding code, spelled the same."""
        problems = set(values("CertificateProblem")) - CA_SOURCE_ONLY
        assert problems - set(values("FindingCode")) == set()
        assert set(values("CertificateProblem")) >= CA_SOURCE_ONLY

    def test_old_spellings_are_gone(self) -> None:
        everything = {v for alias in ALIASES for v in values(alias)}
        assert everything & set(RENAMED) == set()


class TestProducedValues:
    """The values the source gives each cause keyword are exactly its alias's."""

    def test_every_produced_value_is_in_its_alias(self) -> None:
        found = produced()
        outside = {a: sorted(found[a] - set(values(a))) for a in ALIASES}
        assert outside == {a: [] for a in ALIASES}

    def test_every_alias_value_is_produced(self) -> None:
        """No value is listed that no code path gives: the alias would promise a dead value."""
        found = produced()
        unused = {a: sorted(set(values(a)) - found[a]) for a in ALIASES}
        assert unused == {a: [] for a in ALIASES}

    def test_severity_table_has_every_code(self) -> None:
        from securelink._inspect import _SEVERITY

        assert sorted(_SEVERITY) == sorted(values("FindingCode"))

    def test_tracing_catches_an_untraceable_value(self) -> None:
        """The reader refuses a value it cannot trace, rather than passing it silently."""
        tree = ast.parse("def f(x):\n    raise CertificateProblemError('m', problem=g(x))\n")
        module = Module.__new__(Module)
        module.name, module.tree, module.parent = "t", tree, {}
        module._walk(tree, None)
        call = next(c for c, n in module.calls() if n == "CertificateProblemError")
        with pytest.raises(Unresolved):
            strings(module, call.keywords[0].value, module.parent[call])


# ---------------------------------------------------------------------------------------------
# The docs


def quoted(text: str) -> set[str]:
    return set(re.findall(r'`"([\w-]+)"`', text))


class TestDocs:
    """Each page lists exactly the values of its cause field."""

    def test_errors_page_table(self) -> None:
        """docs/errors.md's "Cause fields" table: one row per alias, its values exactly."""
        text = (DOCS / "errors.md").read_text(encoding="utf-8")
        rows = {
            m.group(1): set(re.findall(r'`"([\w-]+)"`', m.group(2)))
            for m in re.finditer(r"^\| .*? \| `(\w+)` \| (.*) \|$", text, re.MULTILINE)
        }
        expected = {a: set(values(a)) for a in ALIASES if a != "FindingCode"}
        assert rows == expected

    def test_certificate_problem_page(self) -> None:
        """Its definition list has one term per value of CertificateProblem."""
        text = (DOCS / "errors" / "certificate-problem-error.md").read_text(encoding="utf-8")
        terms = set()
        for line in text.splitlines():
            if line.startswith('`"'):
                terms |= quoted(line)
        assert terms == set(values("CertificateProblem"))

    def test_findings_table(self) -> None:
        """docs/formats.md's findings table has one row (or shared row) per FindingCode."""
        text = (DOCS / "formats.md").read_text(encoding="utf-8")
        codes = set()
        for line in text.splitlines():
            match = re.match(r"^\| ((?:`[\w-]+`(?:, )?)+) \| (?:error|warning|info) \|", line)
            if match:
                codes |= set(re.findall(r"`([\w-]+)`", match.group(1)))
        assert codes == set(values("FindingCode"))

    @pytest.mark.parametrize(
        ("page", "alias"),
        [
            ("key-password-error.md", "PasswordReason"),
            ("protocol-mismatch-error.md", "MismatchKind"),
            ("unknown-authority-error.md", "AuthorityKind"),
        ],
    )
    def test_error_page_lists_values(self, page: str, alias: str) -> None:
        text = (DOCS / "errors" / page).read_text(encoding="utf-8")
        assert set(values(alias)) <= quoted(text)
        assert f"securelink.errors.{alias}" in text

    def test_no_page_uses_an_old_spelling(self) -> None:
        pages = [*DOCS.rglob("*.md"), ROOT / "README.md"]
        for page in pages:
            if page.name in {"changelog.md", "CHANGELOG.md"}:
                continue
            text = page.read_text(encoding="utf-8")
            for old in RENAMED:
                assert f'"{old}"' not in text and f"`{old}`" not in text, (page, old)


# ---------------------------------------------------------------------------------------------
# Real certificates: loading and inspect agree


def bundle(cert: Any, key: Any) -> bytes:
    """PEM of a chain (one certificate or several) followed by its key."""
    chain = cert if isinstance(cert, tuple) else (cert,)
    return b"".join(pki.pem(c) for c in chain) + pki.key_pem(key)


def loading_problem(cert: Any, key: Any) -> str:
    with pytest.raises(CertificateProblemError) as info:
        securelink.server_context(ServerOptions(cert=cert, key=key), shared=False)
    assert type(info.value) is CertificateProblemError
    return info.value.problem


def openssl_signed(tmp_path: Path, digest: str) -> tuple[Path, Path]:
    """A leaf signed with *digest* (``sha1``, ``md5``) by an RSA CA, made by the openssl CLI.

    cryptography refuses to sign with either, so the openssl command line does it.
    """
    ca = devca.CertificateAuthority(key_type="rsa")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "ca.key").write_bytes(ca.key_pem)
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    for args in (
        ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key"],
        ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", f"-{digest}"],
    ):
        extra = (
            ["-subj", "/CN=localhost", "-out", "leaf.csr"]
            if args[0] == "req"
            else ["-days", "30", "-extfile", "ext.cnf", "-out", "leaf.pem"]
        )
        subprocess.run(
            ["openssl", *args, *extra], cwd=tmp_path, check=True, capture_output=True, timeout=60
        )
    (tmp_path / "leaf.key").chmod(0o600)
    return tmp_path / "leaf.pem", tmp_path / "leaf.key"


class TestSameCodeEverywhere:
    """The same certificate problem gets the same code from loading and from inspect."""

    @pytest.mark.parametrize("case", ["no-san", "ca-as-leaf", "weak-key", "chain-out-of-order"])
    def test_loading_and_inspect_agree(self, ca: devca.CertificateAuthority, case: str) -> None:
        cert: Any  # one certificate, or a chain
        if case == "no-san":
            cert, key = pki.leaf(ca, names=(), common_name="localhost")
        elif case == "ca-as-leaf":
            cert, key = ca.certificate, ca.private_key
        elif case == "weak-key":
            cert, key = pki.leaf(ca, key=pki.weak_rsa_key())
        else:
            inter = ca.intermediate()
            issued = inter.issue("localhost")
            cert, key = (issued.certificate, ca.certificate, inter.certificate), issued.private_key
        problem = loading_problem(cert, key)
        assert problem == case
        assert problem in securelink.inspect(bundle(cert, key)).codes()

    def test_expired(self, ca: devca.CertificateAuthority) -> None:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        issued = ca.issue(
            "localhost",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=2),
        )
        problem = loading_problem(issued.certificate, issued.private_key)
        assert problem == "expired"
        codes = securelink.inspect(bundle(issued.certificate, issued.private_key)).codes()
        assert problem in codes

    @pytest.mark.parametrize("digest", ["sha1", "md5"])
    def test_weak_signature_names_its_hash(self, tmp_path: Path, digest: str) -> None:
        """SHA-1 and MD5 are distinct facts, with distinct codes, the same in both places."""
        cert, key = openssl_signed(tmp_path, digest)
        problem = loading_problem(str(cert), str(key))
        assert problem == f"{digest}-signature"
        pem = cert.read_bytes() + serialization.load_pem_private_key(
            key.read_bytes(), None
        ).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert problem in securelink.inspect(pem).codes()


def _mistakes_typing_catches(exc: CertificateProblemError, finding: securelink.Finding) -> None:
    """Never run: ``mypy --strict`` rejects an old or misspelt code (see tests/typing/).

    Each line is marked ``# type: ignore[<code>]`` and mypy warns of unused ignores, so if the
    fields ever went back to plain ``str`` these ignores would become unused and mypy would fail.
    """
    assert exc.problem != "chain-order"  # type: ignore[comparison-overlap]
    assert finding.code != "weak-signature"  # type: ignore[comparison-overlap]
    CertificateProblemError("m", source="s", problem="no-subject-alt-name", subject="")  # type: ignore[arg-type]
