"""userprov's four workers, their shared runtime, and the `userprov` command."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("userprov")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
