"""One bounded HTTP request to a lab service, with the standard library only.

The local lab's health gates and the doctor's probes each ask one URL and read a status code
and the start of the body; ``requests`` costs more to import than such an answer takes, and
every ``lab up``, ``lab status`` and ``lab doctor`` would pay it.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

# The body is evidence (a status line, an error message), never data: its start is enough.
BODY_LIMIT = 4096


@dataclass(frozen=True)
class Answer:
    """The status code and the start of the body."""

    status: int
    text: str


class NoAnswer(OSError):
    """The server did not answer (refused, timed out, closed the connection)."""


def http_request(
    url: str, timeout: float, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    """``method url``; raises NoAnswer with a short reason when nothing answers."""
    where = urlsplit(url)
    connection_type = http.client.HTTPSConnection if where.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(where.hostname or "127.0.0.1", where.port, timeout=timeout)
    path = where.path or "/"
    try:
        connection.request(method, f"{path}?{where.query}" if where.query else path, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.read(BODY_LIMIT).decode(errors="replace"))
    except ConnectionRefusedError:
        raise NoAnswer("connection refused") from None
    except TimeoutError:
        raise NoAnswer(f"no answer within {timeout:g}s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise NoAnswer(str(exc) or type(exc).__name__) from None
    finally:
        connection.close()
