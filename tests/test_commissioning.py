"""The commissioning record: a self-test's result signed with the device key, delivered by the node's
uplink, judged by the IOC as it arrives and shown by the API.

Real parts: certificates made by the CLI, a real mosquitto with mutual TLS, the node's runtime, the
IOC's receiver and database (SQLite and PostgreSQL), the web API over loopback HTTP.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from conftest import make_identity
from helpers import wait_for
from support_mtls import Client, files, open_centre

from common.clock import Clock
from edge.cli import main as edge_cli
from edge.commissioning import SCHEMA, Commissioner, operator
from edge.config import load_config
from edge.runtime import VERSION
from edge.selftest import Selftest
from ioc.commissioning import judge, latest
from ioc.web import WebServer, WebSettings, create_app
from ioc.web.auth import Tokens, Users
from provisioning import pki
from provisioning.signing import DeviceSigner, SignatureChecker
from provisioning.tls import TlsFiles
from sync.records import Commissioning, TimeSource
from sync.wire import Batch, encode_batch, up_topic

DEVICE = "vessel-042"
SENT = "the node sends it to the IOC (now if it runs, else when it starts)"


def ntp_clock() -> Clock:
    """This machine's clock, taken as synchronised (a container may not say so)."""
    return Clock(synced=lambda: True)


def arrived(db, device: str = DEVICE, seq: int | None = None):
    """``device``'s latest commissioning once judged (and, given ``seq``, that record), else None."""
    found = latest(db, device)
    return found if found and found["checked_ms"] and (seq is None or found["seq"] == seq) else None


def signed_record(tls: TlsFiles, body: str, at_ms: int) -> Commissioning:
    signer = DeviceSigner.load(tls)
    return Commissioning(
        at_ms, TimeSource.NTP, at_ms, body, signer.chain_pem.decode(), signer.sign(body.encode())
    )


def send_as_device(centre, tls: TlsFiles, record: Commissioning) -> int:
    """Publish ``record`` over ``vessel-042``'s own mutual-TLS connection (a node's firmware could)."""
    client = Client(centre.broker.port, tls, DEVICE)
    try:
        seq = secrets.randbelow(10**6) + 1
        payload = encode_batch(Batch(DEVICE, secrets.token_hex(8), "commissioning", [seq], [record]))
        client.publish(up_topic("ioc/v1", DEVICE, "commissioning"), payload)
    finally:
        client.close()
    return seq


def test_selftest_record_reaches_the_ioc_signed_and_verified(tmp_path, ioc_db, run_node):
    with open_centre(tmp_path, ioc_db) as centre:
        config = centre.provision(DEVICE, site="Thuận An")  # signed as UTF-8, stored, checked again
        path = centre.tmp / DEVICE / "edge.toml"
        test = Selftest(path, seconds=10, clock=ntp_clock())
        results = test.run()
        assert [(r.name, r.status) for r in results] == [
            ("config", "PASS"),
            ("store", "PASS"),
            ("clock", "PASS"),
            ("broker", "PASS"),
        ], [r.line() for r in results]
        outcome = Commissioner(test.config, test.clock, who="alice").record(results)
        assert asdict(outcome) == {
            "stored": True,
            "signed": True,
            "seq": 1,
            "detail": f"signed by {DEVICE}, stored as record 1; {SENT}",
        }

        run_node(load_config(path))
        wait_for(lambda: arrived(ioc_db), 20, "the commissioning record at the IOC")

    found = latest(ioc_db, DEVICE)
    assert (found["verdict"], found["ca_checked"], found["seq"], found["tsrc"]) == (
        "valid",
        True,
        1,
        TimeSource.NTP,
    )
    assert found["detail"] == f"signed by {DEVICE}'s key (certificate from signer alice)"
    report = found["report"]
    assert report["checks"] == [asdict(r) for r in results]
    assert {k: report[k] for k in ("schema", "device", "site", "version", "operator", "passed")} == {
        "schema": SCHEMA,
        "device": DEVICE,
        "site": "Thuận An",
        "version": VERSION,
        "operator": "alice",
        "passed": True,
    }
    assert (report["time_ms"], report["time_source"]) == (found["ts_ms"], "ntp")
    # The record the IOC keeps still proves itself to anyone with the CA certificate, years later.
    stored = next(ioc_db.dump("commissioning", DEVICE))
    ca = pki.load_certificates(centre.ca / "ca.crt")[0]
    SignatureChecker(ca).check(stored["chain"].encode(), DEVICE, stored["body"].encode(), stored["signature"])
    assert config.uplink.tls.key.read_bytes() not in stored["chain"].encode()

    Users(ioc_db).add("lan", "viewer", "password-lan")
    _, token = Tokens(ioc_db).create("lan", "test")
    server = WebServer(create_app(ioc_db, WebSettings()), "127.0.0.1", 0)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        answer = requests.get(
            f"{server.url}/api/v1/nodes/{DEVICE}/commissioning", headers=headers, timeout=10
        )
        assert answer.status_code == 200
        assert answer.json() == found
        missing = requests.get(f"{server.url}/api/v1/nodes/buoy-7/commissioning", headers=headers, timeout=10)
        assert (missing.status_code, missing.json()) == (
            404,
            {"detail": "no commissioning record of node 'buoy-7': run ioc-edge selftest on it"},
        )
    finally:
        server.stop()


@pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
def test_tampered_record_and_another_cas_device_are_flagged_not_valid(tmp_path, ioc_db):
    with open_centre(tmp_path, ioc_db) as centre:
        tls = files(centre.provision(DEVICE))
        now = ntp_clock().now().ts_ms
        body = json.dumps({"schema": SCHEMA, "device": DEVICE, "operator": "alice", "passed": True})
        good = signed_record(tls, body, now)
        seq = send_as_device(centre, tls, good)
        wait_for(lambda: arrived(ioc_db, seq=seq), 10, "the genuine record")
        assert latest(ioc_db, DEVICE)["verdict"] == "valid"

        tampered = good._replace(body=body.replace('"alice"', '"alicf"'))  # one byte of the JSON
        assert sum(a != b for a, b in zip(good.body, tampered.body, strict=True)) == 1
        seq = send_as_device(centre, tls, tampered)
        wait_for(lambda: arrived(ioc_db, seq=seq), 10, "the tampered record")
        found = latest(ioc_db, DEVICE)
        assert (found["verdict"], found["detail"]) == (
            "invalid",
            "the signature does not match the data: changed or forged",
        )

        # A vessel-042 of another CA (a stolen or forged identity) signs; the real node's link carries it.
        foreign = make_identity(tmp_path / "elsewhere", DEVICE)
        seq = send_as_device(centre, tls, signed_record(foreign, body, now))
        wait_for(lambda: arrived(ioc_db, seq=seq), 10, "the foreign record")
        found = latest(ioc_db, DEVICE)
        foreign_signer = pki.load_certificates(foreign.cert)[1]
        ca = pki.load_certificates(centre.ca / "ca.crt")[0]
        assert (found["verdict"], found["ca_checked"], found["detail"]) == (
            "invalid",
            True,
            f"the certificate {foreign_signer.subject.rfc4514_string()} "
            f"(serial {foreign_signer.serial_number:x}) does not lead to the CA "
            f"{ca.subject.rfc4514_string()}: not a device of this CA",
        )
    verdicts = ioc_db.fetch("SELECT verdict FROM commissioning_checks ORDER BY checked_ms")
    assert [v["verdict"] for v in verdicts] == ["valid", "invalid", "invalid"]


@pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
def test_node_without_identity_records_its_selftest_unsigned(tmp_path, broker, receiver, ioc_db, run_node):
    path = tmp_path / "edge.toml"
    path.write_text(
        f'[node]\ndevice_id = "buoy-7"\nstate_dir = "state"\n\n'
        f"[store]\nflush_interval_s = 0.2\n\n[uplink]\nport = {broker.port}\nack_timeout_s = 5\n\n"
        "[metrics]\nenabled = false\n"  # other tests' nodes running meanwhile would contend for its port
    )
    result = CliRunner().invoke(edge_cli, ["selftest", "--seconds", "5", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "RECORD  commissioning: stored UNSIGNED as record 1: the node has no identity ([uplink.tls]); "
        f"provision it (ioc-edge provision); {SENT}"
    )

    run_node(load_config(path))
    wait_for(lambda: arrived(ioc_db, "buoy-7"), 20, "the unsigned record at the IOC")
    found = latest(ioc_db, "buoy-7")
    assert (found["verdict"], found["detail"], found["ca_checked"]) == (
        "unsigned",
        "not signed: the node had no identity (ioc-edge provision)",
        False,
    )
    assert [c["name"] for c in found["report"]["checks"]] == ["config", "store", "clock", "broker"]

    # A record made while the node runs (another process's write to its store) goes up at once.
    outcome = Commissioner(load_config(path), ntp_clock(), who="binh").record([])
    assert outcome.seq == 2
    wait_for(lambda: arrived(ioc_db, "buoy-7", seq=2), 10, "the record made while the node runs")
    assert latest(ioc_db, "buoy-7")["report"]["operator"] == "binh"


def test_without_a_ca_only_the_chain_is_checked_and_said_so(identity):
    now_ms = ntp_clock().now().ts_ms
    body = json.dumps({"device": DEVICE, "clock_ms": now_ms})
    record = signed_record(identity, body, now_ms)
    verdict = judge(SignatureChecker(None), DEVICE, record)
    assert (verdict.verdict, verdict.ca_checked, verdict.detail) == (
        "valid",
        False,
        f"signed by {DEVICE}'s key (certificate from signer {DEVICE}); "
        "CA not checked (no CA configured: ioc-center run --tls DIR)",
    )
    # Another device's record, sent as this one: the certificate names the signer.
    other = judge(SignatureChecker(None), "vessel-043", record)
    assert (other.verdict, other.detail) == (
        "invalid",
        f"the certificate is for device {DEVICE!r}, not 'vessel-043'",
    )
    # Signed, but naming another device inside.
    renamed = signed_record(identity, json.dumps({"device": "vessel-043"}), record.ts_ms)
    assert judge(SignatureChecker(None), DEVICE, renamed).detail == (
        f"the signed record names device 'vessel-043', not {DEVICE!r}"
    )

    # The certificate's validity is judged at the node's clock as signed in the record, not at the
    # record's (GPS) time, which may be a replayed capture's; a clock never set decides nothing.
    def signed_at_clock(clock_ms: int) -> Commissioning:
        signed = json.dumps({"device": DEVICE, "clock_ms": clock_ms})
        return signed_record(identity, signed, record.ts_ms)._replace(ts_ms=1_586_295_590_000)

    assert judge(SignatureChecker(None), DEVICE, signed_at_clock(0)).detail.endswith(
        "; the node's clock was not set: certificate validity not checked"
    )
    assert judge(SignatureChecker(None), DEVICE, signed_at_clock(record.ts_ms)).verdict == "valid"
    assert judge(SignatureChecker(None), DEVICE, signed_at_clock(1_609_459_200_000)).detail.startswith(
        "signed at 2021-01-01 00:00:00Z, outside the validity of the certificate L=Thuan An,CN=vessel-042,"
    )


def test_operator_is_the_user_behind_sudo_else_the_login_user():
    assert operator({"SUDO_USER": "alice", "USER": "root"}) == "alice"
    assert operator({"USER": "binh"}) == "binh"
    assert operator({}) is None


def test_a_broken_device_key_leaves_the_record_unsigned_and_says_why(tmp_path: Path, identity):
    config_path = tmp_path / "edge.toml"
    config_path.write_text(
        f'[node]\ndevice_id = "{DEVICE}"\nstate_dir = "state"\n\n[uplink]\nenabled = false\n\n'
        f'[uplink.tls]\nca = "{identity.ca}"\ncert = "{identity.cert}"\nkey = "{identity.key}"\n'
    )
    identity.key.write_text("not a key\n")
    outcome = Commissioner(load_config(config_path), ntp_clock(), who="alice").record([])
    assert (outcome.stored, outcome.signed, outcome.seq) == (True, False, 1)
    assert outcome.detail.startswith("stored UNSIGNED as record 1: the device key cannot sign: ")
    assert outcome.detail.endswith(f"; provision the node again; {SENT}")


def test_a_chain_whose_key_is_not_a_device_key_is_invalid_not_an_error():
    # Without a CA anything may come as a chain: an RSA certificate must not fail the receiver's batch.
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEVICE)])
    now = dt.datetime.now(dt.UTC)
    cert = x509.CertificateBuilder(
        name, name, key.public_key(), 1, now - dt.timedelta(days=1), now + dt.timedelta(days=1)
    ).sign(key, hashes.SHA256())
    body = json.dumps({"device": DEVICE})
    record = Commissioning(
        int(now.timestamp() * 1000), TimeSource.NTP, 0, body, pki.certificate_pem(cert).decode(), b"\x30\x00"
    )
    verdict = judge(SignatureChecker(None), DEVICE, record)
    assert verdict.verdict == "invalid"
    assert verdict.detail.startswith("the certificate's key cannot check this signature: ")
