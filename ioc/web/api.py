"""The JSON API under /api/v1: nodes, commands, audit, vessels, positions, counts, events, summaries,
alarms, live; the warnings' routes are in ``ioc.web.warnings_api``, on a router of :func:`api_router`.

Every route needs a principal: the session cookie of a signed-in user or an
API token (``Authorization: Bearer ioc_...``); 401 without. Lists take
``limit``/``offset`` pages and ``from``/``to`` ranges, and ``format=csv``.
Errors are ``{"detail": "<message naming the parameter>"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security
from fastapi.responses import Response, StreamingResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ioc import commissioning, track
from ioc.audit import COMMAND_SEND, audit, csv_text
from ioc.audit import entries as audit_entries
from ioc.commands import CommandError, CommandQueue
from ioc.db import Database, now_ms
from ioc.desired import DesiredConfigs
from ioc.web import queries
from ioc.web.aqi import BANDS
from ioc.web.auth import Principal, Sessions, Tokens, Users
from ioc.web.csvout import csv_rows
from ioc.web.live import LiveFeed, sse_messages
from ioc.web.lockout import SignInLimiter
from ioc.web.models import (
    Ack,
    AlarmItem,
    AuditItem,
    CommandItem,
    CommissioningOut,
    ConfigOut,
    CountItem,
    Error,
    EventItem,
    Items,
    ListPage,
    Me,
    NodeItem,
    PositionItem,
    RejectItem,
    SettingsOut,
    SummaryItem,
    TrackOut,
    VesselItem,
    WarningQuery,
)
from ioc.web.params import (
    AckBody,
    AlarmQuery,
    AuditQuery,
    CommandBody,
    CommandQuery,
    CountQuery,
    Device,
    Epoch,
    EventQuery,
    FormatQuery,
    NoQuery,
    ParameterError,
    PositionQuery,
    Seq,
    SummaryQuery,
    parse_time,
)
from ioc.web.queries import Listing, Page, RecordList, TimeRange
from ioc.web.settings import WebSettings

COOKIE = "ioc_session"
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class WebContext:
    """What the routes share: the database, the settings and the objects built on them."""

    db: Database
    settings: WebSettings
    users: Users
    sessions: Sessions
    tokens: Tokens
    nodes: queries.NodeView
    feed: LiveFeed
    signins: SignInLimiter
    keepalive_s: float = 15.0
    """How often an idle live stream sends a comment line and checks that its session still holds."""


def context(request: Request) -> WebContext:
    return request.app.state.ctx


Ctx = Annotated[WebContext, Depends(context)]

_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="The session cookie that POST /login sets.")
_bearer = HTTPBearer(auto_error=False, description="An API token: `ioc-center token create USER`.")


def resolve_principal(request: Request, ctx: WebContext) -> Principal | None:
    """Who the request acts for, from its bearer token or else its session cookie; None if nobody."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return ctx.tokens.resolve(credentials.strip())
    sid = request.cookies.get(COOKIE)
    return ctx.sessions.resolve(sid) if sid else None


def principal(
    request: Request,
    ctx: Ctx,
    _cookie_value: Annotated[str | None, Security(_cookie)],
    _token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The signed-in user or the token's user; 401 without either, 403 for a cross-site cookie POST."""
    who = resolve_principal(request, ctx)
    if who is None:
        raise HTTPException(
            401,
            "not signed in: sign in at /login.html, or send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in ("GET", "HEAD") and "authorization" not in request.headers:
        # A cookie travels with a form another site posts here; a browser names that site in Origin.
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, f"cross-site request from {origin} refused")
    return who


Who = Annotated[Principal, Security(principal)]

_errors: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "The request body is not valid JSON."},
    401: {"model": Error, "description": "Not signed in and no valid token."},
    422: {"model": Error, "description": "A parameter is unknown or its value is not valid."},
}
_csv: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The list (JSON or CSV)."}
}


def api_router() -> APIRouter:
    """A router of the API: its routes under /api/v1, each needing a principal, the common errors listed."""
    return APIRouter(prefix="/api/v1", dependencies=[Security(principal)], responses=_errors)


router = api_router()


def _times(ctx: WebContext, q: Any) -> TimeRange:
    try:
        times = TimeRange(
            parse_time(q.from_, "from", ctx.settings.zone) if q.from_ is not None else None,
            parse_time(q.to, "to", ctx.settings.zone) if q.to is not None else None,
        )
    except ParameterError as exc:
        raise HTTPException(422, str(exc)) from None
    if times.start_ms is not None and times.end_ms is not None and times.start_ms > times.end_ms:
        raise HTTPException(422, f"query parameter 'from' ({q.from_}) is after 'to' ({q.to})")
    return times


