"""Push notification server for APNs, FCM and HMS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pushserver")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
