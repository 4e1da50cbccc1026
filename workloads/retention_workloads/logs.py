"""JSON logging for the API and the worker: one object per line.

Every line carries the stack's namespace and name, so a log pipeline can group
lines of many stacks. URLs are passed through :func:`redact` before they are
logged, because a Redis URL may carry a password.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Attributes every LogRecord has; anything else was passed with ``extra=`` and
# belongs in the JSON object.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object with the stack's identity on it."""

    def __init__(self, *, namespace: str, stack: str) -> None:
        super().__init__()
        self._identity = {"namespace": namespace, "stack": stack}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._identity,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(*, namespace: str, stack: str, level: str) -> None:
    """Send every log line of the process to stderr as JSON; replaces earlier handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(namespace=namespace, stack=stack))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route its lines through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``; other parts unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def error_fields(exc: BaseException) -> dict[str, str]:
    """The ``extra`` of a warning about ``exc``: its text, cut to 200 characters.

    Redis's and the database's errors name the address and the command, never
    a password; the cut keeps a line short when a library repeats a long reply.
    """
    return {"error": str(exc)[:200]}
