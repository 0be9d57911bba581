"""A device id is matched whole: ``^...$`` with ``re.match`` accepts a trailing newline ("vessel-042\\n"),
a second name for a device that a topic, a certificate or a file name would then carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_ioc import EPOCH, positions

from edge.config import ConfigError, parse_config
from ioc.ca import CertificateAuthority
from provisioning import pki
from provisioning.pki import PkiError
from sync.wire import Batch, WireError, decode_batch, encode_batch, parse_up_topic

ID = "vessel-042\n"


def test_an_uplink_topic_with_a_newline_after_the_device_is_refused():
    with pytest.raises(WireError) as raised:
        parse_up_topic("ioc/v1", f"ioc/v1/{ID}/up/position")
    assert (raised.value.reason, str(raised.value)) == (
        "bad_topic",
        "bad_topic: 'ioc/v1/vessel-042\\n/up/position' is not ioc/v1/<device>/up/<stream>",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("device", ID, "bad_schema: device 'vessel-042\\n' is not a valid device id"),
        ("epoch", EPOCH + "\n", f"bad_schema: epoch '{EPOCH}\\n' is not 16 hex digits"),
    ],
)
def test_a_payload_naming_a_device_or_epoch_with_a_newline_is_refused(field, value, message):
    batch = Batch("vessel-042", EPOCH, "position", [1], positions(0, 1))._replace(**{field: value})
    with pytest.raises(WireError) as raised:
        decode_batch(encode_batch(batch))
    assert (raised.value.reason, str(raised.value)) == ("bad_schema", message)


def test_a_node_config_with_a_newline_in_its_device_id_is_refused():
    with pytest.raises(ConfigError) as raised:
        parse_config('[node]\ndevice_id = "vessel-042\\n"\n', "edge.toml")
    assert str(raised.value) == (
        "node.device_id (edge.toml line 2): 'vessel-042\\n' does not match the pattern "
        "^[a-z0-9][a-z0-9_-]{0,63}$"
    )


def test_a_certificate_request_or_a_signer_named_with_a_newline_is_refused(tmp_path: Path):
    csr = pki.device_csr(pki.new_key(), ID, "Thuan An")
    with pytest.raises(PkiError) as raised:
        pki.check_device_csr(csr)
    assert str(raised.value) == (
        f"the request's CN 'vessel-042\\n' is not a device id ({pki.DEVICE_ID.pattern})"
    )
    authority = CertificateAuthority.create(tmp_path / "ca", "IOC Hue")
    with pytest.raises(PkiError) as raised:
        authority.issue_signer("alice\n")
    assert str(raised.value) == f"signer name 'alice\\n' is not valid; expected {pki.DEVICE_ID.pattern}"
    assert not (tmp_path / "ca" / "signers" / "alice\n").exists()
