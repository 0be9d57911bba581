"""The enrolment register: the centre, not a signer's credential, decides which device ids exist and which
certificate each holds (``ioc.enrolment``, ``ioc-center device``), and the receiver refuses the rest.

Real parts: certificates made as ``ioc-center ca`` and ``ioc-edge provision`` make them, the register in
SQLite and PostgreSQL, the CLI; over the network, mosquitto on the generated mutual-TLS config, the
receiver and the node's runtime (:func:`support_mtls.open_centre`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_identity
from cryptography import x509
from helpers import cli, now_ms, wait_for
from support_forgery import Minted, mint, track_batches
from support_mtls import Centre, Client, files
from support_nodes import backlog

from edge.runtime import open_store
from ioc.ca import CertificateAuthority
from ioc.cli import main as center_cli
from ioc.commissioning import latest
from ioc.db import Database
from ioc.enrolment import CACHE_S, CachedRegister, EnrolmentError, Register
from ioc.receiver import Receiver
from ioc.track import TrackCheck
from provisioning import pki
from provisioning.credential import SigningCredential
from provisioning.identity import NodeIdentity
from provisioning.signing import DeviceSigner
from provisioning.tls import TlsFiles
from sync.records import Commissioning, Position, TimeSource
from sync.wire import Batch, encode_batch, up_topic

T0 = 1_764_000_000_000


def another_certificate(tmp: Path, signer: Path, device: str, name: str) -> TlsFiles:
    """A second key and certificate for ``device`` signed with the credential in ``signer`` (a rotation,
    or a thief holding a copy of the credential), in ``tmp/name``."""
    tls = TlsFiles(tmp / name / "ca.crt", tmp / name / "node.crt", tmp / name / "node.key")
    NodeIdentity(tls).renew(device, "nowhere", SigningCredential.load(signer))
    return tls


def certificate(tls: TlsFiles) -> x509.Certificate:
    return pki.load_certificates(tls.cert)[0]


def position(seq: int) -> Position:
    return Position(T0 + seq * 1000, 1, T0 + seq * 1000, 16.46, 107.59, 5.0, 45.0)


def positions_batch(device: str, seq: int) -> bytes:
    return encode_batch(Batch(device, "0123456789abcdef", "position", [seq], [position(seq)]))


def stolen_signer(centre: Centre) -> Path:
    """A copy of the technician's credential, taken from the laptop: the centre never hears of its use."""
    stolen = centre.tmp / "stolen"
    if not stolen.exists():
        shutil.copytree(centre.signer, stolen)
    return stolen


