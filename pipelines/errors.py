"""The one error tree: every exception class in ``pipelines`` derives from ``SensorlogError``.

An error says two things to whoever meets it at the command line's boundary (``pipelines.cli``):
``diagnostics()``, the message printed on stderr (no traceback), and ``exit_code``, what
``sensorlog`` exits with. A class sets its code; one raise can override it (``exit_code=``).

The exit codes (the README's "Exit codes" table lists which commands use which):

* ``FAILURE`` (1): a check failed or the work was not done (the default);
* ``USAGE`` (2): bad arguments or configuration (an invalid registry, an option or ``SENSORLOG_*``
  value that cannot be used); typer's own usage errors exit 2 too;
* ``GATE`` (3): ``sensorlog audit --fail-on``: findings at or above that severity exist.

Each class keeps the standard base its callers catch it by, listed after ``SensorlogError``
(``class LedgerError(SensorlogError, RuntimeError)``), so ``except ValueError`` still catches a
``SiteAuditError``. The exceptions of ``pipelines.tlog`` are the one exception to the tree: the spec
library imports nothing from the rest of ``pipelines``, so the command line's boundary maps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

FAILURE = 1
USAGE = 2
GATE = 3


class SensorlogError(Exception):
    """An error meant for the person running sensorlog: ``diagnostics()`` says what went wrong."""

    exit_code: int = FAILURE

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code

    def diagnostics(self) -> str:
        """The message a user sees (one line, or one line per problem)."""
        return str(self)


class UsageError(SensorlogError):
    """A bad argument, option or setting, found after typer parsed the command line."""

    exit_code = USAGE


@contextmanager
def reported_as(prefix: str, *kinds: type[BaseException], exit_code: int = FAILURE) -> Iterator[None]:
    """Inside, an error of one of ``kinds`` becomes a ``SensorlogError`` saying ``"<prefix>: <error>"``
    with ``exit_code``: how a command names the errors below it that are its user's to read (a bad
    ``--lang`` raises a plain ``ValueError`` deep inside the portal)."""
    try:
        yield
    except kinds as err:
        raise SensorlogError(f"{prefix}: {err}", exit_code=exit_code) from err
