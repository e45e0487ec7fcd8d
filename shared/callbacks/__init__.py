"""The shared library of the callback-profiles services."""

__version__ = "0.1.0"
