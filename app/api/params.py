"""Typed path and query parameters shared by the routes."""

from typing import Annotated

from fastapi import Path, Query

from app.schemas.common import MAX_ID

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
