"""Setting up new nodes: device identity (keys, requests, certificates), the technician's signing
credential and the ``ioc-edge provision`` flow.

- :mod:`provisioning.pki`: keys, certificate requests, certificates and revocation lists (``cryptography``).
- :mod:`provisioning.credential`: the technician's signing credential, which certifies devices in the field.
- :mod:`provisioning.identity`: a node's own key, certificate and CA certificate, beside its config.
- :mod:`provisioning.flow`: the provisioning walk-through behind ``ioc-edge provision``.
- :mod:`provisioning.tls`: the TLS client context both the node's uplink and the IOC's receiver use.
"""
