"""Headrace engine: domain, orchestration and governance. Imports no web framework."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("headrace")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
