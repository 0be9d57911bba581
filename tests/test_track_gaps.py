"""Finding 13: offline ``ioc-center track verify`` reports a track's gaps and its time going back, by the
same rule as the centre's track check (``sync.chain.gaps``): a 6 h hole and an 8.8 h jump back are listed
(the track still verifies: exit 0; ``--strict`` exits 3).
"""

from __future__ import annotations

from helpers import now_ms
from support_forgery import Minted, verify_cli, write_track

HOUR = 3_600_000
T0 = 1_700_000_000_000  # 2023-11-14 22:13:20Z


def test_a_hole_and_a_jump_back_are_listed(identity, tmp_path):
    times = [
        T0,
        T0 + 1000,
        T0 + 1000 + 6 * HOUR,
        T0 + 2000 + 6 * HOUR,
        T0 + 2000 + 6 * HOUR - int(8.8 * HOUR),
    ]
    path = write_track(tmp_path / "gaps.track", "vessel-042", Minted.load(identity), times, now_ms())
    code, output = verify_cli(str(path), "--ca", str(identity.ca))
    lines = output.splitlines()
    assert code == 0 and lines[0].startswith("OK: vessel-042 chain 0000000000000001: records 0..4 "), output
    assert lines[1:] == [
        "2 gap(s): more than 120 s without a record, or the time going back (the node was off, or its clock "
        "jumped):",
        "  record 2: no record from 2023-11-14 22:13:21Z to 2023-11-15 04:13:21Z",
        "  record 4: the time went back from 2023-11-15 04:13:22Z to 2023-11-14 19:25:22Z",
    ]
    code, strict = verify_cli(str(path), "--ca", str(identity.ca), "--strict")
    assert (code, strict) == (3, output)
    code, wide = verify_cli(str(path), "--ca", str(identity.ca), "--gap-s", "86400")
    assert code == 0 and len(wide.splitlines()) == 1, wide
