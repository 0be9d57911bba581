"""Setting up new nodes: device identity (keys, requests, certificates), the technician's signing
credential (the ``ioc-edge provision`` walk-through, which writes a node config, is the node's:
``edge.provision``).

- :mod:`provisioning.pki`: keys, certificate requests, certificates and revocation lists (``cryptography``).
- :mod:`provisioning.credential`: the technician's signing credential, which certifies devices in the field.
- :mod:`provisioning.identity`: a node's own key, certificate and CA certificate, beside its config.
- :mod:`provisioning.tls`: the TLS client context both the node's uplink and the IOC's receiver use.
"""
