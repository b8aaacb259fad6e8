"""Configuration problems as sentences an operator can act on.

Pydantic names a location like ``providers.a.replicate.image_hosts.0`` and says "Input should
be greater than or equal to 1". An operator edits a TOML file, so every problem here names the
file, the table and the key, says what the value must be and what it is, and suggests the
nearest valid name for a typo. The settings are known only through the model passed in: the
models' module imports this one to report its problems.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeGuard, get_args, get_origin

from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails

from bot.core.domain import Tier

# Pydantic lists allowed values as "'a', 'b' or 'c'" in the context of its errors.
_QUOTED = re.compile(r"'([^']*)'")
# Pydantic's last location part for an error in a dict's key rather than in its value. A
# file may name a key "[key]" too, so _is_key_error checks the location's structure as well.
_KEY_MARKER = "[key]"
_BARE_TOML_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SHOWN_LENGTH = 60

_KINDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string in double quotes",
    "model_type": "a table",
    "dict_type": "a table",
    "list_type": "a list",
    "tuple_type": "a list",
    "url_type": 'a URL such as "https://example.com"',
}
_BOUNDS = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
# Keys whose values must match a pattern, and that form in words; others show the pattern.
_FORMS = {
    "image_hosts": 'a lowercase host name such as "cdn.example.com", "*.example.com" or '
    '"example.com:8443"',
    "cancel_after": 'a duration such as "30s", "10m" or "1h"',
}


@dataclass(frozen=True)
class _Place:
    """Where an error is in the file: a table, a key path inside it, and the model of that
    table (its fields are the keys valid there) when it has one."""

    table: tuple[str, ...]
    key: tuple[str | int, ...]
    model: type[BaseModel] | None


def describe_errors(
    errors: Sequence[ErrorDetails], model: type[BaseModel], source: str
) -> list[str]:
    """One sentence per error of validating the file ``source`` as ``model``.

    A table with an unknown name (``[tiers.fastt]``) is one problem, not one more for every
    key that table then lacks or has wrong.
    """
    of_keys = [_is_key_error(model, error) for error in errors]
    bad_names = [error["loc"][:-1] for error, of_key in zip(errors, of_keys, strict=True) if of_key]
    return [
        _describe(error, _locate(model, error["loc"]), source, of_key=of_key)
        for error, of_key in zip(errors, of_keys, strict=True)
        if of_key or not any(error["loc"][: len(name)] == name for name in bad_names)
    ]


def unknown_tier_providers(
    raw: Mapping[str, object], configured: Collection[str], source: str
) -> list[str]:
    """Every provider that a ``[tiers.*]`` table of the file names but nobody configured.

    Worked out from the file itself, so that it is reported with every other problem even when
    the settings as a whole cannot be built. A tier the file leaves out uses every configured
    provider, which goes wrong only when there is none.
    """
    if not configured:
        return [f"{where(source, ('providers',))}: no provider is configured"]
    tiers = raw.get("tiers")
    if not isinstance(tiers, dict):
        return []  # validation reports what is wrong with it
    problems = []
    for tier, table in tiers.items():
        names = table.get("providers") if isinstance(table, dict) else None
        if tier not in {known.value for known in Tier} or not isinstance(names, list):
            continue  # validation reports these
        problems += [
            f"{where(source, ('tiers', tier), ('providers',))}: names provider {_show(name)}, "
            f"which is not configured{_suggestion(name, configured)}"
            for name in names
            if isinstance(name, str) and name not in configured
        ]
    return problems


def where(source: str, table: Sequence[str] = (), key: Sequence[str | int] = ()) -> str:
    """``config.toml, table [providers.kkiai], key image_hosts (item 2)``."""
    parts = [source]
    if table:
        parts.append(f"table {_table(table)}")
    names = [part for part in key if isinstance(part, str)]
    if names:
        items = "".join(f" (item {part + 1})" for part in key if isinstance(part, int))
        parts.append(f"key {'.'.join(_toml_key(name) for name in names)}{items}")
    return ", ".join(parts)


def _describe(error: ErrorDetails, place: _Place, source: str, *, of_key: bool) -> str:
    context: dict[str, Any] = dict(error.get("ctx") or {})
    value = error["input"]
    if error["type"] == "extra_forbidden":
        return _unknown_key(place, value, source)
    if of_key:
        names = _QUOTED.findall(str(context.get("expected", "")))
        known = f" (known: {', '.join(names)})" if names else ""
        return (
            f"{where(source, place.table, place.key[:-2])}: unknown name {_show(value)}"
            f"{_suggestion(str(value), names)}{known}"
        )
    if error["type"] == "union_tag_invalid":
        tags = _QUOTED.findall(str(context["expected_tags"]))
        tag = str(context["tag"])
        return (
            f"{where(source, place.table, place.key)}: unknown type {_show(tag)}"
            f"{_suggestion(tag, tags)} (known: {', '.join(tags)})"
        )
    return f"{where(source, place.table, place.key)}: {_requirement(error, context, place)}"


def _unknown_key(place: _Place, value: object, source: str) -> str:
    *parent, name = place.key
    removed = _removed_keys(place.model).get(str(name)) if not parent else None
    if removed is not None:
        return (
            f"{where(source, place.table, place.key)}: was removed in this release and can be "
            f"deleted ({removed})"
        )
    choices = list(place.model.model_fields) if place.model and not parent else []
    if isinstance(value, dict):  # a table: [databse] rather than a key
        table = (*place.table, str(name))
        return f"{source}: unknown table {_table(table)}" + _suggestion(
            str(name), choices, lambda found: _table((*place.table, found))
        )
    hint = _suggestion(str(name), choices)
    if not hint and choices:
        hint = f" (known keys: {', '.join(choices)})"
    return f"{where(source, place.table, parent)}: unknown key {_show(name)}{hint}"


def _requirement(error: ErrorDetails, context: dict[str, Any], place: _Place) -> str:
    """What the value must be, and what it is."""
    kind = error["type"]
    it_is = f"(it is {_show(error['input'])})"
    if kind == "missing":
        return "is missing"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]} {it_is}"
    if kind in _BOUNDS:
        limit, words = _BOUNDS[kind]
        return f"must be {words} {_show(context[limit])} {it_is}"
    if kind in ("literal_error", "enum"):
        allowed = _QUOTED.findall(str(context["expected"]))
        return f"must be {_one_of(allowed)} {it_is}{_suggestion(str(error['input']), allowed)}"
    if kind == "url_parsing":
        return f'must be a URL such as "https://example.com/v1" {it_is}: {context["error"]}'
    if kind == "url_scheme":
        schemes = _QUOTED.findall(str(context["expected_schemes"]))
        return f"must start with {_one_of([f'{scheme}://' for scheme in schemes])} {it_is}"
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = context["min_length"] if kind == "too_short" else context["max_length"]
        return f"must have {bound} {_items(limit)} (it has {context['actual_length']})"
    if kind == "string_pattern_mismatch":
        key = next((part for part in reversed(place.key) if isinstance(part, str)), "")
        form = _FORMS.get(key, f"text matching {context['pattern']}")
        return f"must be {form} {it_is}"
    if kind == "value_error":
        return str(context["error"])
    message = error["msg"]
    return f"{message[:1].lower()}{message[1:]} {it_is}"


def _removed_keys(model: type[BaseModel] | None) -> Mapping[str, str]:
    """Keys an older release took in this table, each with what replaced it. A model lists
    them in its ``removed_keys`` class attribute."""
    removed = getattr(model, "removed_keys", None)
    return removed if isinstance(removed, Mapping) else {}


def _is_key_error(model: type[BaseModel], error: ErrorDetails) -> bool:
    """Whether pydantic refused a key of a dict (a tier named "fastt") rather than a value
    under a key that the file happened to name "[key]": only then is the input the key just
    before the marker, and what holds that key a dict."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden" or len(loc) < 2 or loc[-1] != _KEY_MARKER:
        return False
    return error["input"] == loc[-2] and _holds_dict(model, loc[:-2])


