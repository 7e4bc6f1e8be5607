"""Every exception of the tool, in one place (httpx's ``_exceptions.py`` is the model).

Bad data is never an exception: validation and plans return it as results. An
exception means work cannot go on; its message says what is wrong and how to fix it,
in words for the installer, and never holds the token or a secret. The command line
turns each into its exit code without a traceback::

    ProvisionerError             work cannot go on: exit 2 (nothing was written)
    ├── Declined                 the installer said no at the question: exit 2
    ├── Interrupted              Ctrl-C before anything was written: exit 130
    ├── SheetError               the file cannot be read as a sheet (file, tab, cell, fix)
    │   └── EmptyTab             a tab holds nothing: passed over where the devices are looked for
    ├── TemplateError            a site template cannot be found, read or used
    ├── ConfigError              the settings file cannot be used
    ├── JournalError             the journal cannot be read, written or locked
    │   └── JournalBusy          another run holds the journal
    ├── ReportError              a report file cannot be written
    ├── SetupError               the client cannot be made: the URL or the token
    │   └── InsecureURL          http:// to a host that is not this machine
    ├── PlanError                a lookup the template does not allow
    ├── SavedPlanError           apply --plan: no plan, or one that no longer holds
    ├── VerifyError              verify cannot check (no device rows, a bad --since)
    ├── UndoError                undo cannot be made (no run, another sheet's journal)
    └── ExportError              export cannot be made as asked (no devices chosen, FILE)

    PlatformError                talking to the platform failed: exit 3 before any
    │                            write; once a run sends, it fails a row or stops the run
    ├── AuthError                401/403: token missing, unknown, revoked, or without the role
    ├── NotFound                 404
    ├── Conflict                 409: e.g. a device with this addr already exists
    ├── InvalidRequest           400/422 (and any other 4xx): the query or body was rejected
    ├── RateLimited              429, still after all retries
    ├── ServerError              5xx, still after all retries where retrying is safe
    ├── BadAnswer                an answer not as platform-api.md documents (not JSON, the
    │                            wrong shape, too big, too slow, a listing that never ends);
    │                            ``maybe_done``: a write that may have been carried out
    ├── TransportError           no answer, and the request was safe to retry (a failure to
    │                            connect; any failure of a read), after the outage window
    └── UnknownOutcome           a write that may have reached the platform without an
                                 answer: look the object up before sending it again

Each PlatformError carries ``status`` (the HTTP status, None without an answer) and
``message`` (the server's words, shortened and redacted). The modules that raise these
name them too (``provisioner.platform.PlatformError`` is this one).
"""

from __future__ import annotations


class ProvisionerError(Exception):
    """Work cannot go on; the message says why and what to do."""


class Declined(ProvisionerError):
    """The installer said no at the question: nothing was written."""


class Interrupted(ProvisionerError):
    """Ctrl-C before anything was written to the platform."""


class SetupError(ProvisionerError):
    """The client cannot be made: the URL or the token is not usable (nothing was sent)."""


class InsecureURL(SetupError):
    """An ``http://`` URL to a host that is not loopback: the token would travel unencrypted."""


class ConfigError(ProvisionerError):
    """The settings file cannot be used; the message names the file and the fix."""


class SheetError(ProvisionerError):
    """The file cannot be read as a sheet.

    Not found, not what its suffix says, encrypted, an empty tab, duplicate or
    merged headers. The message says what is wrong, where (file, tab, cell)
    and how to fix it; the CLI turns it into exit code 2.
    """


class EmptyTab(SheetError):
    """A tab holds no cell: an error for the tab named to be read, passed over where the
    devices tab is looked for (``Workbook.holds_table``)."""


class TemplateError(ProvisionerError):
    """A site template cannot be found, read or used; the message says what to fix."""


class PlanError(ProvisionerError):
    """The plan cannot be made as asked (a lookup the template does not allow)."""


class SavedPlanError(ProvisionerError):
    """``--plan`` names a file that is no plan, or one that no longer holds."""


class VerifyError(ProvisionerError):
    """The check cannot be made (e.g. an unreadable --since)."""


class UndoError(ProvisionerError):
    """The undo cannot be made: no journal, an unknown run, a journal of another sheet."""


class ExportError(ProvisionerError):
    """The export cannot be made as asked: no devices chosen, the file exists, cannot be written."""


class JournalError(ProvisionerError):
    """The journal cannot be read, written or locked."""


class JournalBusy(JournalError):
    """Another apply holds the journal."""


class ReportError(ProvisionerError):
    """A report file cannot be written (format, folder, or the disk said no)."""


# --- the platform -----------------------------------------------------------------------------


class PlatformError(Exception):
    """Something went wrong talking to the platform."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        self.status = status
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        head = f"HTTP {self.status}: " if self.status is not None else ""
        tail = f" ({self.hint})" if self.hint else ""
        return f"{head}{self.message}{tail}"


class AuthError(PlatformError):
    """401 or 403: the token is not accepted or lacks a role."""


class NotFound(PlatformError):
    """404: no such object or endpoint."""


class Conflict(PlatformError):
    """409: the object clashes with an existing one (e.g. the same addr)."""


class InvalidRequest(PlatformError):
    """400 or 422 (or another 4xx): the platform rejected the request."""


class RateLimited(PlatformError):
    """429 that persisted through all retries."""


class ServerError(PlatformError):
    """5xx that persisted through all retries (where retrying is safe)."""


class BadAnswer(PlatformError):
    """The platform answered, but not as the API documents.

    ``body`` holds the start of the answer, shortened and redacted. ``maybe_done``
    is True when the request was a write: it may have been carried out anyway.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str = "",
        body: str = "",
        maybe_done: bool = False,
    ) -> None:
        self.body = body
        self.maybe_done = maybe_done
        super().__init__(message, status=status, hint=hint)


class TransportError(PlatformError):
    """No answer within the outage window, and nothing was left half done: the request
    never reached the platform, or it was a read."""


class UnknownOutcome(PlatformError):
    """A write may have been processed, but its answer was lost."""
