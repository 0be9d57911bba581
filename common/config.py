"""TOML files validated by pydantic models, with errors a technician can act on.

The node's config (``edge.config``) and the centre's web settings (``ioc.web.settings``) are both
read with :func:`parse_toml`: one problem a line, naming the dotted key, the file and line (or
the command-line option that gave the value), the value and what was expected::

    drivers.gps.transport.baudrate (edge.toml line 14): '4800x' is not an integer
    node.device_id (edge.toml line 2): missing: required (a string, e.g. 'vessel-042')

Relative paths in such files are relative to the file: a :data:`ConfigPath` field resolves
itself against the ``base_dir`` that :func:`parse_toml` passes to the models.

Example::

    >>> from pydantic import Field
    >>> class Site(Section):
    ...     name: str = Field(description="The site.", examples=["thuan-an"])
    ...     logo: ConfigPath = Field(description="Its logo.")
    >>> parse_toml(Site, 'name = "hue"\\nlogo = "logo.png"\\n', "site.toml", base_dir="/etc/site").logo
    PosixPath('/etc/site/logo.png')
    >>> parse_toml(Site, 'name = 4\\nlogo = "a.png"\\n', "site.toml")
    Traceback (most recent call last):
    ...
    common.config.ConfigError: name (site.toml line 1): 4 is not a string
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo

from common.errors import IocEdgeError
from common.tomllines import KeyLines, toml_syntax_problem

__all__ = ["ConfigError", "ConfigPath", "Section", "parse_toml", "read_text", "resolve_path"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(IocEdgeError, ValueError):
    """A config file is unreadable or invalid; ``problems`` holds one message per problem.

    ``str(error)`` is the problems joined by newlines, ready to print.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Section(BaseModel):
    """A table of a config file: unknown keys are errors, and values are not coerced."""

    # strict: TOML has real types, so "4800" (a string) for an integer is a mistake to report,
    # not something to coerce silently.
    model_config = ConfigDict(extra="forbid", strict=True)


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """``path`` resolved against the config file's directory (the ``base_dir`` of the validation's
    context), for a validator of a field that is sometimes a path (a camera's ``source``)."""
    base = (info.context or {}).get("base_dir")
    if base is None or path.is_absolute():
        return path
    return Path(os.path.normpath(Path(base) / path))


ConfigPath = Annotated[Path, Strict(False), AfterValidator(resolve_path)]
"""A path in a config file: relative to the file's directory (TOML strings: hence not strict)."""


def read_text(path: str | os.PathLike[str], error: type[ConfigError] = ConfigError) -> str:
    """The text of the config file at ``path``; raises ``error`` saying why it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error([f"{path}: config file not found"]) from None
    except UnicodeDecodeError as exc:
        raise error([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise error([f"{path}: cannot read config file: {exc.strerror or exc}"]) from None


def parse_toml(
    model: type[M],
    text: str,
    source_name: str = "<config>",
    base_dir: str | os.PathLike[str] = ".",
    *,
    options: Mapping[str, object] | None = None,
    error: type[ConfigError] = ConfigError,
) -> M:
    """``model`` validated from TOML ``text``; raises ``error`` with every problem, one a line.

    ``source_name`` names the text in errors; ``base_dir`` anchors relative :data:`ConfigPath`
    values; ``options`` (command-line options, None values left out) win over the file's
    top-level keys, and their errors name the option.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error([toml_syntax_problem(str(exc), text, source_name)]) from None
    given = {k: v for k, v in (options or {}).items() if v is not None}
    data.update(given)
    try:
        return model.model_validate(data, context={"base_dir": Path(os.path.abspath(base_dir))})
    except ValidationError as exc:
        lines = KeyLines(text)
        problems = []
        for err in exc.errors(include_url=False):
            where = _Where(model, err["loc"])
            text = _problem(err, where)  # first: it may point the path at the key at fault
            if where.path and where.path[0] in given:
                at = "option --" + where.path[0].replace("_", "-")
            else:
                number = lines.find(where.path)
                at = f"{source_name} line {number}" if number is not None else source_name
            problems.append(f"{where.dotted()} ({at}): {text}")
        raise error(problems) from None


