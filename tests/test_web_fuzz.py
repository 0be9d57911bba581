"""The API fuzzed from its own OpenAPI description (schemathesis 4): never a 5xx, always what it documents.

Valid and invalid requests for every operation, authenticated with an API token, against a real server
over a database with a little of everything in it. Runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from ioc.db import Database
from ioc.web.auth import Tokens, Users
from sync.records import Alarm, Count, Event, NodeStatus, Position, Summary, TimeSource
from sync.wire import Batch

EPOCH = "a1b2c3d4e5f60718"
NTP = int(TimeSource.NTP)
EXAMPLES = {"POST /login": 8}
"""Examples per operation and mode, where not the default: a sign-in costs an argon2 hash check."""
DEFAULT_EXAMPLES = 25


def fill(db: Database) -> None:
    t = time.time_ns() // 1_000_000
    jpeg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
    db.store(
        Batch(
            "vessel-042",
            EPOCH,
            "position",
            [1, 2],
            [Position(t, 1, t, 16.4, 107.5), Position(t + 1, 1, t, 16.5, 107.6)],
        )
    )
    db.store(Batch("river-7", EPOCH, "alarm", [1], [Alarm(t, NTP, t, "river", "flood", 1, 3.6, "high")]))
    db.store(
        Batch(
            "river-7",
            EPOCH,
            "summary",
            [1],
            [Summary(t, NTP, t, "pm-1", "pm25", 60, 60, 30.0, 20.0, 40.0, 29.0, 1800.0, 0)],
        )
    )
    db.store(
        Batch("river-7", EPOCH, "status", [1], [NodeStatus(t, NTP, t, '{"version": "0.1.0", "backlog": {}}')])
    )
    db.store(Batch("road-1", EPOCH, "count", [1], [Count(t, NTP, t, "cam-a", "bridge", "car", "in", 60, 4)]))
    db.store(
        Batch(
            "road-1",
            EPOCH,
            "event",
            [1],
            [Event(t, NTP, t, "cam-a", "r", "car", 1, 0.9, 1, 2, 3, 4, "m", jpeg)],
        )
    )


def test_fuzzing_the_api_from_its_openapi_finds_no_server_error(web_server, ioc_db):
    fill(ioc_db)
    Users(ioc_db).add("lan", "operator", "correct horse battery")
    token = Tokens(ioc_db).create("lan", "fuzz")[1]
    # Told which security scheme the token is for, schemathesis sends it, and leaves it out to check for 401.
    config = schemathesis.Config.from_dict({"auth": {"openapi": {"HTTPBearer": {"bearer": token}}}})
    schema = schemathesis.openapi.from_url(
        f"{web_server.url}/api/v1/openapi.json",
        config=config,
        headers={"Authorization": f"Bearer {token}"},  # the description is for signed-in users only
        timeout=30,
    )
    # The live stream never ends by itself: tests/test_web_live.py covers it.
    schema = schema.exclude(path="/api/v1/live")
    # Not positive_data_acceptance: `from`/`to` are strings in the schema, yet "abc" is rightly refused (422).
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
        schemathesis.checks.negative_data_rejection,
        schemathesis.checks.ignored_auth,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = sorted(op.label for op in operations)
    assert "GET /api/v1/positions" in labels and "POST /api/v1/alarms/{device}/{epoch}/{seq}/ack" in labels
    calls = 0
    without_negative: list[str] = []
    started = time.monotonic()
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES.get(operation.label, DEFAULT_EXAMPLES),
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(base_url=web_server.url, checks=checks, timeout=30)

            try:
                call()
            except Unsatisfiable:
                # Nothing to get wrong (no parameter, no body): there is no invalid request to make.
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                without_negative.append(operation.label)
    elapsed = round(time.monotonic() - started, 1)
    print(
        f"fuzz: {calls} requests, {len(operations)} operations, {elapsed} s; no invalid: {without_negative}"
    )
    assert calls >= 10 * len(operations)
