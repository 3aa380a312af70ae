"""How a failed call to the API server reads in one line, without importing the client.

A refusal (the client's ``ApiException``: ``status``, ``reason``, ``body``) keeps the Status
message and drops the response headers; a transport failure says which of the usual causes it
was (connection refused, timed out...).
"""

from __future__ import annotations

import json
from typing import Any


def _is_api_error(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "status", None), int) and hasattr(exc, "body")


def api_error_text(exc: Any) -> str:
    """Status, reason and the API server's message: the reason is in the body, never cut off."""
    if not _is_api_error(exc):
        return str(exc)
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    return f"{exc.status} {exc.reason}: {body.strip()}"


def api_error_message(exc: Any) -> str:
    """One readable line for a failed call: the Status message, or why the connection failed."""
    if _is_api_error(exc):
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        return f"{exc.status} {exc.reason}" + (f": {message}" if message else "")
    text = str(getattr(exc, "reason", None) or exc)
    for cause in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "certificate verify failed",
    ):
        if cause.lower() in text.lower():
            return cause.lower()
    return text.rsplit(": ", 1)[-1][:200]


# Failures that mean "a moment too early" right after a CRD or a webhook's Deployment was
# created: the webhook has no endpoint yet, or discovery has not caught up with the CRD.
def retriable(exc: BaseException) -> bool:
    """Whether a refusal only means the webhook or the CRD is not serving yet."""
    status = getattr(exc, "status", None)
    if status in (502, 503, 504):
        return True
    text = api_error_text(exc)
    hints = ("failed calling webhook", "connection refused", "no endpoints available", "x509")
    return status == 500 and any(hint in text for hint in hints)
