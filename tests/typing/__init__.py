"""Files type-checked with ``mypy --strict`` and never run: see check_public_api.py."""
