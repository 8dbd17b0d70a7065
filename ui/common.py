"""Helpers shared by the tab builders."""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import gradio as gr

from routing.errors import UserError


def user_errors(fn: Callable) -> Callable:
    """Turn expected failures (UserError) into gr.Error with a message that says what to do."""

    def convert(exc: Exception) -> gr.Error:
        return gr.Error(str(exc.args[0]) if exc.args else str(exc))

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise convert(exc) from exc
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise convert(exc) from exc
    return wrapper
