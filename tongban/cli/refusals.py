"""How the command line reports a refusal: the stable code and both texts, exit status 3."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from core.errors import TongbanError, error_text

F = TypeVar("F", bound=Callable[..., Any])


def for_terminal(exc: TongbanError) -> str:
    """``exc`` for people at a terminal: ``E_CODE: 中文 / English (detail)``."""
    detail = f" ({exc.detail})" if exc.detail else ""
    return f"{exc.code.value}: {error_text(exc.code, 'zh')} / {error_text(exc.code, 'en')}{detail}"


def refuse(exc: TongbanError) -> NoReturn:
    """Print ``exc`` for people (:func:`for_terminal`) on stderr, and exit 3."""
    click.echo(for_terminal(exc), err=True)
    sys.exit(3)


def refusals(func: F) -> F:
    """A command that reports its TongbanError with :func:`refuse`."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TongbanError as exc:
            refuse(exc)

    return wrapper  # type: ignore[return-value]
