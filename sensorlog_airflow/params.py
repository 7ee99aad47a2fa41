"""The DAGs' params as Airflow objects (their schemas and meaning live in ``pipelines.dag_params``), and
how a task reports a param that names nothing: a failure without retries, saying which param and why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from pipelines.dag_params import ParamError
from pipelines.flow import SelectionError


def params(spec: dict[str, tuple[Any, str, dict[str, Any]]]) -> dict[str, Param]:
    """``{name: Param}`` from ``pipelines.dag_params``' ``{name: (default, description, schema)}``."""
    return {name: Param(default, description=description, schema=schema)
            for name, (default, description, schema) in spec.items()}


@contextmanager
def param_errors() -> Iterator[None]:
    """A param the schema accepted that names nothing (an unknown landed file, a folder outside the
    landing root, a date that is not one) fails the task at once: a retry would fail the same way."""
    try:
        yield
    except (SelectionError, ParamError) as err:
        raise AirflowFailException(f"bad param: {err}") from None
