"""The ``sensorlog`` command. Each sub-command calls the same ``pipelines`` function a DAG task calls.

Where a command goes: one module per noun, each holding its commands' options and a thin body,
and ``COMMANDS`` below, the one list of every command (in ``sensorlog --help`` order):

* ``ingest``: ``run``, ``status`` and one batch's plumbing, ``discover``, ``stage``, ``commit``;
* ``log``: the transparency log, ``verify``, ``prove``, ``check-proof``, ``log export``, ``cosign``
  and the ``witness`` group;
* ``home``: ``init``, an empty home (``sensorlog --init <command>`` makes one first, too);
* ``quarantine``: ``quarantine list`` and ``quarantine resolve`` (``pipelines.resolutions``);
* ``audit``, ``portal``, ``registry``: one command each;
* ``dev``: the sample city, ``generate`` and ``demo``, and a big invented registry, ``generate-registry``;
* ``_output``: what the commands print (consoles, progress bars, errors, the summary, proof text).

The modules import only typer and rich at the top; what a command needs is imported when it runs, so
``sensorlog --help`` stays fast (Airflow's ``lazy_load_command`` does the same).

The one error boundary is ``_Commands.invoke``: a ``SensorlogError`` prints its ``diagnostics()`` on
stderr and exits with its ``exit_code`` (``pipelines.errors``); an error of the spec library
``pipelines.tlog`` or of the file system prints one line and exits 1. None prints a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

from pipelines.cli import audit, compact, dev, home, ingest, log, portal, quarantine, registry
from pipelines.cli._output import print_error
from pipelines.cli.quality import data_docs_cmd
from pipelines.errors import FAILURE, SensorlogError

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # the type TyperGroup.invoke declares

# name on the command line -> the function in its noun's module.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("init", home.init_cmd),
    ("registry", registry.registry_cmd),
    ("generate", dev.generate_cmd),
    ("generate-registry", dev.generate_registry_cmd),
    ("discover", ingest.discover_cmd),
    ("stage", ingest.stage_cmd),
    ("commit", ingest.commit_cmd),
    ("run", ingest.run_cmd),
    ("status", ingest.status_cmd),
    ("compact", compact.compact_cmd),
    ("demo", dev.demo_cmd),
    ("portal", portal.portal_cmd),
    ("verify", log.verify_cmd),
    ("prove", log.prove_cmd),
    ("check-proof", log.check_proof_cmd),
    ("audit", audit.audit_cmd),
    ("data-docs", data_docs_cmd),
    ("cosign", log.cosign_cmd),
)
GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("log", log.log_app),
    ("witness", log.witness_app),
    ("quarantine", quarantine.quarantine_app),
)


def _describe(err: BaseException) -> str:
    """An ``OSError`` as ``<path>: <reason>`` (its errno's words), anything else as its message."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def _is_spec_error(err: BaseException) -> bool:
    """An error of ``pipelines.tlog`` (a note, checkpoint, proof, tile or leaf that does not parse or
    verify). The spec library imports nothing from the rest of ``pipelines``, so its errors are not
    ``SensorlogError``s; judged by where the class is defined, so that no tlog module is imported here."""
    return type(err).__module__.startswith("pipelines.tlog.")


class _Commands(TyperGroup):
    """Every sub-command, whichever module defines it, runs inside this one error boundary."""

    def invoke(self, ctx: ClickContext) -> object:
        try:
            return super().invoke(ctx)
        except SensorlogError as err:
            print_error(err.diagnostics())
            raise typer.Exit(err.exit_code) from err
        except Exception as err:
            if not (isinstance(err, OSError) or _is_spec_error(err)):
                raise  # a bug: its traceback is what a report needs
            print_error(f"{ctx.invoked_subcommand or 'sensorlog'}: {_describe(err)}")
            raise typer.Exit(FAILURE) from err


# -h as well as --help, on every command: click hands a context's help option names down to its children.
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help="Published, verifiable sensor logs.",
    context_settings=HELP_OPTIONS,
)


def installed_version() -> str:
    """The installed distribution's version, ``unknown`` when running from a tree never installed."""
    try:
        return version("sensorlog")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sensorlog {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
    ),
    init: bool = typer.Option(
        False, "--init", help="Create the home (SENSORLOG_HOME) first when it does not exist, as `sensorlog init`."
    ),
) -> None:
    if init:
        from pipelines.config import Settings
        from pipelines.home import create_home

        create_home(Settings.from_env())


for _name, _function in COMMANDS:
    app.command(_name)(_function)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


def main() -> None:
    app()
