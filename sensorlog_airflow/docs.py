"""DAG and task documentation from docstrings. Airflow 3 uses a ``@dag`` or ``@task`` function's
docstring as its ``doc_md`` (the UI's "Docs"), verbatim: on Python before 3.13 an indented docstring
would render as a Markdown code block, so :func:`documented` dedents it first."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def documented(fn: F) -> F:
    """``fn`` with its docstring dedented (``inspect.cleandoc``); apply it under ``@dag``/``@task``."""
    if not fn.__doc__:
        raise ValueError(f"{fn.__qualname__} has no docstring: every DAG and task documents itself")
    fn.__doc__ = inspect.cleandoc(fn.__doc__)
    return fn
