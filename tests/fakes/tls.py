"""A throw-away certificate authority and a server certificate for the fakes.

The server under test trusts the fakes through ``PUSH_SERVER_PROVIDER_CA_FILE``, so the CA is
always written to a PEM file (``FakeCA.ca_file``); nothing is added to the system's trust store.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "::1")


class FakeCA:
    """A CA valid for this run only, with one leaf certificate for the loopback names.

    ``directory`` receives ``ca.pem``, ``server.pem`` (chain) and ``server.key``; without it a
    temporary directory is made and removed by :meth:`cleanup`.
    """

    def __init__(self, directory: Path | str | None = None) -> None:
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="pushserver-fakes-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="pushserver test fakes")
        self._leaf = self._ca.issue_cert(*SERVER_NAMES)
        self.ca_file = self.directory / "ca.pem"
        self.cert_file = self.directory / "server.pem"
        self.key_file = self.directory / "server.key"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._leaf.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for extra in self._leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert_file), append=True)
        self._leaf.private_key_pem.write_to_path(str(self.key_file))

    @property
    def ca_pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    def server_context(self, alpn: Sequence[str] = ("h2", "http/1.1")) -> ssl.SSLContext:
        """TLS 1.2+ as APNs demands; ALPN decides between HTTP/2 and HTTP/1.1."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._leaf.configure_cert(ctx)
        ctx.set_alpn_protocols(list(alpn))
        return ctx

    def client_context(self, alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.set_alpn_protocols(list(alpn))
        return ctx

    def cleanup(self) -> None:
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
