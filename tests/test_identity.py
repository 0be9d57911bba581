"""Device identity without a broker: the CA, signers, ``ioc-edge provision`` and its re-runs,
revocation lists, the generated broker configuration."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_identity
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.cli import main as edge_cli
from edge.config import UplinkConfig, load_config
from edge.runtime import open_store
from ioc.ca import CertificateAuthority
from ioc.cli import main as center_cli
from ioc.mosquitto_conf import MAX_PACKET_BYTES, BrokerSettings, write_broker_config
from provisioning import pki
from provisioning.credential import SigningCredential
from provisioning.pki import PkiError
from provisioning.tls import TlsFiles, client_context
from sync.records import Position
from sync.store import Store
from sync.uplink import MqttUplink
from sync.wire import MAX_PAYLOAD_BYTES


def invoke(command, args: list[str], stdin: str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(command, args, input=stdin)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def signer(tmp_path: Path) -> Path:
    """A CA in ``tmp/ca`` and technician alice's credential in ``tmp/alice``."""
    invoke(center_cli, ["ca", "init", str(tmp_path / "ca"), "--org", "Hue IOC"])
    invoke(
        center_cli,
        ["ca", "issue-signer", "alice", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path / "alice")],
    )
    return tmp_path / "alice"


def provision(tmp_path: Path, *args: str, stdin: str | None = None, code: int = 0) -> str:
    config = tmp_path / "node" / "edge.toml"
    return invoke(edge_cli, ["provision", "--config", str(config), *args], stdin, code)


FULL = [
    "--device-id",
    "vessel-042",
    "--site",
    "Thuan An",
    "--broker-host",
    "mqtt.example",
    "--broker-port",
    "8883",
]


def test_ca_init_keys_are_0600_and_an_existing_ca_is_never_overwritten(tmp_path: Path, signer: Path) -> None:
    ca = tmp_path / "ca"
    for key in (
        ca / "ca.key",
        ca / "centre" / "ca.key",
        ca / "signers" / "alice" / "signer.key",
        signer / "signer.key",
    ):
        assert key.stat().st_mode & 0o777 == 0o600, key
    before = (ca / "ca.key").read_bytes()
    output = invoke(center_cli, ["ca", "init", str(ca)], code=1)
    assert output == f"{ca}: a CA exists here already; it is never overwritten\n"
    assert (ca / "ca.key").read_bytes() == before


def test_signer_is_an_intermediate_for_client_certificates_with_a_short_signing_window(signer: Path) -> None:
    credential = SigningCredential.load(signer)
    cert = credential.cert
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(
        True, 0
    )
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # nothing it signs passes as a server
    start, end = pki.signing_window(cert)
    assert end - start == dt.timedelta(days=30, minutes=5)
    # The certificate outlives the window by a device's lifetime, so a chain signed on the last day holds.
    assert cert.not_valid_after_utc - end == dt.timedelta(days=3 * 365)
    assert pki.issued_by(cert, credential.ca)


