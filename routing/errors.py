"""Exceptions a user can cause or a provider can raise.

UI and API layers turn :class:`UserError` into ``gr.Error`` with its message unchanged, so
messages here are written for the person who typed the prompt or uploaded the file.
"""

from __future__ import annotations

from routing.safety.redact import redact


class UserError(ValueError):
    """Bad input that the user can fix (empty prompt, unknown model id, bad file...)."""


class UnknownModelError(UserError):
    """A model id that is not in the pool."""

    def __init__(self, model_id: str, valid_ids: list[str]):
        self.model_id = model_id
        self.valid_ids = list(valid_ids)
        super().__init__(
            f"Unknown model {model_id!r}. Valid model ids: {', '.join(self.valid_ids)}."
        )


class PoolFileError(UserError):
    """The model pool file is missing or malformed."""


class ProviderError(RuntimeError):
    """A provider call failed.

    ``status`` is the HTTP status where there was one (None for connection errors and
    timeouts); ``retryable`` says whether trying again (or another model) can help.
    The message is redacted when the error is made (:func:`routing.safety.redact.redact`): providers
    may echo the request's ``Authorization`` header in their error bodies.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None, model: str | None = None):
        message = redact(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.model = model
        super().__init__(message)


class SpendLimitError(UserError):
    """A spending limit stops the call: the daily budget, or a request's ``max_cost_usd``.

    ``code`` is ``"daily_budget_exhausted"`` or ``"max_cost_exceeded"``; the gateway answers 402.
    """

    status = 402

    def __init__(self, message: str, *, code: str):
        self.code = code
        super().__init__(message)


class ProviderKeyError(UserError):
    """A provider refused the key itself (401) or the account has no credits (402).

    That is about the key, not the model: the router stops there (other models behind the same
    key would answer the same) and says how to fix it, rather than quietly answering locally.
    """

    def __init__(self, message: str, *, status: int, provider_host: str = ""):
        self.status = status
        self.provider_host = provider_host
        super().__init__(message)
