"""How the command line reports a refusal: the stable code and both texts, exit status 3."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from core.errors import TongbanError, error_text

F = TypeVar("F", bound=Callable[..., Any])


def refusals(func: F) -> F:
    """Print a TongbanError for people (both languages) and exit 3."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TongbanError as exc:
            detail = f" ({exc.detail})" if exc.detail else ""
            click.echo(
                f"{exc.code.value}: {error_text(exc.code, 'zh')} / {error_text(exc.code, 'en')}{detail}",
                err=True,
            )
            sys.exit(3)

    return wrapper  # type: ignore[return-value]
