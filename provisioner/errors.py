"""The library's own exceptions.

Bad data is never an exception: validation and plans return it as results.
An exception means that work cannot go on (an unreadable sheet, a journal that
cannot be written, a journal in use by another run); its message says what is
wrong and how to fix it, in words for the installer. The CLI turns these into
exit 2 without a traceback (an interrupt into 130). Errors from the platform have
their own hierarchy (``provisioner.platform.PlatformError``, exit 3).
"""

from __future__ import annotations


class ProvisionerError(Exception):
    """Work cannot go on; the message says why and what to do."""


class Declined(ProvisionerError):
    """The installer said no at the question: nothing was written."""


class Interrupted(ProvisionerError):
    """Ctrl-C before anything was written to the platform."""
