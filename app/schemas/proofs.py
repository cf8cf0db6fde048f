"""Proof bodies: the per-store proof policy, a stored proof, and the failure reasons."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from app.db.models import ProofKind, ProofStage
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


def _file_part(value: Any) -> Any:
    # A multipart file part arrives as the framework's upload object (a file and its name); a
    # plain text field called `file` does not.
    if not (hasattr(value, "file") and hasattr(value, "filename")):
        raise ValueError("must be a file")
    return value


FilePart = Annotated[
    Any, AfterValidator(_file_part), WithJsonSchema({"type": "string", "format": "binary"})
]


class ProofUpload(RequestModel):
    """The multipart form of an upload: the file, what it proves, and when it was taken."""

    file: FilePart
    kind: ProofKind
    stage: ProofStage = ProofStage.DROPOFF


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
