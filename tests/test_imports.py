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