def test_a_signer_past_its_window_signs_nothing(tmp_path: Path, signer: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    old = ca.issue_signer("bob", signing_days=0)  # its window closed as it was made
    with pytest.raises(PkiError) as caught:
        SigningCredential.load(old)
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert str(caught.value) == (
        f"{old}: signer 'bob' may sign from {day} to {day} only; "
        "ask the IOC for a new one (ioc-center ca issue-signer)"
    )


def test_a_request_that_is_not_a_device_s_is_refused(signer: Path) -> None:
    credential = SigningCredential.load(signer)
    key = pki.new_key()
    request = pki.device_csr(key, "Not A Device", "")
    with pytest.raises(PkiError) as caught:
        credential.sign(request, 30)
    assert (
        str(caught.value) == "the request's CN 'Not A Device' is not a device id (^[a-z0-9][a-z0-9_-]{0,63}$)"
    )


def test_provision_asks_what_it_cannot_know_checks_each_answer_and_writes_a_valid_node(
    tmp_path: Path, signer: Path
) -> None:
    answers = [
        "Vessel 42",
        "vessel-042",
        "Thuan An",
        "mqtt.example",
        "70000",
        "",  # the port's default, 8883
        str(tmp_path / "nope"),
        str(signer),
    ]
    output = provision(tmp_path, "--state-dir", str(tmp_path / "state"), stdin="\n".join(answers) + "\n")
    assert (
        "Error: device id 'Vessel 42' is not valid: 1 to 64 of a-z, 0-9, '-' and '_', "
        "starting with a letter or digit" in output
    )
    assert "Error: broker port 70000 is not 1..65535" in output
    assert (
        f"Error: {tmp_path / 'nope'}: no signing credential here "
        "(a directory with signer.key, signer.crt, ca.crt)" in output
    )

    config = load_config(tmp_path / "node" / "edge.toml")
    assert (config.node.device_id, config.node.site, config.node.state_dir) == (
        "vessel-042",
        "Thuan An",
        tmp_path / "state",
    )
    assert (config.uplink.host, config.uplink.port) == ("mqtt.example", 8883)
    tls = config.uplink.tls
    assert (tls.ca, tls.cert, tls.key) == tuple(
        tmp_path / "node" / "tls" / n for n in ("ca.crt", "node.crt", "node.key")
    )
    assert tls.key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").is_dir()

    leaf, chain_signer = pki.load_certificates(tls.cert)
    request = x509.load_pem_x509_csr((tmp_path / "node" / "tls" / "node.csr").read_bytes())
    assert request.subject.rfc4514_string() == "L=Thuan An,CN=vessel-042"
    assert leaf.subject.rfc4514_string() == "L=Thuan An,CN=vessel-042,OU=devices,O=Hue IOC"
    assert leaf.public_key() == pki.load_private_key(tls.key).public_key() == request.public_key()
    assert pki.issued_by(leaf, chain_signer) and pki.issued_by(chain_signer, pki.load_certificates(tls.ca)[0])
    assert f"certificate: {tls.cert} new (not provisioned yet), signed by alice, valid until " in output

    # The key never left the node: not in the credential the technician carries away, not in the output.
    body = b"".join(tls.key.read_bytes().splitlines()[1:-1])
    assert all(body not in p.read_bytes() for p in signer.rglob("*") if p.is_file())
    assert body.decode() not in output
    assert [p.name for p in (signer / "issued").iterdir()] == [f"vessel-042-{leaf.serial_number:x}.crt"]


def test_provision_again_changes_nothing(tmp_path: Path, signer: Path) -> None:
    provision(tmp_path, *FULL, "--signer", str(signer), "--state-dir", str(tmp_path / "state"))
    node = tmp_path / "node"
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in node.rglob("*") if p.is_file()}
    output = provision(tmp_path, stdin="")  # nothing to ask: the node knows its answers
    assert output.splitlines() == [
        "device: vessel-042 at Thuan An",
        f"certificate: {node / 'tls' / 'node.crt'} kept (valid until "
        f"{pki.load_certificates(node / 'tls' / 'node.crt')[0].not_valid_after_utc:%Y-%m-%d})",
        f"config: {node / 'edge.toml'} unchanged",
        f"state: {tmp_path / 'state'}",
    ]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in node.rglob("*") if p.is_file()} == files


def test_rotation_renews_key_and_certificate_and_keeps_the_stored_data_and_settings(
    tmp_path: Path, signer: Path
) -> None:
    template = tmp_path / "template.toml"
    template.write_text('[store]\nmax_bytes = 2097152\n\n[uplink]\nsend_raw = true\nhost = "ignored"\n')
    provision(
        tmp_path,
        *FULL,
        "--signer",
        str(signer),
        "--template",
        str(template),
        "--state-dir",
        str(tmp_path / "s"),
    )
    config = load_config(tmp_path / "node" / "edge.toml")
    store = open_store(config)
    store.write({"position": [Position(1_764_000_000_000 + i, 1, 0, 16.4, 107.5) for i in range(50)]})
    store.close()
    old_key, old_cert = config.uplink.tls.key.read_bytes(), config.uplink.tls.cert.read_bytes()

    output = provision(tmp_path, "--rotate", "--signer", str(signer), "--broker-host", "mqtt2.example")
    assert f"key: {config.uplink.tls.key} new (mode 0600; it never leaves this node)" in output
    assert f"config: {tmp_path / 'node' / 'edge.toml'} written" in output
    assert f"state: {tmp_path / 's'}, store.db kept (" in output
    assert config.uplink.tls.key.read_bytes() != old_key and config.uplink.tls.cert.read_bytes() != old_cert
    assert config.uplink.tls.key.stat().st_mode & 0o777 == 0o600
    again = load_config(tmp_path / "node" / "edge.toml")
    assert again.uplink.host == "mqtt2.example"
    assert (again.store.max_bytes, again.uplink.send_raw, again.node.site) == (2097152, True, "Thuan An")
    assert Store(again.store.path).backlog()["position"] == 50


