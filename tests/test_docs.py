"""Every public name is documented, so the API reference cannot drift from the code."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import securelink
from securelink import devca, errors

DOCS = Path(__file__).resolve().parent.parent / "docs"


def public_names() -> list[tuple[str, str]]:
    names = [("securelink", n) for n in securelink.__all__ if n != "__version__"]
    names += [("securelink.errors", n) for n in errors.__all__]
    names += [("securelink.devca", n) for n in devca.__all__]
    return names


class TestReference:
    """The API page and the docstrings cover the whole public API."""

    @pytest.mark.parametrize(("module", "name"), public_names())
    def test_in_api_page(self, module: str, name: str) -> None:
        """Each public name appears in docs/api.md, by name or through its module's __all__."""
        text = (DOCS / "api.md").read_text()
        # `automodule` with `:members:` documents exactly the module's __all__.
        whole_module = f".. automodule:: {module}\n   :members:" in text
        assert name in text or whole_module

    @pytest.mark.parametrize(("module", "name"), public_names())
    def test_has_docstring(self, module: str, name: str) -> None:
        """Each public class and function has a docstring of its own."""
        obj = getattr(__import__(module, fromlist=[name]), name)
        assert inspect.getdoc(obj)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if not attr.startswith("_") and callable(value):
                    assert inspect.getdoc(value), f"{name}.{attr} has no docstring"
