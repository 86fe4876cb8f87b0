"""drip: email drip courses, one lesson a day in each subscriber's own morning.

The repository root is this package; the layers, from the bottom up, are described in
ARCHITECTURE.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drip-courses")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "0+unknown"
