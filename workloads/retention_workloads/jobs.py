"""What a job is: the API's request and response bodies, and its stream entry.

A job travels as one Redis Stream entry with flat string fields (see
:func:`encode_entry`). Anything may be appended to a stream by hand, so the
worker decodes entries with :func:`decode_entry`, which raises
:class:`MalformedJob` with a reason that ends up on the dead-letter stream.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

MAX_PAYLOAD_BYTES = 64 * 1024
"""The largest payload, as compact JSON, that the API accepts; streams live in memory."""

TaskName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")]

# Stream entry fields. Short names: they are stored in every entry.
F_ID = b"id"
F_TASK = b"task"
F_PAYLOAD = b"payload"
F_ENQUEUED_MS = b"enqueued_ms"
F_ATTEMPTS = b"attempts"


class JobRequest(BaseModel):
    """Body of ``POST /v1/jobs``: a task name and a JSON object for it."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName = Field(description="What to run; lower case letters, digits, '_', '.', '-'.")
    payload: dict[str, JsonValue] = Field(
        default_factory=dict,
        description=f"Input of the task: a JSON object of at most {MAX_PAYLOAD_BYTES} bytes.",
    )

    @field_validator("payload")
    @classmethod
    def _bounded(cls, payload: dict[str, JsonValue]) -> dict[str, JsonValue]:
        size = len(json.dumps(payload, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload is {size} bytes as JSON; the limit is {MAX_PAYLOAD_BYTES}")
        return payload


class JobAccepted(BaseModel):
    """Body of the 202 answer to ``POST /v1/jobs``."""

    id: uuid.UUID
    state: Literal["queued"] = "queued"


class JobState(BaseModel):
    """Body of ``GET /v1/jobs/{id}``: the row the worker wrote for a finished job."""

    id: uuid.UUID
    task: str
    state: Literal["done", "dead"] = Field(
        description="done: result committed; dead: sent to the dead-letter stream."
    )
    result: dict[str, Any] | None
    error: str | None
    attempts: int = Field(description="Failed attempts before the final one.")
    finished_at: datetime


class MalformedJob(ValueError):
    """A stream entry is not a job; the message is the reason kept on the dead-letter stream."""


@dataclass(frozen=True, kw_only=True)
class Job:
    """A decoded stream entry."""

    entry_id: str
    id: uuid.UUID
    task: str
    payload: dict[str, Any]
    enqueued_ms: int
    attempts: int
    """Attempts that failed before this entry was written (0 for a new job)."""


def new_job_fields(
    request: JobRequest, *, now_ms: int | None = None
) -> tuple[uuid.UUID, dict[bytes, bytes]]:
    """Return a fresh job id and the stream fields of a new job for ``request``."""
    job_id = uuid.uuid4()
    fields = encode_entry(
        job_id=job_id,
        task=request.task,
        payload_json=json.dumps(request.payload, separators=(",", ":")),
        enqueued_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        attempts=0,
    )
    return job_id, fields


def request_fingerprint(request: JobRequest) -> str:
    """A digest of what a job request asks for, to tell a retry from another request
    that reuses its Idempotency-Key (key order in the payload does not matter)."""
    canonical = json.dumps(
        {"task": request.task, "payload": request.payload}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
"""An Idempotency-Key: 1 to 255 visible ASCII characters (a UUID is the usual choice)."""


def encode_entry(
    *, job_id: uuid.UUID, task: str, payload_json: str, enqueued_ms: int, attempts: int
) -> dict[bytes, bytes]:
    """Return the stream fields of a job; :func:`decode_entry` is the inverse."""
    return {
        F_ID: str(job_id).encode(),
        F_TASK: task.encode(),
        F_PAYLOAD: payload_json.encode(),
        F_ENQUEUED_MS: str(enqueued_ms).encode(),
        F_ATTEMPTS: str(attempts).encode(),
    }


def retry_fields(job: Job, *, attempts: int) -> dict[bytes, bytes]:
    """Return the fields of ``job`` re-enqueued after ``attempts`` failed attempts."""
    return encode_entry(
        job_id=job.id,
        task=job.task,
        payload_json=json.dumps(job.payload, separators=(",", ":")),
        enqueued_ms=job.enqueued_ms,
        attempts=attempts,
    )


def decode_entry(entry_id: str, fields: dict[bytes, bytes]) -> Job:
    """Decode a stream entry into a :class:`Job`.

    Raises :class:`MalformedJob` naming the first field that is missing or
    invalid; such an entry can never succeed, so it is not retried.
    """
    try:
        job_id = uuid.UUID(_field(fields, F_ID))
    except ValueError:
        raise MalformedJob("field 'id' is not a UUID") from None
    task = _field(fields, F_TASK)
    try:
        TaskChecker.model_validate({"task": task})
    except ValueError:
        raise MalformedJob("field 'task' is not a valid task name") from None
    try:
        payload = json.loads(_field(fields, F_PAYLOAD))
    except ValueError:
        raise MalformedJob("field 'payload' is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedJob("field 'payload' is not a JSON object")
    return Job(
        entry_id=entry_id,
        id=job_id,
        task=task,
        payload=payload,
        enqueued_ms=_int_field(fields, F_ENQUEUED_MS),
        attempts=_int_field(fields, F_ATTEMPTS),
    )


class TaskChecker(BaseModel):
    """Checks a task name read from a stream with the same rule as the API."""

    task: TaskName


def _field(fields: dict[bytes, bytes], name: bytes) -> str:
    raw = fields.get(name)
    if raw is None:
        raise MalformedJob(f"field {name.decode()!r} is missing")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise MalformedJob(f"field {name.decode()!r} is not UTF-8") from None


def _int_field(fields: dict[bytes, bytes], name: bytes) -> int:
    text = _field(fields, name)
    if not (text.isascii() and text.isdigit()):
        raise MalformedJob(f"field {name.decode()!r} is not a non-negative integer")
    return int(text)
