"""CLI flags generated from the pydantic config models, so a flag's default is its model's default.

Imitates vLLM's ``EngineArgs.add_cli_args``: every field becomes ``--field-name`` with the field's type,
choices and description; an unset flag is absent from the namespace (``argparse.SUPPRESS``), so the model's
own default applies and the CLI can never drift from it. Booleans that default to true get ``--no-<name>``.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

# Where a namespace keeps the flags of a nested model: "lora.r" is stored as dest "lora__r".
NESTED = "__"


def _plain(annotation: Any) -> tuple[Any, bool]:
    """(the type without ``| None``, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), len(args) < len(typing.get_args(annotation))
    return annotation, False


def _describe(field: FieldInfo, default: Any) -> str:
    text = (field.description or "").rstrip(".")
    if default is None or default == "" or isinstance(default, SecretStr):
        return text or " "
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    return f"{text} (default {shown})" if text else f"default {shown}"


def add_model_args(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    *,
    fields: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    aliases: Mapping[str, list[str]] | None = None,
    choices: Mapping[str, list[str]] | None = None,
    defaults: BaseModel | None = None,
    prefix: str = "",
) -> None:
    """Add one flag per field of ``model`` (``fields`` to choose, ``exclude`` to leave out).

    Names in ``exclude``, ``aliases`` and ``choices`` are field keys, ``"lora.r"`` for nested ones. ``aliases``
    gives the flag names when they are not ``--field-name`` (names people already type, such as ``--lr``);
    ``choices`` narrows a string field. ``defaults`` is the instance whose values the help shows (a parent's
    ``default_factory`` can differ from the nested model's own defaults).
    """
    aliases = aliases or {}
    choices = choices or {}
    defaults = defaults or model()
    chosen = list(fields) if fields is not None else list(model.model_fields)
    exclude = set(exclude)
    for name in chosen:
        key = f"{prefix}{name}"
        if key in exclude:
            continue
        field = model.model_fields[name]
        default = getattr(defaults, name)
        kind, optional = _plain(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            add_model_args(
                parser,
                kind,
                exclude=exclude,
                aliases=aliases,
                choices=choices,
                defaults=default,
                prefix=f"{key}.",
            )
            continue
        dest = key.replace(".", NESTED)
        flags = aliases.get(key) or ["--" + name.replace("_", "-")]
        if kind is bool:
            if default:
                flags = aliases.get(key) or ["--no-" + name.replace("_", "-")]
                parser.add_argument(
                    *flags, dest=dest, action="store_false", default=argparse.SUPPRESS,
                    help=f"{name} = false (on by default: {field.description or name})",
                )  # fmt: skip
            else:
                parser.add_argument(
                    *flags, dest=dest, action="store_true", default=argparse.SUPPRESS,
                    help=field.description or name,
                )  # fmt: skip
            continue
        options: dict[str, Any] = {
            "dest": dest, "default": argparse.SUPPRESS, "help": _describe(field, default), "metavar": name.upper(),
        }  # fmt: skip
        if key in choices or typing.get_origin(kind) is Literal:
            options["choices"] = choices.get(key) or [str(c) for c in typing.get_args(kind)]
            del options["metavar"]
        elif typing.get_origin(kind) is list:
            item = typing.get_args(kind)[0]
            options["type"] = lambda text, item=item: [item(part) for part in text.split(",") if part]
            options["metavar"] = "A,B,..."
        elif kind in (int, float, Path):
            options["type"] = kind
        if optional and kind in (int, float):
            options["help"] += "; 'none' to unset"
            options["type"] = lambda text, kind=kind: None if text.lower() == "none" else kind(text)
        parser.add_argument(*flags, **options)


def model_overrides(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of ``model`` the command line set, nested models as nested dicts."""
    given = vars(args)
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        kind, _ = _plain(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            nested = {k.split(NESTED, 1)[1]: v for k, v in given.items() if k.startswith(name + NESTED)}
            if nested:
                out[name] = nested
        elif name in given:
            out[name] = given[name]
    return out


def model_from_args(args: argparse.Namespace, model: type[BaseModel], **fixed: Any) -> Any:
    """``model`` built from its defaults, the flags given and ``fixed`` values (nested dicts merged).

    Built through the constructor, so a settings model still reads its environment for what no flag set."""
    values = {**model_overrides(args, model), **fixed}
    base = model().model_dump() if any(isinstance(v, dict) for v in values.values()) else {}
    for name, value in values.items():
        if isinstance(value, dict):
            values[name] = {**base.get(name, {}), **value}
    return model(**values)
