"""What the sandbox answers when a request cannot be served.

Each exception carries the HTTP status it becomes and a message for the
``{"error": ...}`` body; the store raises them and the server turns them into
answers::

    SandboxError       base class, status 400
    ├── BadRequest     400: malformed query, body or value
    ├── Forbidden      403: the token's roles may not do this (an org token changing an addr)
    ├── NotFound       404: unknown path or object
    ├── Conflict       409: a unique value (device addr, user email) is taken
"""

from __future__ import annotations


class SandboxError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(SandboxError):
    status = 400


class Forbidden(SandboxError):
    status = 403


class NotFound(SandboxError):
    status = 404


class Conflict(SandboxError):
    status = 409
