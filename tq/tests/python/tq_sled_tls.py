"""Schemathesis hooks for tq's tests: its HTTPS client verifies a sled as
tq's own clients do.

A sled's API certificate names no host, only its platform id (a
`urn:tq-platform-id:` SAN URI), so a client that checks a host name
cannot verify it. This module, loaded by schemathesis
(`SCHEMATHESIS_HOOKS`), makes every HTTPS connection of its `requests`
sessions trust the rack CA alone (`TQ_RACK_CA`, a PEM file; pass the same
file to `--tls-verify`), speak TLS 1.3, skip the host-name check, and
refuse a certificate unless its one platform-id URI is exactly
`TQ_PLATFORM_ID_URI` (spelled by tq-std's `platform_id_uri`, so the URI
is compared, never parsed, here).
"""

import os
import ssl

import requests.adapters
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

RACK_CA = os.environ["TQ_RACK_CA"]
PLATFORM_ID_URI = os.environ["TQ_PLATFORM_ID_URI"]
URI_PREFIX = "urn:tq-platform-id:"


class SledConnection(HTTPSConnection):
    """A connection that completes only with the expected sled."""

    def connect(self):
        super().connect()
        # Verified under the rack CA by now, so the certificate is there.
        names = self.sock.getpeercert().get("subjectAltName", ())
        uris = [value for kind, value in names if kind == "URI" and value.startswith(URI_PREFIX)]
        if uris != [PLATFORM_ID_URI]:
            self.close()
            raise ssl.SSLCertVerificationError(
                f"the certificate names {uris}, not {PLATFORM_ID_URI}"
            )


class SledPool(HTTPSConnectionPool):
    ConnectionCls = SledConnection


def rack_context():
    context = ssl.create_default_context(cafile=RACK_CA)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # No host name to check: the platform id is (SledConnection).
    context.check_hostname = False
    return context


_init_poolmanager = requests.adapters.HTTPAdapter.init_poolmanager


def init_poolmanager(self, *args, **kwargs):
    kwargs["ssl_context"] = rack_context()
    kwargs["assert_hostname"] = False
    _init_poolmanager(self, *args, **kwargs)
    self.poolmanager.pool_classes_by_scheme = {
        **self.poolmanager.pool_classes_by_scheme,
        "https": SledPool,
    }


requests.adapters.HTTPAdapter.init_poolmanager = init_poolmanager