def _holds_dict(model: type[BaseModel], path: Sequence[str | int]) -> bool:
    """Whether ``path`` leads from ``model`` to a dict field, through the tags pydantic puts
    after the names of tagged-union entries."""
    annotation: object = model
    parts = list(path)
    while parts:
        part = parts.pop(0)
        if _is_model(annotation):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            models = _entry_models(annotation)
            if None in models or not models:
                annotation = models.get(None, get_args(annotation)[1])
            else:
                tag = parts.pop(0) if parts else None
                if not isinstance(tag, str) or tag not in models:
                    return False
                annotation = models[tag]
        else:
            return False
    return get_origin(annotation) is dict


def _locate(model: type[BaseModel], loc: tuple[str | int, ...]) -> _Place:
    """Split pydantic's location into the TOML table and the key path inside it.

    Sections are tables, and so are the entries of a dict of models (``[tiers.fast]``). In a
    dict of a tagged union (``[providers.a]``) pydantic puts the tag after the name, which the
    file does not have: it is dropped, and its model gives the keys valid there.
    """
    table: list[str] = []
    parts = list(loc)
    current: type[BaseModel] | None = model
    while current is not None and parts and isinstance(parts[0], str):
        field = current.model_fields.get(parts[0])
        if field is None:
            break
        if _is_model(field.annotation):
            table.append(str(parts.pop(0)))
            current = field.annotation
            continue
        models = _entry_models(field.annotation)
        if not models or len(parts) < 2:
            break
        table += [str(parts.pop(0)), str(parts.pop(0))]
        tag = parts[0] if parts else None
        if None in models:
            current = models[None]
        elif isinstance(tag, str) and tag in models:
            parts.pop(0)
            current = models[tag]
        else:
            current = None  # the entry's tag itself is wrong
    return _Place(tuple(table), tuple(parts), current)


def _entry_models(annotation: object) -> dict[str | None, type[BaseModel]]:
    """For ``dict[K, Model]``: {None: Model}; for a dict of a tagged union: {tag: Model};
    for anything else nothing: its entries are keys, not tables."""
    if get_origin(annotation) is not dict:
        return {}
    entry = get_args(annotation)[1]
    if _is_model(entry):
        return {None: entry}
    if get_origin(entry) is not Annotated:
        return {}
    models: dict[str | None, type[BaseModel]] = {}
    for member in get_args(get_args(entry)[0]):
        if get_origin(member) is Annotated:
            member_model, *metadata = get_args(member)
            for tag in metadata:
                if isinstance(tag, Tag) and _is_model(member_model):
                    models[tag.tag] = member_model
    return models


def _is_model(annotation: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _suggestion(
    word: str, choices: Collection[str], shown: Callable[[str], str] | None = None
) -> str:
    """`` — did you mean "listen_port"?`` for the nearest choice, if one is near."""
    found = difflib.get_close_matches(word, list(choices), n=1)
    if not found:
        return ""
    return f" — did you mean {shown(found[0]) if shown else _show(found[0])}?"


def _one_of(values: Sequence[str]) -> str:
    quoted = [_show(value) for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _table(path: Sequence[str]) -> str:
    return f"[{'.'.join(_toml_key(name) for name in path)}]"


def _toml_key(name: str) -> str:
    return name if _BARE_TOML_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _show(value: object) -> str:
    """A value as TOML writes it, shortened: a problem names it, it does not reproduce it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN_LENGTH else f"{text[: _SHOWN_LENGTH - 1]}…"