def test_a_new_device_id_gets_a_new_certificate(tmp_path: Path, signer: Path) -> None:
    provision(tmp_path, *FULL, "--signer", str(signer), "--state-dir", str(tmp_path / "s"))
    output = provision(tmp_path, "--device-id", "vessel-043", "--signer", str(signer))
    assert "(the certificate is for device 'vessel-042'), signed by alice" in output
    leaf = pki.load_certificates(tmp_path / "node" / "tls" / "node.crt")[0]
    assert pki.common_name(leaf.subject) == "vessel-043"


def test_provision_refuses_a_broken_existing_config_and_a_broken_template(
    tmp_path: Path, signer: Path
) -> None:
    (tmp_path / "node").mkdir()
    config = tmp_path / "node" / "edge.toml"
    config.write_text('[node]\ndevice_id = "vessel-042"\n\n[uplink]\nport = "x"\n')
    output = provision(tmp_path, "--signer", str(signer), code=1)
    assert output == (
        f"{config} exists but is not valid; fix or remove it first:\n"
        "uplink.port (edge.toml line 5): 'x' is not an integer\n"
    )
    config.unlink()
    template = tmp_path / "bad.toml"
    template.write_text('[drivers.gps]\ntype = "nmea"\n')
    output = provision(tmp_path, *FULL, "--signer", str(signer), "--template", str(template), code=1)
    assert output.startswith(
        "the template is not valid:\ndrivers.gps.transport (bad.toml line 1): missing: required"
    )
    assert not config.exists()


def test_a_vessel_template_with_a_track_log_provisions(tmp_path: Path, signer: Path) -> None:
    # [track] needs [uplink.tls], which provisioning writes: the template cannot have it yet.
    template = tmp_path / "vessel.toml"
    template.write_text(
        '[drivers.gps]\ntype = "nmea"\n[drivers.gps.transport]\ntype = "pty"\npath = "/x"\n[track]\n'
    )
    provision(tmp_path, *FULL, "--signer", str(signer), "--template", str(template))
    config = load_config(tmp_path / "node" / "edge.toml")
    assert config.track.enabled and config.uplink.tls.key == tmp_path / "node" / "tls" / "node.key"


def test_revocation_lists_are_signed_by_each_certificate_s_issuer(tmp_path: Path, signer: Path) -> None:
    provision(tmp_path, *FULL, "--signer", str(signer), "--state-dir", str(tmp_path / "s"))
    ca = CertificateAuthority(tmp_path / "ca")
    output = invoke(center_cli, ["ca", "revoke", "vessel-042", "--ca", str(ca.path)], code=1)
    assert output == (
        f"no certificate of device 'vessel-042' is known to the CA in {ca.path}; "
        "import the technician's issued certificates first: ioc-center ca import DIR/issued\n"
    )
    foreign = tmp_path / "foreign.crt"
    foreign.write_bytes((tmp_path / "ca" / "ca.crt").read_bytes())
    output = invoke(center_cli, ["ca", "import", str(foreign), "--ca", str(ca.path)], code=1)
    assert output == f"{foreign}: not a device certificate issued by a signer of this CA\n"

    invoke(center_cli, ["ca", "import", str(signer / "issued"), "--ca", str(ca.path)])
    leaf = pki.load_certificates(tmp_path / "node" / "tls" / "node.crt")[0]
    invoke(center_cli, ["ca", "revoke", "vessel-042", "--ca", str(ca.path)])
    assert invoke(center_cli, ["ca", "revoke", "vessel-042", "--ca", str(ca.path)]).startswith(
        "vessel-042: already revoked"
    )
    crls = [
        x509.load_pem_x509_crl(b"-----BEGIN X509 CRL" + part)
        for part in ca.devices_crl_path.read_bytes().split(b"-----BEGIN X509 CRL")[1:]
    ]
    by_issuer = {crl.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value: crl for crl in crls}
    assert set(by_issuer) == {"Hue IOC device CA", "alice"}  # every issuer has one, or the broker refuses all
    alice = by_issuer["alice"]
    assert alice.is_signature_valid(SigningCredential.load(signer).cert.public_key())
    assert [r.serial_number for r in alice] == [leaf.serial_number]
    assert list(by_issuer["Hue IOC device CA"]) == []