def enrol_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(center_cli, ["device", "enrol", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_register_holds_one_active_certificate_per_device_and_refuses_what_is_not_a_device_of_the_ca(
    tmp_path: Path, ioc_db: Database
) -> None:
    tls = make_identity(tmp_path, "vessel-042")
    ca = CertificateAuthority(tmp_path / "ca")
    register = Register(ioc_db)
    genuine = certificate(tls)
    assert register.enrol(genuine, ca, by="lan") is True
    assert register.enrol(genuine, ca, by="lan") is False  # the same certificate again: nothing changes
    assert register.serial_of("vessel-042") == genuine.serial_number
    assert register.serial_of("vessel-043") is None

    rotated = certificate(
        another_certificate(tmp_path, tmp_path / "signers" / "vessel-042", "vessel-042", "r")
    )
    with pytest.raises(EnrolmentError) as error:
        register.enrol(rotated, ca)
    assert str(error.value) == (
        f"vessel-042 is in service with certificate {genuine.serial_number:x}: a second certificate for it "
        "is refused; if the node was provisioned again (--rotate), enrol it with --replace"
    )
    assert register.enrol(rotated, ca, replace=True, by="lan") is True
    assert [(e.serial, e.status, e.enrolled_by) for e in register.entries()] == [
        (rotated.serial_number, "active", "lan"),
        (genuine.serial_number, "replaced", "lan"),
    ]
    with pytest.raises(EnrolmentError) as error:
        register.enrol(genuine, ca, replace=True)  # a replaced certificate never comes back
    assert str(error.value).startswith(f"certificate {genuine.serial_number:x} of vessel-042 was replaced:")

    revoked = register.revoke("vessel-042")
    assert (revoked.serial, revoked.status) == (rotated.serial_number, "revoked")
    assert register.serial_of("vessel-042") is None and register.active() == []
    with pytest.raises(EnrolmentError) as error:
        register.revoke("vessel-042")
    assert str(error.value) == (
        "vessel-042 holds no active certificate (its latest certificate is revoked): nothing to revoke"
    )

    credential = tmp_path / "signers" / "vessel-042"
    stolen = Minted(
        pki.load_private_key(credential / "signer.key"), pki.load_certificates(credential / "signer.crt")
    )
    foreign = certificate(make_identity(tmp_path / "elsewhere", "vessel-043"))  # same names, another CA
    ca.import_certificates([tls.cert])
    ca.revoke("vessel-042")
    refusals = {}
    for name, cert in {
        "signer": stolen.cert,
        "device_as_ca": mint(stolen, "vessel-044", ca=True).cert,  # signed by a signer, but a CA itself
        "foreign": foreign,
        "in_crl": genuine,
    }.items():
        with pytest.raises(EnrolmentError) as error:
            register.enrol(cert, ca)
        refusals[name] = str(error.value)
    hint = "a revoked signer's devices are provisioned again with another (ioc-edge provision --rotate)"
    assert refusals == {
        "signer": f"not issued by a signer of the CA in {ca.path} (its issuer: CN=Hue IOC device CA,"
        f"O=Hue IOC; signers: vessel-042); {hint}",
        "device_as_ca": "the certificate chain does not hold: a device certificate must not be a CA "
        "(certificate CN=vessel-044,OU=devices,O=Hue IOC)",
        "foreign": f"not issued by a signer of the CA in {ca.path} (its issuer: CN=vessel-043,OU=signers,"
        f"O=Hue IOC; signers: vessel-042); {hint}",
        "in_crl": f"revoked on {pki.now():%Y-%m-%d} in the CRL of signer 'vessel-042'; provision the device "
        "again (ioc-edge provision --rotate) and enrol its new certificate",
    }


def test_receiver_refuses_by_reason_and_sees_an_enrolment_or_a_revocation_within_its_cache_time(
    tmp_path: Path, ioc_db: Database
) -> None:
    tls = make_identity(tmp_path, "vessel-042")
    register, clock = Register(ioc_db), [100.0]
    receiver = Receiver(ioc_db, "127.0.0.1", 1, register=register)  # never started: handle() alone
    receiver.register = CachedRegister(register, clock=lambda: clock[0])
    topic = up_topic("ioc/v1", "vessel-042", "position")
    assert receiver.handle(topic, positions_batch("vessel-042", 1)) is None  # not acked: the node resends
    assert (ioc_db.rejects(), receiver.stats["reject.not_enrolled"]) == ({"not_enrolled": 1}, 1)

    register.enrol(certificate(tls), CertificateAuthority(tmp_path / "ca"))
    clock[0] += CACHE_S - 0.1
    assert receiver.handle(topic, positions_batch("vessel-042", 1)) is None  # what it read, still
    clock[0] += 0.2
    assert receiver.handle(topic, positions_batch("vessel-042", 1)) is not None
    assert ioc_db.count("position") == 1

    register.revoke("vessel-042")
    clock[0] += CACHE_S
    assert receiver.handle(topic, positions_batch("vessel-042", 2)) is None
    assert ioc_db.rejects() == {"not_enrolled": 2, "revoked": 1} and ioc_db.count("position") == 1
    assert receiver.stats["reject.revoked"] == 1


def test_device_cli_enrols_a_signers_issued_directory_once_per_device_lists_and_revokes(
    tmp_path: Path,
) -> None:
    ca, credential, db = tmp_path / "ca", tmp_path / "signer-alice", f"sqlite:///{tmp_path / 'ioc.db'}"
    cli(center_cli, ["ca", "init", str(ca), "--org", "Hue IOC"])
    cli(center_cli, ["ca", "issue-signer", "alice", "--ca", str(ca), "--out", str(credential)])
    first_files = another_certificate(tmp_path, credential, "vessel-042", "a")
    first, rotated_files = (
        certificate(first_files),
        another_certificate(tmp_path, credential, "vessel-042", "c"),
    )
    other, rotated = (
        certificate(another_certificate(tmp_path, credential, "buoy-7", "b")),
        certificate(rotated_files),
    )
    issued, until = credential / "issued", f"{first.not_valid_after_utc:%Y-%m-%d}"
    common = ["--ca", str(ca), "--db", db, "--by", "lan"]
    (tmp_path / "empty").mkdir()
    assert enrol_cli(str(tmp_path / "empty"), *common) == (
        1,
        f"no certificate (*.crt) in {tmp_path / 'empty'}: give a signer's issued/ or a node.crt\n",
    )

    assert enrol_cli(str(first_files.cert), *common) == (
        0,
        f"enrolled vessel-042: serial {first.serial_number:x}, valid until {until}\n",
    )
    # The technician's issued/ also holds the rotated certificate: refused while vessel-042 is in service.
    code, output = enrol_cli(str(issued), *common)
    assert (code, output) == (
        1,
        f"enrolled buoy-7: serial {other.serial_number:x}, valid until {until}\n"
        f"vessel-042: serial {first.serial_number:x} enrolled already\n"
        f"refused 1 certificate(s):\n{issued / f'vessel-042-{rotated.serial_number:x}.crt'}: "
        f"vessel-042 is in service with certificate {first.serial_number:x}: a second certificate for it "
        "is refused; if the node was provisioned again (--rotate), enrol it with --replace\n",
    )
    assert enrol_cli(str(rotated_files.cert), *common, "--replace") == (
        0,
        f"enrolled vessel-042: serial {rotated.serial_number:x}, valid until {until}, "
        f"replacing serial {first.serial_number:x}\n",
    )
    # Imported into the CA as well: `ca revoke` knows every certificate enrolled.
    assert sorted(p.name for p in (ca / "issued").glob("*.crt")) == sorted(
        p.name for p in issued.glob("*.crt")
    )

    listed = cli(center_cli, ["device", "list", "--db", db]).splitlines()
    assert [line.split("\t")[:4] for line in listed] == [
        ["buoy-7", "active", f"{other.serial_number:x}", "alice"],
        ["vessel-042", "active", f"{rotated.serial_number:x}", "alice"],
    ]
    assert listed[0].endswith(" by lan")
    revoke = ["device", "revoke", "vessel-042", *common[:4]]
    register_line, crl_line, then = cli(center_cli, revoke).splitlines()
    assert register_line == f"revoked vessel-042 in the register: serial {rotated.serial_number:x}"
    # Both of its certificates, in the order the CA keeps them.
    assert crl_line.startswith("revoked vessel-042 in its signer's CRL: ")
    serials = {f"{first.serial_number:x}", f"{rotated.serial_number:x}"}
    assert set(crl_line.split(": ")[1].split(", ")) == serials
    assert then == (
        "then: systemctl reload mosquitto && "
        "ioc-center broker disconnect vessel-042 --tls /etc/mosquitto/conf.d --mqtt-port 8884"
    )
    history = cli(center_cli, ["device", "list", "--all", "--db", db]).splitlines()
    assert [line.split("\t")[:2] for line in history] == [
        ["buoy-7", "active"],
        ["vessel-042", "revoked"],
        ["vessel-042", "replaced"],
    ]
    result = CliRunner().invoke(center_cli, ["device", "revoke", "vessel-042", *common[:4]])
    assert (result.exit_code, result.output) == (
        1,
        "vessel-042 holds no active certificate (its latest certificate is revoked): nothing to revoke\n",
    )


def test_a_stolen_signer_mints_a_new_device_id_and_nothing_it_sends_is_stored(centre: Centre) -> None:
    thief = another_certificate(centre.tmp, stolen_signer(centre), "vessel-999", "thief")
    client = Client(centre.broker.port, thief, "vessel-999")  # the broker admits any certificate of the CA
    try:
        code = client.publish(up_topic("ioc/v1", "vessel-999", "position"), positions_batch("vessel-999", 1))
        wait_for(
            lambda: code != 0 or centre.db.rejects() or centre.db.count("position"),
            10,
            "the centre's verdict",
        )
        assert centre.db.count("position") == 0
        # Refused at the broker (its topics are an enrolled device's only) or, passed on, by the receiver.
        assert (code, centre.db.rejects()) in [(135, {}), (0, {"not_enrolled": 1})]
        assert client.received == []  # no ack
    finally:
        client.close()


def test_a_node_the_register_does_not_hold_loses_nothing_and_is_let_in_once_enrolled(
    centre: Centre, run_node
) -> None:
    config = centre.provision("vessel-new", enrol=False)  # the technician's work, not yet at the centre
    store = open_store(config)
    store.write({"position": [position(i) for i in range(1, 21)]})
    store.close()
    node = run_node(config)
    wait_for(lambda: node.uplink.stats["resent_batches"] >= 1, 20, "the node to send its batch again")
    assert centre.db.count("position") == 0 and backlog(config) == 20
    assert set(centre.db.rejects()) <= {"not_enrolled"}
    centre.enrol(config.uplink.tls.cert)
    wait_for(lambda: centre.db.count("position") == 20 and backlog(config) == 0, 30, "the node's backlog")


def test_a_second_certificate_for_a_device_in_service_is_refused_for_enrolment_and_its_signatures(
    centre: Centre,
) -> None:
    genuine = files(centre.provision("vessel-042"))
    thief = another_certificate(centre.tmp, stolen_signer(centre), "vessel-042", "thief")
    # The thief's vessel-042 connects (its CN is enrolled) and sends a signed commissioning record.
    body = json.dumps({"schema": 1, "device": "vessel-042", "operator": "mallory", "passed": True})
    signer, at = DeviceSigner.load(thief), int(time.time() * 1000)
    record = Commissioning(
        at, TimeSource.NTP, at, body, signer.chain_pem.decode(), signer.sign(body.encode())
    )
    client = Client(centre.broker.port, thief, "vessel-042")
    try:
        payload = encode_batch(Batch("vessel-042", "0123456789abcdef", "commissioning", [1], [record]))
        assert client.publish(up_topic("ioc/v1", "vessel-042", "commissioning"), payload) == 0
        wait_for(lambda: (latest(centre.db, "vessel-042") or {}).get("checked_ms"), 10, "the verdict")
    finally:
        client.close()
    found, stolen = latest(centre.db, "vessel-042"), certificate(thief)
    assert (found["verdict"], found["detail"]) == (
        "invalid",
        f"the certificate {stolen.subject.rfc4514_string()} (serial {stolen.serial_number:x}) is not one "
        f"enrolled for 'vessel-042' (serial {certificate(genuine).serial_number:x})",
    )
    # Nor does the operator, handed the thief's certificate, put it in service by mistake.
    code, output = enrol_cli(str(thief.cert), "--ca", str(centre.ca), "--db", centre.db.url)
    assert (code, output) == (
        1,
        f"refused 1 certificate(s):\n{thief.cert}: vessel-042 is in service with certificate "
        f"{certificate(genuine).serial_number:x}: a second certificate for it is refused; if the node was "
        "provisioned again (--rotate), enrol it with --replace\n",
    )
    assert Register(centre.db).serial_of("vessel-042") == certificate(genuine).serial_number


def test_a_connected_device_revoked_in_the_register_is_refused_within_the_cache_time(centre: Centre) -> None:
    tls = files(centre.provision("vessel-a"))
    client = Client(centre.broker.port, tls, "vessel-a")
    topic = up_topic("ioc/v1", "vessel-a", "position")
    try:
        assert client.publish(topic, positions_batch("vessel-a", 1)) == 0
        wait_for(lambda: centre.db.count("position") == 1, 10, "the enrolled device's batch")
        revoke = ["device", "revoke", "vessel-a", "--db", centre.db.url, "--ca", str(centre.ca)]
        assert cli(center_cli, revoke).startswith("revoked vessel-a in the register")
        revoked_at, seq = time.monotonic(), 1
        while not centre.db.rejects():  # the same connection goes on sending
            seq += 1
            assert client.publish(topic, positions_batch("vessel-a", seq)) == 0
            assert time.monotonic() - revoked_at < CACHE_S + 2, "still stored after the cache time"
            time.sleep(0.25)
        stored = centre.db.count("position")
        assert client.publish(topic, positions_batch("vessel-a", seq + 1)) == 0
        wait_for(lambda: centre.db.rejects() == {"revoked": 2}, 10, "the next batch refused")
    finally:
        client.close()
    assert centre.db.count("position") == stored < seq


def test_a_rotated_node_s_track_signed_with_its_old_key_before_the_rotation_verifies_at_the_centre(
    tmp_path, ioc_db
):
    """After ``ioc-edge provision --rotate`` and ``device enrol --replace``, the track the old key signed
    before the rotation (still queued on the node) verifies; what it signs afterwards does not. The
    register is read outside the chain's transaction: read inside, it waited for the very connection
    that transaction held (a receiver hung on PostgreSQL)."""
    old = make_identity(tmp_path)
    ca = CertificateAuthority(tmp_path / "ca")
    register = Register(ioc_db)
    register.enrol(certificate(old), ca)
    before = now_ms() - 1000
    rotated = another_certificate(tmp_path, tmp_path / "signers" / "vessel-042", "vessel-042", "rotated")
    register.enrol(certificate(rotated), ca, replace=True)
    times = [before - 5000 + 1000 * i for i in range(5)]
    for epoch, signed_ms in (("00000000000000a1", before), ("00000000000000a2", now_ms() + 1000)):
        for batch in track_batches("vessel-042", epoch, Minted.load(old), times, signed_ms):
            ioc_db.store(batch)
    # Every look-up reads the database (no cache), as when the cache has just expired.
    check = TrackCheck(ioc_db, ca.device_ca().cert, enrolled=CachedRegister(register, cache_s=0).enrolled)
    check.advance("vessel-042", "00000000000000a1")
    check.advance("vessel-042", "00000000000000a2")
    chains = ioc_db.fetch("SELECT epoch, signed_idx FROM track_chains ORDER BY epoch")
    signed = [(c["epoch"], c["signed_idx"]) for c in chains]
    assert signed == [("00000000000000a1", 4), ("00000000000000a2", -1)]
    (flag,) = ioc_db.fetch("SELECT epoch, idx, kind, detail FROM track_flags WHERE kind = 'bad_signature'")
    assert (flag["epoch"], flag["idx"]) == ("00000000000000a2", 4)
    assert "was replaced for 'vessel-042' at " in flag["detail"], flag["detail"]
    assert flag["detail"].endswith("it no longer signs for it"), flag["detail"]
