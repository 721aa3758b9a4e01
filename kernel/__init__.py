"""TaylorDash kernel: the pluggy extension host every feature plugs into."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("taylordash")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
