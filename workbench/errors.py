"""One family for every problem a user can fix: the recipe, the data or the environment.

Anything raised as a `WorkbenchError` is shown to the user as a message (exit
code 2 on the command line, no traceback); anything else is a bug, whose stack
goes to the run's error.log. Subclasses keep their own names (FeatureError,
DataSourceError, CKKSError, ...) so that code and tests can tell causes apart.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem caused by the recipe, the data or the environment; its message names party, step, file, field or column."""


class RoleError(WorkbenchError, ValueError):
    """A step's parties do not have the roles it needs (e.g. no aggregator for federated training)."""