class _Where:
    """Where a pydantic error location points in the model tree."""

    def __init__(self, root: type[BaseModel], loc: tuple[int | str, ...]) -> None:
        self.path: list[str] = []
        self.model: type[BaseModel] | None = None
        self.field: FieldInfo | None = None
        self.tp: Any = root
        self.dict_key = False
        for part in loc:
            self._step(part)

    def _step(self, part: int | str) -> None:
        tp = _unannotate(self.tp)
        tags = _union_tags(tp)
        if part == "[key]":
            self.dict_key = True  # the error is about the key itself, already in the path
        elif str(part) in tags and str(part) not in getattr(tp, "model_fields", {}):
            # pydantic puts the discriminator's value into the location; the file has no such key
            self.tp = tags[str(part)]
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            self.model, self.field = tp, tp.model_fields.get(str(part))
            self.path.append(str(part))
            self.tp = self.field.annotation if self.field else None
        elif get_origin(tp) is dict:
            self.path.append(str(part))
            self.tp = get_args(tp)[1]
        else:
            self.path.append(str(part))
            self.tp = None

    def dotted(self) -> str:
        bare = re.compile(r"^[A-Za-z0-9_-]+$")
        return ".".join(p if bare.match(p) else json.dumps(p) for p in self.path) or "(top level)"


def _unannotate(tp: Any) -> Any:
    """The type under ``Annotated[...]`` and an optional's ``| None``."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            rest = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _union_tags(tp: Any) -> dict[str, type[BaseModel]]:
    """``{tag: model}`` of a union of models discriminated on ``type``, else ``{}``."""
    tp = _unannotate(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        members: tuple[Any, ...] = (tp,) if "type" in tp.model_fields else ()
    elif get_origin(tp) in (Union, types.UnionType):
        members = get_args(tp)
    else:
        return {}
    tags = {}
    for member in members:
        field = getattr(member, "model_fields", {}).get("type")
        if field is not None:
            for tag in get_args(field.annotation):
                tags[str(tag)] = member
    return tags


def _expected(field: FieldInfo | None, tp: Any) -> str:
    """Plain words for what a field takes, e.g. "a string, e.g. 'vessel-042'"."""
    tp = _unannotate(field.annotation if field is not None else tp)
    if _union_tags(tp) and not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        words = "a table with type = " + " or ".join(repr(t) for t in _union_tags(tp))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        words = "a table"
    elif get_origin(tp) is Literal:
        words = "one of: " + ", ".join(repr(v) for v in get_args(tp))
    else:
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", Path: "a path"}
        members = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
        words = " or ".join(names.get(member, "a value") for member in members)
    if field is not None and field.examples:
        words += f", e.g. {field.examples[0]!r}"
    return words


def _problem(err: Mapping[str, Any], where: _Where) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "missing":
        if isinstance(_unannotate(where.tp), type) and issubclass(_unannotate(where.tp), BaseModel):
            return f"missing: required table [{where.dotted()}]"
        return f"missing: required ({_expected(where.field, where.tp)})"
    if kind == "extra_forbidden":
        allowed = ", ".join(where.model.model_fields) if where.model else "none"
        return f"unknown key; expected one of: {allowed}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        where.path.append("type")
        tags = ", ".join(repr(t) for t in _union_tags(where.tp))
        if kind == "union_tag_invalid":
            return f"{ctx.get('tag')!r} is not a known type; expected one of: {tags}"
        return f"missing: required (one of: {tags})"
    if kind == "string_pattern_mismatch" and where.dict_key:
        return f"{value!r} is not a valid name; expected one matching {ctx.get('pattern')}"
    return _value_problem(kind, value, ctx, err["msg"], where)


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "path_type": "a path (a string)",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}

_BOUND_WORDS = {
    "greater_than": ("too small", "> {gt}"),
    "greater_than_equal": ("too small", ">= {ge}"),
    "less_than": ("too large", "< {lt}"),
    "less_than_equal": ("too large", "<= {le}"),
    "string_too_short": ("too short", "at least {min_length} characters"),
    "string_too_long": ("too long", "at most {max_length} characters"),
    "too_long": ("too long", "at most {max_length} entries"),
}


def _value_problem(kind: str, value: Any, ctx: dict[str, Any], msg: str, where: _Where) -> str:
    if kind in _TYPE_WORDS:
        return f"{value!r} is not {_TYPE_WORDS[kind]}"
    if kind in _BOUND_WORDS:
        word, bound = _BOUND_WORDS[kind]
        shown = f"{len(value)} entries" if kind == "too_long" else repr(value)
        plain = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
        return f"{shown} is {word}; expected {bound.format(**plain)}"
    if kind == "literal_error":
        return f"{value!r} is not allowed; expected {_expected(where.field, where.tp)}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the pattern {ctx.get('pattern')}"
    if kind == "value_error":
        # our validators write complete sentences; pydantic prefixes them
        return str(ctx.get("error", msg)).removeprefix("Value error, ")
    return f"{value!r}: {msg[:1].lower()}{msg[1:]}"
