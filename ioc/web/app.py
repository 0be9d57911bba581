"""The dashboard's web application: the API, sign-in and sign-out, the pages and their static files.

``create_app(db, settings)`` builds it; uvicorn serves it (:class:`ioc.web.server.WebServer`).
Pages are the files of ``ioc/web/static``: ``/`` is ``index.html``,
``/NAME.html`` that file, ``/static/...`` the rest. A page other than
``login.html`` asked for without a session redirects to
``/login.html?next=<path>``.

Example::

    app = create_app(Database("sqlite:///ioc.db"), WebSettings())
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import types
import typing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ioc.db import Database
from ioc.web.api import COOKIE, WebContext, resolve_principal, router
from ioc.web.auth import Sessions, Tokens, Users
from ioc.web.live import LiveFeed
from ioc.web.lockout import SignInLimiter
from ioc.web.models import Error, SignedIn
from ioc.web.queries import NodeView
from ioc.web.settings import WebSettings
from ioc.web.warnings_api import router as warnings_router

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.html$")
MAX_FIELD = 1024


def create_app(
    db: Database,
    settings: WebSettings,
    *,
    static_dir: Path = STATIC_DIR,
    live_interval_s: float = 1.0,
    keepalive_s: float = 15.0,
) -> FastAPI:
    """The web application over ``db``: API under /api/v1 (OpenAPI at /api/v1/openapi.json), pages at /.

    ``live_interval_s`` is how often the live feed polls the database; ``keepalive_s`` how often an idle
    live stream sends a comment line (and checks that its session still holds).
    """
    nodes = NodeView(settings.online_after_s)
    feed = LiveFeed(db, nodes, interval_s=live_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        yield
        feed.stop()

    app = FastAPI(
        title="IOC centre",
        summary="Records the edge nodes sent to the centre: nodes, vessels, cameras, sensors, alarms.",
        version="1",
        openapi_url=None,  # served below to signed-in users only, as the rest of the API
        docs_url=None,  # served below from the vendored Swagger UI: FastAPI's own fetches it from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    sessions = Sessions(db, settings.session_hours * 3600)
    signins = SignInLimiter(
        db, settings.signin_max_failures, settings.signin_max_failures_per_address, settings.signin_allow
    )
    app.state.ctx = WebContext(
        db, settings, Users(db), sessions, Tokens(db), nodes, feed, signins, keepalive_s
    )
    # Starlette types a handler as taking any Exception, though it calls each only with the class it
    # is added for: a handler of a narrower class is refused [arg-type].
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(sqlite3.Error, _database_down)
    try:
        import psycopg

        app.add_exception_handler(psycopg.Error, _database_down)
    except ImportError:  # SQLite only: psycopg is an optional dependency
        pass
    app.add_middleware(ProtectiveHeaders, policy=content_security_policy(settings))
    app.include_router(router)
    app.include_router(warnings_router)
    _sign_in_routes(app)
    _page_routes(app, static_dir)
    _docs_routes(app, static_dir)
    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")
    return app


OPENAPI_URL = "/api/v1/openapi.json"


def _docs_routes(app: FastAPI, static_dir: Path) -> None:
    """The API's description and its interactive page, for signed-in users (or a token) only: they map
    every route and parameter, nothing a stranger needs."""

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        if resolve_principal(request, request.app.state.ctx) is None:
            raise HTTPException(
                401,
                "not signed in: sign in at /login.html, or send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(app.openapi())

    @app.get("/api/v1/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        """The API's interactive description (the vendored Swagger UI, nothing fetched from the internet)."""
        return _page(request, static_dir, "api-docs.html")


def content_security_policy(settings: WebSettings) -> str:
    """What the pages may load and run: scripts and styles of this site only (no inline script, so a
    name or message a node chose can never run as code), images also from the map tiles' server, and
    no page of ours framed by another site (an ack button under a decoy). With ``tile_url =
    "https://{s}.tile.example.org/{z}/{x}/{y}.png"``, images may come from ``https://*.tile.example.org``.
    """
    tiles = urlsplit(settings.tile_url)
    # Leaflet's {s} picks one of the tile server's subdomains.
    tile_source = f" {tiles.scheme}://{tiles.netloc.replace('{s}', '*')}" if tiles.netloc else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # data: for the icons in the docs page's stylesheet.
            f"img-src 'self' data:{tile_source}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