def _listing(
    ctx: WebContext, q: Any, name: str, keys: Iterable[str], fetch: Callable[[Page], Listing]
) -> Listing | Response:
    """A page as JSON, or for ``format=csv`` the rows (every row in range unless ``limit`` is given)."""
    if q.format == "csv":
        rows: Iterator[dict] = (
            iter(fetch(Page(q.limit, q.offset)).items)
            if q.limit is not None
            else queries.chunks(fetch, start=q.offset)
        )
        return StreamingResponse(
            csv_rows(rows, keys, ctx.settings.zone),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return fetch(Page(q.limit or DEFAULT_LIMIT, q.offset))


def _record_list(ctx: WebContext, q: Any, kind: RecordList, name: str, filters: dict) -> Listing | Response:
    times = _times(ctx, q)
    keys = kind.to_item({c: None for c in ("device", "epoch", "seq", "ts_ms", *kind.columns)})
    return _listing(ctx, q, name, keys, lambda page: kind.list(ctx.db, filters, times, page, q.order))


def _whole_list(ctx: WebContext, q: FormatQuery, name: str, items: list[dict], keys: Iterable[str]) -> Any:
    if q.format == "csv":
        return StreamingResponse(
            csv_rows(items, keys, ctx.settings.zone),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return {"items": items}


@router.get("/me", response_model=Me, summary="Who is signed in")
def me(who: Who, q: Annotated[NoQuery, Query()]) -> Me:
    return Me(username=who.username, role=who.role)


@router.get("/settings", response_model=SettingsOut, summary="The centre's settings for the pages")
def settings(ctx: Ctx, q: Annotated[NoQuery, Query()]) -> dict:
    s = ctx.settings
    return {
        "timezone": s.timezone,
        "tile_url": s.tile_url or None,
        "online_after_s": s.online_after_s,
        "aqi_bands": [b.as_dict() for b in BANDS],
        "water_level_thresholds": {k: v.model_dump() for k, v in s.water_level_thresholds.items()},
    }


@router.get(
    "/nodes", response_model=Items[NodeItem], responses=_csv, summary="Every node and its latest status"
)
def nodes(ctx: Ctx, q: Annotated[FormatQuery, Query()]) -> Any:
    return _whole_list(ctx, q, "nodes", ctx.nodes.nodes(ctx.db), NodeItem.model_fields)


@router.get(
    "/nodes/{device}/commissioning",
    response_model=CommissioningOut,
    responses={404: {"model": Error}},
    summary="A node's latest commissioning record (its signed self-test) and the signature's verdict",
)
def node_commissioning(ctx: Ctx, device: Annotated[Device, Path()], q: Annotated[NoQuery, Query()]) -> dict:
    found = commissioning.latest(ctx.db, device)
    if found is None:
        raise HTTPException(404, f"no commissioning record of node {device!r}: run ioc-edge selftest on it")
    return found


@router.get(
    "/nodes/{device}/track",
    response_model=TrackOut,
    summary="A vessel's signed track log at the centre: how far each chain is verified, and its flags",
)
def node_track(ctx: Ctx, device: Annotated[Device, Path()], q: Annotated[NoQuery, Query()]) -> dict:
    return track.chain_status(ctx.db, device)


@router.get(
    "/nodes/{device}/config",
    response_model=ConfigOut,
    summary="A node's desired config against the one it reports, with their diff",
)
def node_config(ctx: Ctx, device: Annotated[Device, Path()], q: Annotated[NoQuery, Query()]) -> dict:
    state = DesiredConfigs(ctx.db).state(device)
    return {
        "device": device,
        "desired": asdict(state.desired) if state.desired else None,
        "reported": state.reported,
        "reported_ms": state.reported_ms,
        "drift": state.drift,
        "diff": state.diff(),
        "command": asdict(state.command) if state.command else None,
    }


@router.get(
    "/nodes/{device}/commands",
    response_model=ListPage[CommandItem],
    summary="A node's commands, newest first: their states and the node's answers",
)
def node_commands(
    ctx: Ctx, device: Annotated[Device, Path()], q: Annotated[CommandQuery, Query()]
) -> Listing:
    return queries.commands(ctx.db, device, Page(q.limit, q.offset))


@router.post(
    "/nodes/{device}/commands",
    status_code=201,
    response_model=CommandItem,
    responses={403: {"model": Error}, 404: {"model": Error}},
    summary="Issue a command to a node (operators)",
)
def issue_command(
    ctx: Ctx,
    who: Who,
    device: Annotated[Device, Path()],
    q: Annotated[NoQuery, Query()],
    body: CommandBody,
) -> dict:
    """Queues the command, issued by the signed-in user; the centre signs it and sends it until the
    node answers or it expires (its state: ``GET /api/v1/nodes/{device}/commands``). Each request
    that gets this far is kept in the audit log, a refused one too."""
    details = {"kind": body.kind, "body": body.body, "ttl_s": body.ttl_s}

    def refuse(status: int, message: str) -> HTTPException:
        audit(ctx.db, who.username, COMMAND_SEND, device, details, f"not issued: {message}")
        return HTTPException(status, message)

    if not who.can_command:
        raise refuse(403, f"user {who.username!r} is a {who.role}: only operators issue commands")
    if not queries.heard(ctx.db, device):
        raise refuse(404, f"no node {device!r}: the centre has never heard from it")
    queue = CommandQueue(ctx.db)
    try:
        seq = queue.issue(device, body.kind, body.body, who.username, body.ttl_s, now_ms())
    except CommandError as exc:
        raise refuse(422, f"request body: {exc}") from None
    audit(ctx.db, who.username, COMMAND_SEND, device, details, "queued", command_seq=seq)
    command = queue.get(device, seq)
    assert command is not None  # just issued; commands are never deleted
    return asdict(command)


@router.get(
    "/nodes/{device}/commands/{seq}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The JPEG the node answered with."},
        404: {"model": Error},
    },
    summary="The JPEG a node's snapshot command brought back",
)
def command_snapshot(
    ctx: Ctx,
    device: Annotated[Device, Path()],
    seq: Annotated[Seq, Path()],
    q: Annotated[NoQuery, Query()],
) -> Response:
    """Decoded from the command's answer (base64 there), so that the page shows it as an image of
    its own origin rather than a ``data:`` URL of up to 54 kB in the commands list."""
    jpeg = queries.command_snapshot(ctx.db, device, seq)
    if jpeg is None:
        raise HTTPException(404, f"no snapshot from command {seq} of {device}: no such, or not applied")
    # An applied command's answer never changes: the browser may keep it.
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def _auditor(who: Principal) -> None:
    if not who.can_command:
        raise HTTPException(403, f"user {who.username!r} is a {who.role}: only operators read the audit log")


