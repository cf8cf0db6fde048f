"""Shared schema pieces: trimmed strings and the 'ok' body."""

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
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