_HEADERS = {
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",  # a file of ours (a snapshot, a CSV) never sniffed as HTML
    "Referrer-Policy": "same-origin",  # no page address (a view, a device) sent to the tile server
}


class ProtectiveHeaders:
    """ASGI middleware adding :data:`_HEADERS` and the Content-Security-Policy ``policy`` to every answer
    (pure ASGI: live streams pass untouched)."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        headers = {**_HEADERS, "Content-Security-Policy": policy}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Credentials(BaseModel):
    """What POST /login reads (as JSON or a urlencoded form); documented here, checked by ``_credentials``."""

    username: str = Field(min_length=1, max_length=MAX_FIELD)
    password: str = Field(min_length=1, max_length=MAX_FIELD)


def _sign_in_routes(app: FastAPI) -> None:
    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": Credentials.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": Credentials.model_json_schema()},
            },
        }
    }

    @app.post(
        "/login",
        tags=["sign-in"],
        response_model=SignedIn,
        responses={
            303: {"description": "Signed in (a form): to `next` or /."},
            401: {"model": Error, "description": "Wrong user name or password."},
            429: {
                "model": Error,
                "description": "Too many failed sign-ins for this user name or from this address: "
                "refused without checking the password until the lock ends.",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds until the lock ends.",
                        "schema": {"type": "integer"},
                    }
                },
            },
            415: {"model": Error, "description": "Neither JSON nor a urlencoded form."},
            422: {
                "model": Error,
                "description": "A field is missing, too long or holds a NUL, or the JSON is invalid.",
            },
        },
        openapi_extra=body_doc,
        summary="Sign in: sets the session cookie",
    )
    async def login(request: Request) -> Response:
        ctx: WebContext = request.app.state.ctx
        form, fields = await _credentials(request)
        username = fields["username"]
        # The peer, or what a trusted proxy says (settings.trusted_proxies, applied by uvicorn).
        address = request.client.host if request.client else "unknown"
        # Checked before the password: a locked name costs no argon2 time and its answer no timing.
        attempt = await run_in_threadpool(ctx.signins.begin, username, address)
        if attempt.refusal is not None:
            refusal = attempt.refusal
            raise HTTPException(429, refusal.message, headers={"Retry-After": str(refusal.retry_after_s)})
        who = await run_in_threadpool(ctx.users.verify, username, fields["password"])
        if who is None:
            log.info("event=sign_in_refused user=%s addr=%s", json.dumps(username[:64]), address)
            ctx.signins.failed(attempt)
            raise HTTPException(401, "wrong user name or password")
        await run_in_threadpool(ctx.signins.succeeded, attempt)
        sid = await run_in_threadpool(ctx.sessions.create, who.username)
        log.info("event=signed_in user=%s role=%s", who.username, who.role)
        # The page follows the target the server chose: one rule for a form and for the page's script.
        target = _safe_next(request.query_params.get("next"))
        response: Response
        if form:
            response = RedirectResponse(target, status_code=303)
        else:
            response = JSONResponse({"username": who.username, "role": who.role, "next": target})
        response.set_cookie(
            COOKIE,
            sid,
            max_age=int(ctx.settings.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=_secure(request, ctx.settings),
        )
        return response

    @app.post(
        "/logout",
        tags=["sign-in"],
        responses={200: {"description": "Signed out."}, 303: {"description": "Signed out (a form)."}},
        summary="Sign out: ends the session",
    )
    async def logout(request: Request) -> Response:
        ctx: WebContext = request.app.state.ctx
        sid = request.cookies.get(COOKIE)
        if sid:
            await run_in_threadpool(ctx.sessions.end, sid)
        form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        response: Response = (
            RedirectResponse("/login.html", status_code=303) if form else JSONResponse({"signed_out": True})
        )
        response.delete_cookie(COOKIE, httponly=True, samesite="lax", secure=_secure(request, ctx.settings))
        return response


def _secure(request: Request, settings: WebSettings) -> bool:
    """Whether the session cookie is marked Secure: as the settings say, else when the request came over
    HTTPS (uvicorn takes the scheme from X-Forwarded-Proto only from ``trusted_proxies``)."""
    return settings.secure_cookie if settings.secure_cookie is not None else request.url.scheme == "https"


def _unpaired_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def _credentials(request: Request) -> tuple[bool, dict[str, str]]:
    """``(is_form, {username, password})`` of a JSON or urlencoded-form body; 4xx naming what is wrong."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if kind == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise HTTPException(422, "request body: not valid JSON") from None
        form = False
    elif kind == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise HTTPException(422, "request body: not UTF-8") from None
        data = {k: v[-1] for k, v in parsed.items()}
        form = True
    else:
        raise HTTPException(
            415, f"request body: send application/json or a urlencoded form, not {kind or 'nothing'}"
        )
    if not isinstance(data, dict):
        raise HTTPException(422, "request body: expected an object with username and password")
    fields = {}
    for name in ("username", "password"):
        value = data.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
            raise HTTPException(
                422, f"body field {name!r}: required, a string of 1 to {MAX_FIELD} characters"
            )
        # No user name holds either, and PostgreSQL's text refuses them (the lockout stores the name).
        if "\x00" in value or _unpaired_surrogate(value):
            raise HTTPException(422, f"body field {name!r}: holds a NUL or an unpaired surrogate")
        fields[name] = value
    return form, fields


