"""docs/configuration.md documents every key of the relay config, generated from the pydantic models.

The key tables between the BEGIN/END markers are rendered from the models' fields (type, default,
Field description), so the reference cannot drift from the code. After changing relay/config.py:

    UPDATE_DOCS=1 .venv/bin/pytest tests/unit/test_config_docs.py
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path

import annotated_types
from pydantic import BaseModel, HttpUrl
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from relay.config import ItemsSpec, JMESPath, RelayConfig, Rule, Source, ValueSpec
from relay.vendors.registry import VENDORS
from relay.vendors.spec import Destination

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = "<!-- BEGIN GENERATED: key reference (tests/unit/test_config_docs.py) -->"
END = "<!-- END GENERATED -->"

# Each model, the place it takes in the file, and its section title.
SECTIONS: list[tuple[type[BaseModel], str]] = [
    (RelayConfig, "top level"),
    (Destination, "destinations.&lt;name&gt;"),
    # Each vendor's own keys, next to the common ones above (relay.vendors.<kind>).
    *((spec.destination, f"destinations.&lt;name&gt; of kind {spec.kind}") for spec in VENDORS.values()),
    (Source, "sources.&lt;provider&gt;"),
    (Rule, "sources.&lt;provider&gt;.rules[]"),
    (ValueSpec, "sources.&lt;provider&gt;.rules[].value"),
    (ItemsSpec, "sources.&lt;provider&gt;.rules[].items"),
]
ANCHORS = {model: title.replace("&lt;", "").replace("&gt;", "") for model, title in SECTIONS}


def _anchor(model: type[BaseModel]) -> str:
    return "".join(c for c in ANCHORS[model].lower() if c.isalnum() or c in "-_")


_BOUNDS = {
    annotated_types.Gt: ("gt", "> {}"),
    annotated_types.Ge: ("ge", "≥ {}"),
    annotated_types.Lt: ("lt", "< {}"),
    annotated_types.Le: ("le", "≤ {}"),
}


def _private(annotation: object) -> bool:
    """A config internal (the model that reports an unknown vendor kind), not a documented type."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return isinstance(annotation, type) and annotation.__name__.startswith("_")


def type_name(annotation: object) -> str:
    """A reader's name for a field type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation == JMESPath:
        return "JMESPath"
    if origin is typing.Annotated:
        bounds = [
            _BOUNDS[type(m)][1].format(getattr(m, _BOUNDS[type(m)][0]))
            for m in args[1:]
            if type(m) in _BOUNDS
        ]
        return type_name(args[0]) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None) and not _private(a)]
        return " \\| ".join(named) + (" \\| null" if type(None) in args else "")
    if origin is dict:
        return f"map: {type_name(args[0])} → {type_name(args[1])}"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation in ANCHORS:
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    if annotation is HttpUrl:
        return "URL"
    if annotation is type(None):
        return "null"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", typing.Any: "any"}
    return names.get(annotation, str(annotation))  # type: ignore[call-overload]


def field_type(field: FieldInfo) -> str:
    # pydantic moves a bare Annotated field's metadata off its annotation: put it back
    annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return type_name(annotation)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined or value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list) and not value:
        return "`{}`" if isinstance(value, dict) else "`[]`"
    return f"`{value}`"


def render_reference() -> str:
    parts = [BEGIN, ""]
    for model, title in SECTIONS:
        parts += [f"### {title}", ""]
        if model.__doc__:
            parts += [" ".join(model.__doc__.split()), ""]
        parts += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in own_fields(model).items():
            meaning = (field.description or "").replace("|", "\\|")
            parts.append(f"| `{name}` | {field_type(field)} | {default_text(field)} | {meaning} |")
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def own_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A vendor's destination shows only the keys it adds or redefines (its kind, a default of
    its own); the rest are common."""
    if model is not Destination and issubclass(model, Destination):
        common = Destination.model_fields
        return {
            name: f
            for name, f in model.model_fields.items()
            if name == "kind" or name not in common or f.default != common[name].default
        }
    return dict(model.model_fields)


def current_reference(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_every_config_key_has_a_description():
    # A key without a description would show an empty "meaning" column.
    undocumented = [
        f"{model.__name__}.{name}"
        for model, _ in SECTIONS
        for name, field in own_fields(model).items()
        if not field.description
    ]
    assert undocumented == []


def test_every_nested_model_has_its_section():
    # Given the models reachable from RelayConfig, Then each one has a table in the reference.
    seen: set[type[BaseModel]] = set()

    def walk(annotation: object) -> None:
        private = isinstance(annotation, type) and annotation.__name__.startswith("_")  # config internals
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and annotation not in seen
            and not private
        ):
            seen.add(annotation)
            for field in annotation.model_fields.values():
                walk(field.annotation)
        for arg in typing.get_args(annotation):
            walk(arg)

    walk(RelayConfig)
    assert seen == set(ANCHORS) - {Destination}  # the common keys' table, shared by every vendor


def test_docs_configuration_md_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    expected = render_reference()
    if os.environ.get("UPDATE_DOCS") == "1":
        DOC.write_text(text.replace(current_reference(text), expected), encoding="utf-8")
        text = DOC.read_text(encoding="utf-8")
    assert current_reference(text) == expected, (
        "docs/configuration.md is stale: run UPDATE_DOCS=1 .venv/bin/pytest tests/unit/test_config_docs.py"
    )
