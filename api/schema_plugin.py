"""The OpenAPI schema of a msgspec Struct, saying what the decoder enforces.

Litestar's own Struct plugin leaves two things out of the document (issue 14, bug 9):

* **Unknown fields.** A Struct declared with `forbid_unknown_fields=True` refuses a field it
  does not know (400), so its schema says `additionalProperties: false`; a client generated
  from the document then cannot send one either.
* **Constraints of optional fields.** For a field whose type is a union (`X | None`,
  `X | UnsetType`), Litestar copies a constraint only when its value is truthy, so `gt=0`
  and `ge=0` vanished (`points_expiry_days` in a PATCH, the campaign `caps.*`), and writes
  the others beside `oneOf`, where validators apply them but generators (schemathesis) do
  not look. Every bound msgspec checks is put back, from msgspec's own view of the type
  (`msgspec.inspect`), on the union's one non-null member; a union of one member (`X |
  UnsetType`: a field that may be left out) is that member.
* **Constraints of a list's items.** `list[Text]` lost its items' pattern and lengths (a
  tier name, a voucher code): they are put back on `items`.

Registered before Litestar's plugins (`create_app(plugins=...)`), so it handles every Struct.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIType, Schema

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

_NUMBER = {"gt": "exclusive_minimum", "ge": "minimum", "lt": "exclusive_maximum",
           "le": "maximum", "multiple_of": "multiple_of"}
_TEXT = {"min_length": "min_length", "max_length": "max_length", "pattern": "pattern"}
_ARRAY = {"min_length": "min_items", "max_length": "max_items"}
_OBJECT = {"min_length": "min_properties", "max_length": "max_properties"}
_KEYWORDS = {*_NUMBER.values(), *_TEXT.values(), *_ARRAY.values(), *_OBJECT.values()}
_ABSENT = msgspec.inspect.NoneType  # UNSET is not a type to msgspec.inspect: it is dropped


def _constraints(t: msgspec.inspect.Type) -> dict[str, object]:
    """The OpenAPI keywords (Litestar's Schema attribute names) of `t`'s constraints; for a
    union, those of its one member that is not None."""
    if isinstance(t, msgspec.inspect.Metadata):  # a description or examples around it
        return _constraints(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        present = [m for m in t.types if not isinstance(m, _ABSENT)]
        return _constraints(present[0]) if len(present) == 1 else {}
    match t:
        case msgspec.inspect.IntType() | msgspec.inspect.FloatType():
            names = _NUMBER
        case msgspec.inspect.StrType():
            names = _TEXT
        case (msgspec.inspect.ListType() | msgspec.inspect.SetType()
              | msgspec.inspect.FrozenSetType() | msgspec.inspect.VarTupleType()):
            names = _ARRAY
        case msgspec.inspect.DictType():
            names = _OBJECT
        case _:
            return {}
    return {key: value for attr, key in names.items()
            if (value := getattr(t, attr, None)) is not None}


class StrictStructSchema(StructSchemaPlugin):
    """Litestar's Struct schema plus `additionalProperties: false` and every constraint."""

    def to_openapi_schema(self, field_definition: FieldDefinition,
                          schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):  # pragma: no cover - a Struct
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            prop = (schema.properties or {}).get(field.encode_name)
            if not isinstance(prop, Schema):  # a reference to another Struct: its own schema
                continue
            for key, value in _constraints(field.type).items():
                if getattr(prop, key, None) is None:
                    setattr(prop, key, value)
            assert schema.properties is not None
            schema.properties[field.encode_name] = prop = _on_the_member(prop)
            if (item := _item_type(field.type)) is not None:
                _constrain_items(prop, _constraints(item))
        return schema


def _item_type(t: msgspec.inspect.Type) -> msgspec.inspect.Type | None:
    """The item type of a list (or set, or tuple of any length) field, through an optional."""
    if isinstance(t, msgspec.inspect.Metadata):
        return _item_type(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        present = [m for m in t.types if not isinstance(m, _ABSENT)]
        return _item_type(present[0]) if len(present) == 1 else None
    if isinstance(t, (msgspec.inspect.ListType, msgspec.inspect.SetType,
                      msgspec.inspect.FrozenSetType, msgspec.inspect.VarTupleType)):
        return t.item_type
    return None


def _constrain_items(prop: Schema, constraints: dict[str, object]) -> None:
    """Write `constraints` on (a copy of) the items schema of `prop`, or of its non-null
    member."""
    arrays = [prop, *(m for m in prop.one_of or [] if isinstance(m, Schema))]
    for array in arrays:
        if isinstance(array.items, Schema) and constraints:
            items = dataclasses.replace(array.items)
            for key, value in constraints.items():
                if getattr(items, key, None) is None:
                    setattr(items, key, value)
            array.items = items


def _on_the_member(prop: Schema) -> Schema:
    """`prop` with the constraints written beside its `oneOf` moved onto the one member that
    is not null (a copy: Litestar may share member schemas); a one-member union becomes that
    member, with the union's description and examples."""
    members = prop.one_of or []
    values = [m for m in members if not (isinstance(m, Schema) and m.type == OpenAPIType.NULL)]
    if len(values) != 1 or not isinstance(values[0], Schema):
        return prop
    member = dataclasses.replace(values[0])
    for key in _KEYWORDS:
        if (value := getattr(prop, key, None)) is not None:
            if getattr(member, key, None) is None:
                setattr(member, key, value)
            setattr(prop, key, None)
    if len(members) > 1:
        prop.one_of = [member if m is values[0] else m for m in members]
        return prop
    for f in dataclasses.fields(Schema):  # the union's own keywords: description, examples
        if f.name != "one_of" and (value := getattr(prop, f.name)) is not None and getattr(
                member, f.name) is None:
            setattr(member, f.name, value)
    return member