NEXT_RE = re.compile(r"/(?!/)[A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*")
"""A path on this site: a slash not followed by another, then only characters a URL holds as they are.
Browsers drop tabs and newlines from a URL and read a backslash as a slash, so ``/<TAB>/evil.example``
and ``/\\evil.example`` would both leave the site: anything else is refused, not cleaned up."""


def _safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site (:data:`NEXT_RE`), else ``/``."""
    return target if target and NEXT_RE.fullmatch(target) else "/"


def _page(request: Request, static_dir: Path, name: str) -> Response:
    """The page ``name`` of ``static_dir``; without a session, a redirect to sign in first."""
    if not PAGE_RE.fullmatch(name):
        raise HTTPException(404, f"no page {name}")
    path = static_dir / name
    if not path.is_file():
        raise HTTPException(404, f"no page {name} (the dashboard's pages are not in {static_dir})")
    if name != "login.html" and resolve_principal(request, request.app.state.ctx) is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login.html?next={quote(target, safe='')}", status_code=303)
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def _page_routes(app: FastAPI, static_dir: Path) -> None:
    @app.get("/", include_in_schema=False)
    def index(request: Request) -> Response:
        return _page(request, static_dir, "index.html")

    @app.get("/{name}", include_in_schema=False)
    def named_page(request: Request, name: str) -> Response:
        return _page(request, static_dir, name)


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one message naming the parameter, instead of pydantic's list of error objects."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    where = loc[0] if loc else "request"
    name = loc[1] if len(loc) > 1 else None
    if err.get("type") == "extra_forbidden" and name:
        body = where == "body"
        message = f"unknown body field {name!r}" if body else f"unknown {where} parameter {name!r}"
        allowed = _model_fields(request, "body" if body else "q")
        message += f"; expected one of: {', '.join(allowed)}" if allowed else "; this endpoint takes none"
    elif where == "body":
        field = ".".join(loc[1:])
        message = f"body field {field!r}: {err['msg']}" if field else f"request body: {err['msg']}"
    else:
        message = f"{where} parameter {name!r}: {err['msg']}" if name else f"{where}: {err['msg']}"
    return JSONResponse({"detail": message}, status_code=422)


def _model_fields(request: Request, parameter: str) -> list[str]:
    """The fields of the model the matched route takes as ``parameter``: ``q`` its query, ``body`` its
    body (also when optional)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return []
    hint = typing.get_type_hints(route.endpoint, include_extras=True).get(parameter)
    model = (
        typing.get_args(hint)[0] if typing.get_origin(hint) in (typing.Annotated, types.UnionType) else hint
    )
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # FastAPI's own words for a body it cannot decode do not say which part is wrong.
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        exc = StarletteHTTPException(400, "request body: not valid JSON")
    return await http_exception_handler(request, exc)


def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("event=database_error path=%s error=%s", request.url.path, " ".join(str(exc).split()))
    return JSONResponse({"detail": "the database is not available at the moment; try again shortly"}, 503)
