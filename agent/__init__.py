"""erozgar-agent: on-site monitoring for e-Rozgar centres."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("erozgar-agent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
