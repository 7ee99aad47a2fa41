"""``sensorlog data-docs``: build the Great Expectations Data Docs of every stored Validation Result.

The publisher builds the pages of what each run adds; this rebuilds both sites whole (after a GX
upgrade, a changed suite, or a home copied from elsewhere). See docs/data-quality.md.
"""

from __future__ import annotations

from pipelines.cli._output import console
from pipelines.config import Settings


def data_docs_cmd() -> None:
    """Build the Data Docs sites: <home>/quality/data_docs (operator) and quality/public/data_docs."""
    from pipelines.quality import docs

    result = docs.build(Settings.from_existing_home())
    console.print(
        f"[green]ok[/green] Data Docs of {result.results} stored validation result(s): {result.index}"
        f" (public copy without row values: {result.public_index})"
    )
