"""Shared schema pieces: request models and strings every database can store, and the 'ok' body."""

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from app.core.security import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

# Postgres text cannot hold NUL: it fails in the driver, a 500 instead of a 422 naming the field.
# A lone surrogate has no UTF-8 form on either database; the JSON parser refuses "\ud800" today,
# and this keeps it refused whichever parser or decoder a string comes through.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "must not contain NUL or unpaired surrogate characters"


def storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError(UNSTORABLE_MESSAGE)
    return value


# For query, path, header and form strings; request bodies get the same rule from RequestModel.
Text = Annotated[str, AfterValidator(storable)]


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        storable(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)


class RequestModel(BaseModel):
    """Base of every request body: no string field, now or added later, can hold what the
    database cannot store."""

    @field_validator("*", mode="before")
    @classmethod
    def _storable_strings(cls, value: Any) -> Any:
        _check_storable(value)
        return value


# Digits, spaces, + - ( ) with at least one digit. ASCII digits only: "²" is a digit to str.isdigit.
PHONE_CHARS = r"[0-9 +()\-]*[0-9][0-9 +()\-]*"
# Blank stays allowed where a blank phone means "none" or "unchanged".
PHONE_PATTERN = rf"^({PHONE_CHARS})?$"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
# A new password: the bounds of the one policy (app/core/security.py), which the service checks too.
Password = Annotated[
    str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32, pattern=PHONE_PATTERN)
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Ok(BaseModel):
    ok: bool = True


# Ids are 64-bit signed on both databases; a larger number is a 422, not a driver error.
MAX_ID = 2**63 - 1
IdInt = Annotated[int, Field(ge=1, le=MAX_ID)]


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# Forms send "" for a field left empty; on an optional field that means "none".
BlankIsNone = BeforeValidator(_blank_to_none)
