"""The warnings of the JSON API (issue 16): compose, reach, issue, follow the receipts, cancel, update.

Under /api/v1 as the rest of the API (:func:`ioc.web.api.api_router`): a principal needed, errors as
``{"detail": "<message naming the field>"}``; issuing, cancelling and updating are for operators.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import StringConstraints

from ioc.cap import to_xml
from ioc.db import now_ms
from ioc.selectors import SelectorError
from ioc.warnings import StoredWarning, WarningError, Warnings, default_sender, new_identifier
from ioc.warnings import receipts_csv as warning_receipts_csv
from ioc.warnings import warnings_csv as warning_list_csv
from ioc.web.api import Ctx, Who, api_router, since_ms
from ioc.web.auth import Principal
from ioc.web.models import (
    Error,
    Items,
    ListPage,
    PlaceItem,
    WarningBody,
    WarningCancelBody,
    WarningItem,
    WarningOut,
    WarningQuery,
    WarningReach,
    WarningReachBody,
    WarningShowQuery,
    WarningUpdateBody,
)
from ioc.web.params import NoQuery
from sync.wire import WireError

router = api_router()

Identifier = Annotated[str, StringConstraints(pattern=r"^[^\s,<&/\x00-\x1f\x7f]{1,160}$")]
"""A CAP identifier (no space, comma, '<' or '&'), as a path segment: no '/' or control character."""
_csv_file: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV, a header row first."},
}
CAP_MEDIA_TYPE = "application/cap+xml"
_cap_xml: dict[int | str, dict[str, Any]] = {
    200: {"content": {CAP_MEDIA_TYPE: {}}, "description": "The CAP 1.2 document."}
}
_unknown: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "No such warning."}}
_operators: dict[int | str, dict[str, Any]] = {403: {"model": Error, "description": "Not an operator."}}


def _warner(who: Principal, verb: str) -> None:
    if not who.can_command:
        raise HTTPException(403, f"user {who.username!r} is a {who.role}: only operators {verb} warnings")


@contextmanager
def _refused_as_422() -> Iterator[None]:
    """The library's refusals (each names its field) as a 422."""
    try:
        yield
    except (WarningError, SelectorError) as exc:
        raise HTTPException(422, str(exc)) from None
    except WireError as exc:
        raise HTTPException(422, str(exc).removeprefix(f"{exc.reason}: ")) from None


def _stored(warnings: Warnings, identifier: str) -> StoredWarning:
    found = warnings.get(identifier)
    if found is None:
        raise HTTPException(404, f"no warning {identifier!r}: GET /api/v1/warnings lists them")
    return found


def _warning_item(warning: StoredWarning, at_ms: int) -> dict:
    return {**asdict(warning), "state": warning.state_at(at_ms)}


def _warning_out(warnings: Warnings, identifier: str, unacked: bool = False) -> dict:
    now = now_ms()
    warning = _stored(warnings, identifier)
    alert = warning.alert()
    receipts = [{**asdict(r), "flagged": r.flagged(now)} for r in warnings.receipts(identifier)]
    flagged = [r for r in receipts if r["flagged"]]
    return {
        "warning": _warning_item(warning, now),
        "alert": alert.to_json() if alert else None,
        "receipts": flagged if unacked else receipts,
        "unacknowledged": len(flagged),
    }


