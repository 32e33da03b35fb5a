"""Generators for the documentation site's reference pages (`make docs` runs them)."""
