"""What every settings model shares, wherever it is declared (``models.config``, a detector's, a receiver's)."""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError


class SettingsModel(BaseModel):
    """A settings table: a number given as true or false is refused, not taken as 1 or 0."""

    @field_validator("*", mode="before")
    @classmethod
    def _a_number_is_not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic takes true as 1 and false as 0 for a number: ``ACCESSWATCH_RETENTION__EVENTS_DAYS=true``
        # (a flag's value on the wrong line) kept one day of events and purged the rest, without a word
        if type(value) is bool and info.field_name is not None and _numeric(cls.model_fields[info.field_name]):
            kind = "int_type" if cls.model_fields[info.field_name].annotation is int else "float_type"
            raise PydanticCustomError(kind, "a number, not a boolean")
        return value


def _numeric(field: FieldInfo) -> bool:
    """Whether a setting is a number (or a number or nothing), where a boolean is a mistake."""
    kinds = get_args(field.annotation) if get_origin(field.annotation) in (Union, UnionType) else (field.annotation,)
    return any(kind in (int, float) for kind in kinds) and not any(kind is bool for kind in kinds)
