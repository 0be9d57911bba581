"""The TLS client context of a mutual-TLS MQTT connection, shared by the node's uplink and the IOC's receiver.

Example::

    context = client_context(TlsFiles(Path("tls/ca.crt"), Path("tls/node.crt"), Path("tls/node.key")))
    client.tls_set_context(context)     # paho
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from provisioning.errors import PkiError

__all__ = ["TlsFiles", "TlsSource", "client_context"]


class TlsSource(Protocol):
    """Anything with ``ca``, ``cert`` and ``key`` paths (``UplinkTlsConfig``, :class:`TlsFiles`)."""

    # Read-only properties, so that a frozen dataclass such as TlsFiles matches too.
    @property
    def ca(self) -> Path: ...
    @property
    def cert(self) -> Path: ...
    @property
    def key(self) -> Path: ...


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate to verify the broker with, and this client's certificate chain and key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def receiver(cls, directory: Path) -> TlsFiles:
        """The receivers' identity in a directory written by ``ioc-center broker-config``."""
        return cls(directory / "ca.crt", directory / "receiver.crt", directory / "receiver.key")


def client_context(files: TlsSource, what: str = "uplink.tls") -> ssl.SSLContext:
    """A TLS >= 1.2 client context presenting ``files.cert`` and verifying the server against ``files.ca``.

    Raises :class:`~provisioning.pki.PkiError` naming the setting (``what``) and file when a file is
    missing or unusable, or when the private key is readable by anyone but its owner.
    """
    for name in ("ca", "cert", "key"):
        path = Path(getattr(files, name))
        if not path.is_file():
            raise PkiError(f"{what}.{name}: {path} not found; provision the node first (ioc-edge provision)")
    mode = Path(files.key).stat().st_mode & 0o777
    if mode & 0o077:
        raise PkiError(
            f"{what}.key: {files.key} is readable by others (mode {mode:04o}); chmod 600 {files.key}"
        )
    try:
        # The IOC's CA alone: with no cafile, the default context would also trust every public CA of
        # the system's bundle for the broker's name (and load 140-odd certificates at each start).
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    except ssl.SSLError as exc:
        raise PkiError(f"{what}.ca: {files.ca} is not a PEM CA certificate ({exc.reason})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(files.cert), str(files.key))
    except ssl.SSLError as exc:
        # Never the key's content in the message: only the file names and OpenSSL's reason.
        raise PkiError(
            f"{what}.cert/key: {files.cert} and {files.key} do not form a key pair ({exc.reason})"
        ) from None
    return context
