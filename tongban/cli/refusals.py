"""How the command line reports a refusal: the stable code and both texts, exit status 3."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from core.errors import TongbanError, error_text

F = TypeVar("F", bound=Callable[..., Any])


def refuse(exc: TongbanError) -> NoReturn:
    """Print ``exc`` for people, ``E_CODE: 中文 / English (detail)`` on stderr, and exit 3."""
    detail = f" ({exc.detail})" if exc.detail else ""
    click.echo(
        f"{exc.code.value}: {error_text(exc.code, 'zh')} / {error_text(exc.code, 'en')}{detail}", err=True
    )
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