def _csv_answer(pieces: Iterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        pieces,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/places", response_model=Items[PlaceItem], summary="Where each node reports it is")
def places(ctx: Ctx, q: Annotated[NoQuery, Query()]) -> dict:
    """A station's installed place (its config's ``[node] location``), or mobile: a vessel's GPS."""
    return {"items": [asdict(p) for p in Warnings(ctx.db).places()]}


@router.get("/warnings", response_model=ListPage[WarningItem], summary="Warnings, newest first")
def warning_list(ctx: Ctx, q: Annotated[WarningQuery, Query()]) -> dict:
    found = Warnings(ctx.db).list(since_ms(ctx, q), q.origin, q.offset + q.limit + 1)[q.offset :]
    now = now_ms()
    more = len(found) > q.limit
    return {
        "items": [_warning_item(w, now) for w in found[: q.limit]],
        "next_offset": q.offset + q.limit if more else None,
    }


@router.get("/warnings.csv", response_class=StreamingResponse, responses=_csv_file, summary="Warnings as CSV")
def warning_list_export(ctx: Ctx, q: Annotated[WarningQuery, Query()]) -> StreamingResponse:
    """Every warning issued since ``since`` (of ``origin``), newest first: ``limit`` and ``offset`` do not
    apply; text a spreadsheet would run as a formula is neutralised."""
    found = Warnings(ctx.db).list(since_ms(ctx, q), q.origin)
    return _csv_answer(warning_list_csv(found, now_ms(), ctx.settings.zone), "warnings.csv")


@router.post(
    "/warnings/reach",
    response_model=WarningReach,
    summary="The nodes a draft warning would reach, and why, before issuing it",
)
def warning_reach(ctx: Ctx, q: Annotated[NoQuery, Query()], body: WarningReachBody) -> dict:
    """The nodes the selector picks (none: every node), and when the draft has areas, of those the
    stations whose reported place is inside and every vessel (it decides on board)."""
    with _refused_as_422():
        targets = Warnings(ctx.db).reach(body.draft(now_ms()), body.selector)
    return {"count": len(targets), "targets": [asdict(t) for t in targets]}


@router.post(
    "/warnings",
    status_code=201,
    response_model=WarningOut,
    responses={403: {"model": Error}},
    summary="Issue a warning (operators)",
)
def warning_issue(ctx: Ctx, who: Who, q: Annotated[NoQuery, Query()], body: WarningBody) -> dict:
    """A CAP alert made of the body, its identifier and sender the centre's, queued as one ``warning``
    command per node it reaches (``POST /api/v1/warnings/reach`` tells which); in the audit log."""
    _warner(who, "issue")
    warnings, now, sender = Warnings(ctx.db), now_ms(), default_sender()
    with _refused_as_422():
        alert = body.to_alert(new_identifier(sender, now), sender, now)
        warnings.issue(alert, body.selector, who.username, now, body.ack_within_s)
    return _warning_out(warnings, alert.identifier)


@router.get(
    "/warnings/{identifier}",
    response_model=WarningOut,
    responses=_unknown,
    summary="A warning and its receipts per target",
)
def warning_show(
    ctx: Ctx, identifier: Annotated[Identifier, Path()], q: Annotated[WarningShowQuery, Query()]
) -> dict:
    return _warning_out(Warnings(ctx.db), identifier, q.unacked)


@router.get(
    "/warnings/{identifier}/receipts.csv",
    response_class=StreamingResponse,
    responses=_csv_file | _unknown,
    summary="A warning's receipts as CSV, one row per target",
)
def warning_receipts_export(
    ctx: Ctx, identifier: Annotated[Identifier, Path()], q: Annotated[NoQuery, Query()]
) -> StreamingResponse:
    warnings = Warnings(ctx.db)
    _stored(warnings, identifier)
    rows = warning_receipts_csv(warnings.receipts(identifier), now_ms(), ctx.settings.zone)
    return _csv_answer(rows, "receipts.csv")


@router.get(
    "/warnings/{identifier}/cap.xml",
    response_class=Response,
    responses=_cap_xml | _unknown,
    summary="A warning as CAP 1.2 XML, as it was issued",
)
def warning_cap(
    ctx: Ctx, identifier: Annotated[Identifier, Path()], q: Annotated[NoQuery, Query()]
) -> Response:
    """An Update or a Cancel too (with its ``references``); a node's own sounding has none (404)."""
    alert = _stored(Warnings(ctx.db), identifier).alert()
    if alert is None:
        raise HTTPException(404, f"warning {identifier!r} is a node's own sounding: it has no CAP alert")
    return Response(to_xml(alert), media_type=CAP_MEDIA_TYPE)


@router.post(
    "/warnings/{identifier}/cancel",
    response_model=WarningOut,
    responses=_operators | _unknown,
    summary="Cancel a warning (operators): a Cancel referring to it goes to its targets",
)
def warning_cancel(
    ctx: Ctx,
    who: Who,
    identifier: Annotated[Identifier, Path()],
    q: Annotated[NoQuery, Query()],
    body: WarningCancelBody | None = None,
) -> dict:
    """The warning's sirens stop; it becomes ``cancelled``. In the audit log."""
    _warner(who, "cancel")
    warnings = Warnings(ctx.db)
    _stored(warnings, identifier)
    with _refused_as_422():
        warnings.cancel(identifier, who.username, now_ms(), body.note if body else "")
    return _warning_out(warnings, identifier)


@router.post(
    "/warnings/{identifier}/update",
    status_code=201,
    response_model=WarningOut,
    responses=_operators | _unknown,
    summary="Update a warning (operators): an Update with the body's content goes to its targets",
)
def warning_update(
    ctx: Ctx,
    who: Who,
    identifier: Annotated[Identifier, Path()],
    q: Annotated[NoQuery, Query()],
    body: WarningUpdateBody,
) -> dict:
    """The Update (a new identifier, referring to the original, which becomes ``updated``) replaces the
    original's content; the answer is the Update's. In the audit log."""
    _warner(who, "update")
    warnings, now = Warnings(ctx.db), now_ms()
    _stored(warnings, identifier)
    with _refused_as_422():
        original = warnings.in_force(identifier, now).alert()
        assert original is not None  # in_force refuses a node's own sounding, the only one without
        alert = body.to_alert(new_identifier(original.sender, now), original.sender, now)
        warnings.update(identifier, alert, who.username, now, body.ack_within_s)
    return _warning_out(warnings, alert.identifier)
