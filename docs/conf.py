"""Sphinx configuration for the securelink documentation."""

from __future__ import annotations

import enum
import pkgutil
from typing import Any

import securelink

project = "securelink"
author = "The securelink developers"
copyright = "The securelink developers"
release = securelink.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Unresolvable references (the standard library, cryptography) are rendered as plain text rather
# than failing the warnings-as-errors build.  intersphinx is deliberately not used: it downloads
# inventories at build time, and the docs must build without network access.  Pages link to
# https://docs.python.org and https://cryptography.io with plain links instead.
nitpicky = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Each field in an "Attributes:" section becomes its own ".. attribute::" entry, which pages can
# link to (ClientOptions.ca).  Never add :undoc-members: to the option classes or the devca
# value classes: their __slots__ descriptors would then be described a second time ("duplicate
# object description").  Each object is documented once with an index entry; every other page
# that shows it (api.md) uses :no-index:.
napoleon_use_ivar = False

html_theme = "furo"
html_title = f"securelink {release}"


def _keep_attribute_docs_whole(
    app: Any, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    # Napoleon reads the first line of an attribute's or property's docstring as "type: text", so
    # "Do not ask (Go: NoClientCert)." or "The CA certificate as PEM: what peers must trust."
    # would render with the words before the colon as a type.  When those words are prose (an
    # enum member, or words with spaces and no brackets), a leading empty reST comment ("..",
    # then a blank line) makes napoleon take the whole docstring as the description.
    if what not in ("attribute", "property") or not lines or ":" not in lines[0]:
        return
    before = lines[0].split(":", 1)[0]
    if _is_enum_member(name) or (" " in before.strip() and "[" not in before):
        lines[:0] = ["..", ""]


def _is_enum_member(name: str) -> bool:
    parent, _, member = name.rpartition(".")
    try:
        owner = pkgutil.resolve_name(parent)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(owner, type) and issubclass(owner, enum.Enum) and member in owner.__members__


def setup(app: Any) -> None:
    """Register the docstring fix-up; it must run before napoleon (priority 500)."""
    app.connect("autodoc-process-docstring", _keep_attribute_docs_whole, priority=400)
