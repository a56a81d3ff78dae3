"""`import securelink` stays cheap: no cryptography, certifi, asyncio or typing until needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Measured as what `import securelink` adds, since the interpreter may import some of these at
# start-up (site customisations), which is not securelink's doing.
PROBE = """
import json, sys
before = set(sys.modules)
import securelink
print(json.dumps(sorted(set(sys.modules) - before)))
"""

HEAVY = ["asyncio", "certifi", "cryptography", "dataclasses", "inspect", "tempfile", "typing"]


def added_by_import() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    added: list[str] = json.loads(result.stdout)
    return added


class TestImportCost:
    """Importing the package imports only what building options needs."""

    @pytest.mark.parametrize("module", HEAVY)
    def test_not_imported(self, module: str) -> None:
        """The heavy module is not imported by `import securelink`."""
        added = added_by_import()
        assert "securelink" in added
        assert not [m for m in added if m == module or m.startswith(module + ".")]

    def test_devca_imports_cryptography_lazily(self) -> None:
        """Even the development CA module defers cryptography to first use."""
        code = PROBE.replace("import securelink", "import securelink.devca")
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert "cryptography" not in json.loads(result.stdout)


LAZY_PROBE = """
import json, sys
import securelink
loaded = sorted(m for m in sys.modules if m.startswith("securelink."))
lazy = ("inspect", "PeerIdentity", "RotatingServerContext")
names_listed = [n for n in lazy if n in dir(securelink)]
from securelink import inspect
print(json.dumps({"loaded": loaded, "listed": names_listed,
                  "after": "securelink._inspect" in sys.modules,
                  "same": inspect is sys.modules["securelink._inspect"].inspect}))
"""

#: The private modules behind the names that `import securelink` exports lazily.
LAZY_MODULES = ["securelink._identity", "securelink._inspect", "securelink._rotation"]


class TestLazyNames:
    """inspect, peer_identity and RotatingServerContext are imported on first use (PEP 562)."""

    def test_not_imported_until_used(self) -> None:
        """`import securelink` leaves their modules out; `from securelink import` brings them."""
        result = subprocess.run(
            [sys.executable, "-c", LAZY_PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        facts = json.loads(result.stdout)
        assert not set(LAZY_MODULES) & set(facts["loaded"])
        assert facts["listed"] == ["inspect", "PeerIdentity", "RotatingServerContext"]
        assert facts["after"] is True
        assert facts["same"] is True

    def test_every_public_name_resolves(self) -> None:
        """Every name of __all__ is an attribute, the lazy ones the objects of their modules."""
        import securelink
        from securelink import _identity, _inspect, _rotation

        assert {n: getattr(securelink, n) is not None for n in securelink.__all__} == dict.fromkeys(
            securelink.__all__, True
        )
        assert securelink.inspect is _inspect.inspect
        assert securelink.CertificateInfo is _inspect.CertificateInfo
        assert securelink.peer_identity is _identity.peer_identity
        assert securelink.RotatingServerContext is _rotation.RotatingServerContext

    def test_unknown_name(self) -> None:
        """A name that is not exported is an AttributeError, as for any module."""
        import securelink

        with pytest.raises(AttributeError) as info:
            getattr(securelink, "inspekt")  # noqa: B009 - the name is the point
        assert type(info.value) is AttributeError
        assert str(info.value) == "module 'securelink' has no attribute 'inspekt'"
