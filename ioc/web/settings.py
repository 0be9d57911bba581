"""The dashboard's settings: one small TOML file (optional), overridden by command-line options.

A complete file (every key is optional; the values are the defaults)::

    timezone = "Asia/Ho_Chi_Minh"      # the centre's time zone: pages and CSV show local times in it
    tile_url = ""                      # map tiles, e.g. "https://tile.example.org/{z}/{x}/{y}.png";
                                       # "" = no tiles (a plain background with a graticule)
    online_after_s = 180               # a node is online when it was heard within this many seconds
    session_hours = 12                 # a sign-in lasts this long (a shift)
    # secure_cookie = true             # unset: the session cookie is Secure when the request came
                                       # over HTTPS (served with TLS, or X-Forwarded-Proto: https from
                                       # a trusted proxy); true/false: always/never
    signin_max_failures = 5            # failed sign-ins for one user name from one address before
                                       # it is locked there (60 s, doubling up to 15 min)
    signin_max_failures_per_address = 20  # the same for one client address, whatever the names
    signin_allow = []                  # networks never address-locked (the operations room), e.g.
                                       # ["10.20.0.0/24"]; their user names are still limited
    trusted_proxies = []               # addresses of reverse proxies whose X-Forwarded-For and
                                       # X-Forwarded-Proto are believed, e.g. ["127.0.0.1"];
                                       # [] = the client is the peer address

    [water_level_thresholds.river]     # per water level sensor (the driver's name on the node)
    warn = 3.0                         # metres above the gauge's zero
    alarm = 3.5

Errors name the key, the file and its line, e.g.
``timezone (web.toml line 1): 'Asia/Hue' is not a known time zone; expected e.g. 'Asia/Ho_Chi_Minh'``.

Example::

    >>> s = parse_web_settings('timezone = "Asia/Bangkok"\\n', "web.toml")
    >>> s.timezone, s.online_after_s
    ('Asia/Bangkok', 180)
    >>> parse_web_settings("online_after = 5\\n", "web.toml")
    Traceback (most recent call last):
    ...
    ioc.web.settings.WebSettingsError: online_after (web.toml line 1): unknown key; expected one of: ...
"""

from __future__ import annotations

import ipaddress
import os
import zoneinfo
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.config import ConfigError, parse_toml, read_text
from common.fields import TimeZoneName


class WebSettingsError(ConfigError):
    """The dashboard's settings file is unreadable or invalid; one problem a line."""


class WaterLevelThreshold(BaseModel):
    """Levels (metres above the gauge's zero) at which a water level is shown as a warning or an alarm."""

    model_config = ConfigDict(extra="forbid", strict=True)

    warn: float = Field(description="Warning level, metres.", ge=-100, le=1000)
    alarm: float = Field(description="Alarm level, metres (at or above warn).", ge=-100, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> WaterLevelThreshold:
        if self.alarm < self.warn:
            raise ValueError(f"alarm ({self.alarm}) is below warn ({self.warn})")
        return self


class WebSettings(BaseModel):
    """What the dashboard and its API need to know about the centre.

    Example::

        >>> WebSettings(timezone="Asia/Ho_Chi_Minh").zone.key
        'Asia/Ho_Chi_Minh'
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    timezone: TimeZoneName = Field(
        "Asia/Ho_Chi_Minh",
        description="The centre's time zone (IANA name): local times in pages and CSV.",
    )
    tile_url: str = Field(
        "",
        description="Map tile URL template with {z}/{x}/{y}; empty: no tiles, a plain background.",
        max_length=500,
    )
    online_after_s: int = Field(180, description="A node heard within this many seconds is online.", ge=5)
    session_hours: float = Field(12, description="How long a sign-in lasts, hours.", gt=0, le=24 * 30)
    secure_cookie: bool | None = Field(
        None,
        description="Mark the session cookie Secure (sent over HTTPS only); unset: when the request came "
        "over HTTPS (TLS, or X-Forwarded-Proto: https from a trusted proxy).",
    )
    signin_max_failures: int = Field(
        5,
        description="Failed sign-ins for one user name from one address before it is locked there.",
        ge=1,
        le=1000,
    )
    signin_max_failures_per_address: int = Field(
        20, description="Failed sign-ins from one client address before it is locked.", ge=1, le=100_000
    )
    signin_allow: list[str] = Field(
        default_factory=list,
        description="Networks (the operations room) whose addresses are never locked for failed sign-ins; "
        "a user name's failures from them still count.",
        max_length=100,
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses) whose X-Forwarded-For and X-Forwarded-Proto headers "
        "are believed.",
        max_length=100,
    )
    water_level_thresholds: dict[str, WaterLevelThreshold] = Field(
        default_factory=dict, description="Warning and alarm levels per water level sensor."
    )

    @field_validator("tile_url")
    @classmethod
    def _template(cls, value: str) -> str:
        if value and not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError(f"{value!r} lacks {{z}}, {{x}} or {{y}}")
        if value and not value.startswith(("https://", "http://", "/")):
            raise ValueError(f"{value!r} is not an http(s) URL or a path on this server")
        return value

    @field_validator("trusted_proxies", "signin_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network, e.g. '127.0.0.1' or '10.0.0.0/24'"
                ) from None
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def load_web_settings(path: str | os.PathLike[str] | None = None, **overrides: object) -> WebSettings:
    """The settings of the file at ``path`` (None: the defaults), ``overrides`` (options) winning.

    Raises :class:`WebSettingsError`; an override that is not None replaces the file's key.
    """
    if path is None:
        return parse_web_settings("", "options", **overrides)
    path = Path(path)
    return parse_web_settings(read_text(path, WebSettingsError), path.name, **overrides)


def parse_web_settings(text: str, source_name: str = "<settings>", **overrides: object) -> WebSettings:
    """Validate settings ``text``; ``overrides`` (command-line options) win over the file's keys."""
    return parse_toml(WebSettings, text, source_name, options=overrides, error=WebSettingsError)