@router.get(
    "/audit",
    response_model=ListPage[AuditItem],
    responses={403: {"model": Error}},
    summary="The audit log, newest first (operators)",
)
def audit_list(ctx: Ctx, who: Who, q: Annotated[AuditQuery, Query()]) -> Listing:
    """Who issued which command, pushed or adopted which config, set which label, and the result;
    an entry that issued a command follows its outcome."""
    _auditor(who)
    since = since_ms(ctx, q)
    return queries.audit_log(ctx.db, q.device, since, Page(q.limit, q.offset))


@router.get(
    "/audit.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "Every entry."},
        403: {"model": Error},
    },
    summary="The audit log as CSV, oldest first (operators)",
)
def audit_csv(ctx: Ctx, who: Who, q: Annotated[AuditQuery, Query()]) -> StreamingResponse:
    """As ``ioc-center audit list --csv``: ``limit`` and ``offset`` do not apply; text a spreadsheet
    would run as a formula is neutralised."""
    _auditor(who)
    log = audit_entries(ctx.db, q.device, since_ms(ctx, q))
    return StreamingResponse(
        csv_text(log),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def since_ms(ctx: WebContext, q: AuditQuery | WarningQuery) -> int | None:
    """The query's ``since`` (ISO 8601; no zone: the centre's) as UTC ms, None without; 422 if invalid."""
    try:
        return parse_time(q.since, "since", ctx.settings.zone) if q.since is not None else None
    except ParameterError as exc:
        raise HTTPException(422, str(exc)) from None


# The stream items (VesselItem, PositionItem...) are models built from the wire's columns at import
# (ioc.web.models): mypy sees variables, not classes, in Items[...] and ListPage[...] [valid-type].
@router.get(
    "/vessels",
    response_model=Items[VesselItem],  # type: ignore[valid-type]
    responses=_csv,
    summary="Latest position of each vessel",
)
def vessels(ctx: Ctx, q: Annotated[FormatQuery, Query()]) -> Any:
    return _whole_list(ctx, q, "vessels", ctx.nodes.vessels(ctx.db), VesselItem.model_fields)


@router.get(
    "/rejects", response_model=Items[RejectItem], responses=_csv, summary="Payloads the centre refused"
)
def rejects(ctx: Ctx, q: Annotated[FormatQuery, Query()]) -> Any:
    return _whole_list(ctx, q, "rejects", queries.rejects(ctx.db), RejectItem.model_fields)


@router.get("/positions", response_model=ListPage[PositionItem], responses=_csv, summary="GPS positions")  # type: ignore[valid-type]
def positions(ctx: Ctx, q: Annotated[PositionQuery, Query()]) -> Any:
    return _record_list(ctx, q, queries.POSITIONS, "positions", {"device": q.device})


@router.get(
    "/counts",
    response_model=ListPage[CountItem],  # type: ignore[valid-type]
    responses=_csv,
    summary="Objects counted by cameras",
)
def counts(ctx: Ctx, q: Annotated[CountQuery, Query()]) -> Any:
    return _record_list(ctx, q, queries.COUNTS, "counts", {"device": q.device, "camera": q.camera})


@router.get("/events", response_model=ListPage[EventItem], responses=_csv, summary="Camera events")  # type: ignore[valid-type]
def events(ctx: Ctx, q: Annotated[EventQuery, Query()]) -> Any:
    return _record_list(ctx, q, queries.EVENTS, "events", {"device": q.device, "camera": q.camera})


@router.get(
    "/events/{device}/{epoch}/{seq}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The event's JPEG."},
        404: {"model": Error},
    },
    summary="An event's snapshot",
)
def event_snapshot(
    ctx: Ctx,
    device: Annotated[Device, Path()],
    epoch: Annotated[Epoch, Path()],
    seq: Annotated[Seq, Path()],
    q: Annotated[NoQuery, Query()],
) -> Response:
    jpeg = queries.snapshot(ctx.db, device, epoch, seq)
    if jpeg is None:
        raise HTTPException(404, f"no event {device}/{epoch}/{seq}")
    # A record never changes once stored: the browser may keep it.
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/summaries", response_model=ListPage[SummaryItem], responses=_csv, summary="Sensor summaries")  # type: ignore[valid-type]
def summaries(ctx: Ctx, q: Annotated[SummaryQuery, Query()]) -> Any:
    filters = {"device": q.device, "sensor": q.sensor, "quantity": q.quantity}
    return _record_list(ctx, q, queries.SUMMARIES, "summaries", filters)


