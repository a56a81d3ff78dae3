"""Sphinx configuration for the securelink documentation."""

from __future__ import annotations

import securelink

project = "securelink"
author = "The securelink developers"
copyright = "The securelink developers"  # noqa: A001 - Sphinx reads this name
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
# Render "Attributes:" sections as field lists: as ".. attribute::" directives they would
# describe each dataclass field a second time next to autodoc's own entry (duplicate objects).
napoleon_use_ivar = False

html_theme = "furo"
html_title = f"securelink {release}"
