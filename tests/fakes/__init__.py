"""Fake APNs, Google (OAuth + FCM) and Huawei servers speaking the real protocols on loopback.

See README.md in this directory for the fixtures, the knobs, the control endpoints, the
command line and the measured ceiling.
"""

from .apns import ApnsFake, ApnsKey, ApnsRemote, device_token
from .google import INVALID_REGISTRATION_TOKEN, GoogleFake, GoogleRemote, ServiceAccount
from .hms import HmsApp, HmsFake, HmsRemote
from .process import FakeProcess
from .runner import BackgroundLoop, RecordedRequest, Summary
from .tls import FakeCA

__all__ = [
    "INVALID_REGISTRATION_TOKEN",
    "ApnsFake",
    "ApnsKey",
    "ApnsRemote",
    "BackgroundLoop",
    "FakeCA",
    "FakeProcess",
    "GoogleFake",
    "GoogleRemote",
    "HmsApp",
    "HmsFake",
    "HmsRemote",
    "RecordedRequest",
    "ServiceAccount",
    "Summary",
    "device_token",
]