@router.get("/alarms", response_model=ListPage[AlarmItem], responses=_csv, summary="Alarms, open first")
def alarm_list(ctx: Ctx, q: Annotated[AlarmQuery, Query()]) -> Any:
    times = _times(ctx, q)
    which = queries.AlarmFilter(open_only=q.state == "open", device=q.device)
    return _listing(
        ctx, q, "alarms", AlarmItem.model_fields, lambda page: queries.alarms(ctx.db, which, times, page)
    )


@router.post(
    "/alarms/{device}/{epoch}/{seq}/ack",
    response_model=Ack,
    responses={403: {"model": Error}, 404: {"model": Error}, 409: {"model": Error}},
    summary="Acknowledge an alarm (operators)",
)
def ack(
    ctx: Ctx,
    who: Who,
    device: Annotated[Device, Path()],
    epoch: Annotated[Epoch, Path()],
    seq: Annotated[Seq, Path()],
    q: Annotated[NoQuery, Query()],
    body: AckBody | None = None,
) -> dict:
    """Records who acknowledged the raise record and when; acknowledging again keeps the first ack."""
    if not who.can_ack:
        raise HTTPException(403, f"user {who.username!r} is a {who.role}: only operators acknowledge alarms")
    try:
        return queries.acknowledge(ctx.db, device, epoch, seq, who.username, body.note if body else "")
    except queries.AckRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
    summary="Rows newly stored, as server-sent events",
)
async def live(request: Request, ctx: Ctx, q: Annotated[NoQuery, Query()]) -> StreamingResponse:
    """Events ``position``, ``alarm``, ``status``, ``summary``, ``count``, ``event``; each ``data`` is
    ``{"items": [...]}`` in the shape of the list endpoint (``status``: /nodes items; ``alarm``: upserts by
    ``id``, sent for new records, raises a clear closed, and new acks). A comment line every 15 s keeps
    proxies from closing the stream; the stream ends when the session does."""
    queue = ctx.feed.subscribe(asyncio.get_running_loop())

    async def stream() -> Any:
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 3000\n\n"
            check_at = loop.time() + ctx.keepalive_s
            while True:
                try:
                    events = await asyncio.wait_for(queue.get(), max(0.0, check_at - loop.time()))
                except TimeoutError:
                    events = []
                if events is None:
                    return
                if events:
                    yield sse_messages(events)
                if loop.time() >= check_at:
                    if await run_in_threadpool(resolve_principal, request, ctx) is None:
                        return  # signed out, expired or token revoked meanwhile
                    yield ": keepalive\n\n"
                    check_at = loop.time() + ctx.keepalive_s
        finally:
            ctx.feed.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
