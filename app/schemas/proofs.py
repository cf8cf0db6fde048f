"""Proof bodies: the per-store proof policy, a stored proof, and the failure reasons."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.common import ReadModel, RequestModel

ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Requirement(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


class OutcomePolicy(RequestModel):
    model_config = ConfigDict(extra="forbid")

    photo: Requirement = Requirement.OPTIONAL
    signature: Requirement = Requirement.OPTIONAL


class FailedPolicy(OutcomePolicy):
    # Reasons whose failure needs a photo whatever `photo` says (`damaged`, `unsafe_location`).
    photo_required_for: Annotated[list[ReasonCode], Field(max_length=50)] = Field(
        default_factory=list
    )


class ProofPolicy(RequestModel):
    """What a store's couriers must upload before an order may end delivered or failed."""

    model_config = ConfigDict(extra="forbid")

    delivered: OutcomePolicy = Field(default_factory=OutcomePolicy)
    failed: FailedPolicy = Field(default_factory=FailedPolicy)


class ProofRead(ReadModel):
    id: int
    order_id: int
    kind: str
    stage: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    uploaded_by_id: int
    created_at: datetime
    # The bytes: this API's own path, or a presigned object-storage URL valid until url_expires_at.
    url: str = ""
    url_expires_at: datetime | None = None
    thumbnail_url: str | None = None


class FailureReason(BaseModel):
    code: str
    label: str
    note_required: bool