def test_generated_broker_config_requires_certificates_and_confines_each_device(
    tmp_path: Path, signer: Path
) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    out = tmp_path / "conf.d"
    conf = write_broker_config(
        ca,
        out,
        BrokerSettings(hosts=("mqtt.example", "10.0.0.5"), port=8883, centre_port=8884),
        devices=["vessel-1"],
    )
    text = conf.read_text()
    assert text.count("require_certificate true\n") == 2 and text.count("allow_anonymous false\n") == 2
    assert text.count("use_identity_as_username true\n") == 2
    assert "listener 8883 0.0.0.0\n" in text and "listener 8884 127.0.0.1\n" in text
    assert f"cafile {ca.ca_cert_path}\ncrlfile {ca.devices_crl_path}\n" in text
    assert f"cafile {ca.centre_ca_cert_path}\ncrlfile {ca.centre_crl_path}\n" in text
    assert f"max_packet_size {MAX_PACKET_BYTES}\n" in text and MAX_PACKET_BYTES > MAX_PAYLOAD_BYTES
    assert "set_tcp_nodelay true\n" in text
    assert (
        f"plugin_opt_config_file {out / 'devices.json'}\n" in text and "acl_file" not in text.split("8884")[0]
    )
    rules = json.loads((out / "devices.json").read_text())
    assert rules["clients"] == [{"username": "vessel-1", "roles": [{"rolename": "vessel-1"}]}]
    assert [(a["acltype"], a["topic"]) for a in rules["roles"][0]["acls"]] == [
        ("publishClientSend", "ioc/v1/vessel-1/up/+"),
        ("publishClientReceive", "ioc/v1/vessel-1/ack"),
        ("subscribeLiteral", "ioc/v1/vessel-1/ack"),
        ("unsubscribeLiteral", "ioc/v1/vessel-1/ack"),
        ("publishClientReceive", "ioc/v1/vessel-1/cmd"),
        ("subscribeLiteral", "ioc/v1/vessel-1/cmd"),
        ("unsubscribeLiteral", "ioc/v1/vessel-1/cmd"),
    ]
    assert not any(rules["defaultACLAccess"].values())
    assert (out / "acl-centre").read_text().splitlines()[1:] == [
        "user ioc-receiver",
        "topic read ioc/v1/+/up/+",
        "topic write ioc/v1/+/ack",
        "topic write ioc/v1/+/cmd",
    ]
    server = pki.load_certificates(out / "server.crt")[0]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["mqtt.example", "10.0.0.5"]
    for key in ("server.key", "receiver.key"):
        assert (out / key).stat().st_mode & 0o777 == 0o600


def test_a_key_readable_by_others_is_refused_and_renewed(tmp_path: Path, signer: Path) -> None:
    provision(tmp_path, *FULL, "--signer", str(signer), "--state-dir", str(tmp_path / "s"))
    config = load_config(tmp_path / "node" / "edge.toml")
    key = config.uplink.tls.key
    key.chmod(0o644)
    with pytest.raises(PkiError) as caught:
        MqttUplink(open_store(config), "vessel-042", config.uplink)
    assert str(caught.value) == f"uplink.tls.key: {key} is readable by others (mode 0644); chmod 600 {key}"
    output = provision(tmp_path, "--signer", str(signer))
    assert f"(the key {key} was readable by others: it may have leaked), signed by alice" in output
    assert key.stat().st_mode & 0o777 == 0o600


def test_missing_identity_files_name_the_setting_and_the_fix(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "ca.crt", tmp_path / "node.crt", tmp_path / "node.key")
    with pytest.raises(PkiError) as caught:
        client_context(files)
    assert (
        str(caught.value)
        == f"uplink.tls.ca: {tmp_path / 'ca.crt'} not found; provision the node first (ioc-edge provision)"
    )
    assert UplinkConfig().tls is None  # without [uplink.tls], plain MQTT as before


def test_the_uplink_trusts_the_iocs_ca_alone_not_the_systems_bundle(tmp_path: Path) -> None:
    files = make_identity(tmp_path, "vessel-042")
    context = client_context(files)
    assert [dict(x[0] for x in c["subject"])["commonName"] for c in context.get_ca_certs()] == [
        "Hue IOC device CA"
    ]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    with pytest.raises(PkiError, match=r"^uplink.tls.ca: .*bad.crt is not a PEM CA certificate"):
        client_context(TlsFiles(tmp_path / "bad.crt", files.cert, files.key))
