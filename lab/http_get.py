"""A plain ``GET`` on a loopback service, with the standard library only.

The local lab's health gates ask one URL each and read a status code; ``requests`` costs more
to import than the whole answer takes, and every ``lab up`` and ``lab status`` pays it.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """The status code and the start of the body."""

    status: int
    text: str


class NoAnswer(OSError):
    """The server did not answer (refused, timed out, closed the connection)."""


def http_get(url: str, timeout: float) -> Answer:
    """``GET url`` (http only); raises NoAnswer with a short reason when nothing answers."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=timeout)
    try:
        connection.request("GET", where.path or "/")
        response = connection.getresponse()
        return Answer(response.status, response.read(4096).decode(errors="replace"))
    except ConnectionRefusedError:
        raise NoAnswer("connection refused") from None
    except TimeoutError:
        raise NoAnswer(f"no answer within {timeout:g}s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise NoAnswer(str(exc) or type(exc).__name__) from None
    finally:
        connection.close()
