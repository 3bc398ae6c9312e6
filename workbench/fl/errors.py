"""Federation failures, said in terms of sites rather than Flower node ids; a site's bug stays a bug.

A ClientApp that raises answers with an error reply. What a user can fix (a WorkbenchError, a missing or unreadable
file) travels as one line; anything else is a bug in the workbench, and travels with its stack behind a mark, so the
coordinator fails the run as an internal error (its stack in error.log) instead of reporting a dropped site.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # a step module that names these errors must not load Flower
    from flwr.app import Message

BUG_MARK = "internal error in the workbench (a bug): "
SITE_PROBLEMS = (WorkbenchError, OSError)
"""Errors at a site that describe its data, its recipe or its machine; the rest are bugs."""


class FederationError(WorkbenchError, RuntimeError):
    """A site stopped answering, never connected, or raised; the message names it and what to do."""


class SiteBug(RuntimeError):
    """A ClientApp raised something that is no user's mistake; the message holds the site's stack."""


def error_reason(error: BaseException) -> str:
    """The reason an error reply carries for `error`, raised by a ClientApp handler (call inside the `except`)."""
    head = f"{type(error).__name__}: {error}"
    return head if isinstance(error, SITE_PROBLEMS) else f"{BUG_MARK}{head}\n{traceback.format_exc()}"


def failure_reasons(replies: Iterable[Message]) -> list[str]:
    """The distinct one-line reasons of the error replies among `replies`; a bug's reply raises SiteBug with its stack."""
    errors = [reply.error.reason for reply in replies if reply.has_error()]
    for reason in errors:
        if reason and reason.startswith(BUG_MARK):  # Flower's reason is optional
            raise SiteBug(reason.removeprefix(BUG_MARK))
    return sorted({reason.splitlines()[0] if reason else "no reason given" for reason in errors})
