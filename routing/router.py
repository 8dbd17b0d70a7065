"""The router: select a model, ask it, fall back down the ranking on failure, explain.

One loop (:meth:`Router.stream`) serves both the streaming Ask tab and the JSON ``/query``
endpoint (:meth:`Router.ask` keeps only its last event).

Time policy. A query has ROUTER_DEADLINE seconds, all models and retries together, and one slow
model must not spend them all: each model gets a *share* of what is left when its turn comes
(:func:`model_budget`): 2 x remaining / (n + 1), with n the models still to try, itself
included (skipped ones, for a missing key or a cooldown, do not count). As if what is left were
cut into n + 1 equal parts: the model being tried (the better ranked) may use two, each later
one would get one, and the last model may use everything left. With the defaults (120 s,
4 models) the first model may use 48 s and leaves at least 72 s to the other three. The share goes to the client as a deadline: its retries stop, and its timeouts are
clipped, when the share is spent, and each attempt is also bounded by ROUTER_ATTEMPT_TIMEOUT
(see :mod:`routing.providers.openai_compat`). A model after the first is not started with less
than ``MIN_MODEL_BUDGET_S`` left, and models that could not each get that much are not counted
in n. One-model calls (:meth:`Router.ask_model`: compare-all, the judge) get the whole deadline.
The local model runs in-process and is not cut short.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field, asdict
from typing import Any, Callable, Iterator, Sequence

from routing.budget import SpendLedger, cost_bound, input_token_bound, is_paid
from routing.context.windows import METHOD, overflow_reason, too_long
from routing.escalation.policy import EscalationPolicy, answer_score, keep_second, next_model_up, unsure, weak
from routing.errors import ProviderError, ProviderKeyError, SpendLimitError, UserError
from routing.health import HealthTracker
from routing.hub import ProviderHub
from routing.pool import ModelPool, ModelSpec
from routing.providers.base import ChatResult, StreamChunk
from routing.providers.openai_compat import OpenAICompatibleClient
from routing.routes.decision import routed_selection
from routing.safety.redact import redact
from routing.selectors.base import Selection, Selector, evidence_of
from routing.settings import Settings

log = logging.getLogger(__name__)

LOCAL_ANSWERER = "gemma-3-270m"

#: Seconds below which a model is not worth starting (after the first) or counting in a share.
MIN_MODEL_BUDGET_S = 1.0


def model_budget(remaining: float, models_left: int, min_budget: float = MIN_MODEL_BUDGET_S) -> float:
    """Seconds the next model may use of the ``remaining`` query time (see the module docstring).

    ``models_left`` counts the models still to try, this one included; only as many as could
    each get ``min_budget`` seconds are counted. The last model gets all of ``remaining``.
    """
    if remaining <= 0:
        return 0.0
    n = max(1, min(models_left, int(remaining // min_budget)))
    return remaining if n == 1 else 2 * remaining / (n + 1)


#: Said with an answer the provider cut at ``max_tokens`` (``finish_reason: length``).
TRUNCATED_WARNING = ("The answer stopped at the token limit (max_tokens), not where the model ended it: it is cut "
                     "short. Ask for a shorter answer, or raise max_tokens.")


@dataclass
class QueryResult:
    """Everything ``/query`` returns (the original API's keys first)."""

    prompt: str
    selected_model: str
    response: str
    selection_confidence: float
    reasoning: str
    answered_by: str
    fallbacks: list[dict[str, Any]]
    usage: dict[str, int]
    cost_usd: float | None
    latency_ms: float
    scores: dict[str, float]
    selector: str = ""
    ranking: list[str] = field(default_factory=list)
    notice: str | None = None          # e.g. "no OpenRouter key: answered locally by ..."
    warnings: list[str] = field(default_factory=list)
    route_ms: float | None = None      # time the routing decision took (the selector)
    answer_id: str | None = None       # the outcome log's id for this answer (rate it with /feedback)
    first_token_ms: float | None = None  # streamed answers: the model's time to its first token
    evidence: dict[str, Any] | None = None  # the evidence prior's grounds (routing.selectors.base.evidence_of)
    route: str | None = None           # the route from examples that decided (routing/routes/); None: the selector
    route_similarity: float | None = None  # that route's similarity to the prompt
    finish_reason: str | None = None   # the provider's: "stop", "length" (cut at max_tokens), ...
    truncated: bool = False            # the answer stopped at the token limit, not where the model ended it
    #: ROUTER_ESCALATE: why the next model up was asked (or went first, streaming), what each answer
    #: scored and which was kept (routing/escalation/policy.py); None when there was no escalation
    escalation: dict[str, Any] | None = None
    upstream_ms: float | None = None   # the answering model's own call (the provider's time), without routing or failed tries

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RouterEvent:
    """One step of a streamed query: selection, a failed attempt, a text delta, or done."""

    kind: str                       # "selection" | "attempt" | "failed" | "delta" | "done"
    selection: Selection | None = None
    model: str | None = None
    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None  # "delta": tool-call deltas (HTTP providers)
    error: str | None = None
    result: QueryResult | None = None
    status: int | None = None       # "failed": the provider's HTTP status, if any
    chat: ChatResult | None = None  # "done": the provider's result (finish reason, raw body)


def _text_messages(messages: list[dict[str, Any]] | None, prompt: str | None) -> list[dict[str, str]]:
    """A chat reduced to plain-text system/user/assistant turns (for the local model).

    Text parts of list contents are joined; tool messages and empty turns are dropped. If the
    result does not end with a user turn, ``prompt`` (when given) is asked as one user message.
    """
    if not messages:
        return [{"role": "user", "content": prompt or ""}]
    turns: list[dict[str, str]] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict)
                                and p.get("type") == "text" and isinstance(p.get("text"), str))
        if isinstance(content, str) and content.strip():
            turns.append({"role": role, "content": content})
    if (not turns or turns[-1]["role"] != "user") and prompt is not None:
        return [{"role": "user", "content": prompt}]
    return turns


class Router:
    def __init__(self, pool: ModelPool, selector: Selector, hub: ProviderHub, settings: Settings,
                 health: HealthTracker | None = None, ledger: SpendLedger | None = None, routes: Any = None):
        self.pool = pool
        self.selector = selector
        self.hub = hub
        self.settings = settings
        self.health = health or HealthTracker(settings.cooldown_failures, settings.cooldown_s)
        # Every paid call is reserved in and settled with the ledger (routing/budget.py).
        self.ledger = ledger or SpendLedger(None, settings.daily_budget_usd)
        self.warnings: list[str] = []  # shown to users with each answer (e.g. selector fallback)
        self.routes = routes  # routing.routes.RouteMatcher: routes from examples, asked before the selector

    # ---------------------------------------------------------------- input checks
    def validate_prompt(self, prompt: Any) -> str:
        if not isinstance(prompt, str) or not prompt.strip():
            raise UserError("The prompt is empty: type a question or instruction.")
        if len(prompt) > self.settings.max_prompt_chars:
            raise UserError(
                f"The prompt has {len(prompt):,} characters; the limit is {self.settings.max_prompt_chars:,} "
                "(ROUTER_MAX_PROMPT_CHARS). Shorten it or split it into several prompts."
            )
        return prompt

    # ---------------------------------------------------------------- routing
    def latencies(self, *, first_token: bool = False) -> dict[str, float | None]:
        """Each pool model's median latency over its recent successful calls (None: not yet seen)."""
        return {m: self.health.median_latency_ms(m, first_token=first_token) for m in self.pool.ids}

    def _knobs(self, cost_weight: float, latency_weight: float, stream: bool = False) -> dict[str, Any]:
        knobs: dict[str, Any] = {"cost_weight": cost_weight}
        if latency_weight:
            knobs.update(latency_weight=latency_weight, latencies=self.latencies(first_token=stream))
        return knobs

    def route(self, prompt: str, *, cost_weight: float = 0.0, exclude: Sequence[str] = (),
              latency_weight: float = 0.0) -> Selection:
        """The decision for one prompt as :meth:`decide` makes it (a matching route, else the
        selector), without the checks that need a whole request (cost caps, context windows)."""
        prompt, knobs = self.validate_prompt(prompt), self._knobs(cost_weight, latency_weight)
        return (routed_selection(self.routes, prompt, selector=self.selector, pool=self.pool, exclude=list(exclude),
                                 knobs=knobs, can_call=lambda m: self._can_try(m, explicit=False))
                or self.selector.select(prompt, exclude=list(exclude), **knobs))

    def route_many(self, prompts: Sequence[str], *, cost_weight: float = 0.0,
                   exclude: Sequence[str] = (), latency_weight: float = 0.0) -> list[Selection]:
        """:meth:`route` for each prompt (a batch decides as single requests do: with routes, each
        prompt alone; without, in one selector pass, which the selector makes equal to one at a time)."""
        if self.routes:
            return [self.route(p, cost_weight=cost_weight, exclude=exclude, latency_weight=latency_weight)
                    for p in prompts]
        return self.selector.select_many(list(prompts), exclude=list(exclude),
                                         **self._knobs(cost_weight, latency_weight))

    def _explicit_selection(self, prompt: str, model: str, knobs: dict[str, Any]) -> Selection:
        spec = self.pool.get(model)  # UnknownModelError lists the valid ids
        auto = self.selector.select(prompt, **knobs)
        auto.reasoning = (f"You chose {spec.display_name} ({spec.id}); the router would have picked "
                          f"{auto.selected_model}. " + auto.reasoning)
        auto.selected_model = spec.id
        auto.confidence = auto.scores.get(spec.id, 0.0)
        auto.ranking = [spec.id]
        return auto

    def decide(self, prompt: str, *, cost_weight: float = 0.0, exclude: Sequence[str] = (),
               model: str | None = None, max_tokens: int | None = None, chars_in: int | None = None,
               max_cost_usd: float | None = None, prefer: str | None = None, prefer_why: str = "",
               latency_weight: float = 0.0, stream: bool = False, tokens_in: int | None = None,
               last_turn: str | None = None, messages: Sequence[Any] | None = None,
               extra: dict[str, Any] | None = None) -> Selection:
        """The decision :meth:`stream` acts on, without calling a model (``/v1/route`` shows it).

        ``tokens_in``: the most input tokens the request can be billed for
        (:func:`routing.budget.input_token_bound` of the messages and extra fields that would
        be sent); the ``max_cost_usd`` check prices that bound. Without it, the bound of
        ``prompt`` sent as one message, or, when ``chars_in`` (characters of the whole chat) is
        larger, of ``chars_in`` characters at 4 bytes each (the most UTF-8 takes for one),
        which knows nothing of tools. ``latency_weight`` weighs each model's recent median
        latency (time to the first token when ``stream``) against its score, beside the cost knob.

        ``messages`` (as they would be sent; default ``prompt`` as one message) and ``extra`` are
        counted against each model's context window (:mod:`routing.context.windows`): a model the
        request plus ``max_tokens`` would overflow is left out and the reason says so; a named
        ``model`` it overflows, or no model left, is a UserError naming the sizes.
        """
        prompt = self.validate_prompt(prompt)
        max_tokens = max_tokens or self.settings.max_tokens
        if tokens_in is None:
            tokens_in = input_token_bound(prompt)
            if chars_in is not None:
                tokens_in = max(tokens_in, input_token_bound("") + 4 * chars_in)
        exclude = list(exclude)
        overflow, counted = self._context_filter(messages if messages else prompt, extra, max_tokens, model, exclude)
        exclude += [m for m in overflow if m not in exclude]
        if max_cost_usd is not None:
            exclude = self._cost_filter(tokens_in, max_tokens, max_cost_usd, model, exclude)
        knobs = self._knobs(cost_weight, latency_weight, stream)
        if model:
            selection = self._explicit_selection(prompt, model, knobs)
        else:   # a route that matches decides (routing/routes/); else, or with no routes, the selector
            selection = (routed_selection(self.routes, prompt, selector=self.selector, pool=self.pool, exclude=exclude,
                                          knobs=knobs, can_call=lambda m: self._can_try(m, explicit=False))
                         or self.selector.select(prompt, exclude=exclude, **knobs))
        if overflow:   # say which models the request did not fit, and (a kept conversation) that it moved
            lines = [overflow_reason(m, w, counted, max_tokens) for m, w in overflow.items()]
            if prefer in overflow and not model:
                lines.insert(0, f"The conversation outgrew {prefer} ({prefer_why or 'it was on it'}), so it moves")
            selection = dataclasses.replace(selection, reasoning=f"{selection.reasoning} Left out: {'; '.join(lines)}.",
                                            details={**(selection.details or {}), "context_overflow": {
                                                "tokens_in": counted, "max_tokens": max_tokens, "windows": overflow}})
        if prefer and not model and prefer in self.pool and prefer not in exclude:
            alone = None
            if last_turn and last_turn.strip() and last_turn != prompt:
                alone = self.selector.select(self.validate_prompt(last_turn), exclude=exclude, **knobs)
            selection = self._kept_selection(selection, prefer, prefer_why or "the conversation started there", alone)
        return selection

    def _kept_selection(self, auto: Selection, model: str, why: str, alone: Selection | None = None) -> Selection:
        """``auto`` with ``model`` put first: a conversation stays on the model that started it.

        The reason says what decided: the conversation's model, not this turn's scores; with
        ``alone`` (the last turn routed by itself) it says where that turn alone would go, since
        ``auto`` routed the whole conversation's text and says nothing about the last turn."""
        spec = self.pool.get(model)
        if alone is not None:
            picked = alone.selected_model
            if picked == model:
                then = "; the last turn alone would go there too"
            else:
                then = (f"; the last turn alone would go to {self.pool.get(picked).display_name} ({picked}, "
                        f"{alone.scores.get(picked, 0.0):.0%}), but the conversation stays put")
        else:
            picked = auto.selected_model
            then = ("; routing the whole conversation picks it too" if picked == model else
                    f"; routing the whole conversation would pick {picked}")
        kept = dataclasses.replace(auto, selected_model=model, confidence=auto.scores.get(model, 0.0),
                                   ranking=[model, *[m for m in auto.ranking if m != model]],
                                   reasoning=f"Kept on {spec.display_name} ({model}): {why}{then}. "
                                             f"Routing the whole conversation: {auto.reasoning}",
                                   details={**(auto.details or {}),
                                            "kept_on": model, "last_turn_alone": alone.selected_model if alone else None},
                                   route=auto.route if model == auto.selected_model else None,  # the route chose it too
                                   route_similarity=auto.route_similarity if model == auto.selected_model else None)
        return kept

    def _context_filter(self, messages: Any, extra: dict[str, Any] | None, max_tokens: int, model: str | None,
                        exclude: Sequence[str]) -> tuple[dict[str, int], int | None]:
        """The pool models whose context window the request plus its answer overflows (and the
        estimated input tokens); UserError when that rules out the named ``model`` or every model
        not excluded."""
        overflow, counted = too_long(self.pool, messages, max_tokens, extra)
        if not overflow:
            return {}, counted
        if model and model in overflow:
            raise UserError(overflow_reason(model, overflow[model], counted, max_tokens)
                            + ": shorten the conversation, lower max_tokens, or choose a model with a larger window.")
        left = [m for m in self.pool.ids if m not in overflow and m not in exclude]
        if not left:
            candidates = {m: w for m, w in overflow.items() if m not in exclude} or overflow
            largest = max(candidates, key=candidates.get)
            raise UserError(f"No pool model can take this request: about {counted:,} tokens ({METHOD}) plus "
                            f"{max_tokens:,} for the answer exceed every context window left to choose from "
                            f"(the largest: {largest}, {candidates[largest]:,} tokens). Shorten the conversation "
                            "or lower max_tokens.")
        return overflow, counted

    def too_dear(self, tokens_in: int, max_tokens: int, max_cost_usd: float) -> dict[str, float]:
        """Pool models that could cost more than ``max_cost_usd`` for this request, with their bound.

        ``tokens_in`` is the request's input bound (:func:`routing.budget.input_token_bound`):
        a model is kept only if even the most the request can be billed stays within the cap.
        """
        return {spec.id: cost for spec in self.pool
                if (cost := cost_bound(spec, tokens_in, max_tokens)) > max_cost_usd}

    def _cost_filter(self, tokens_in: int, max_tokens: int, max_cost_usd: float, model: str | None,
                     exclude: list[str]) -> list[str]:
        """``exclude`` plus the models over ``max_cost_usd``; SpendLimitError when nothing is left."""
        dear = self.too_dear(tokens_in, max_tokens, max_cost_usd)
        hint = (f"(up to {tokens_in:,} tokens in, counting every byte sent, and up to {max_tokens:,} out); "
                "raise max_cost_usd, lower max_tokens or shorten the conversation")
        if model and model in dear:
            raise SpendLimitError(f"{model} could cost up to ${dear[model]:.6f} for this request, above "
                                  f"max_cost_usd ${max_cost_usd:.6f} {hint}.", code="max_cost_exceeded")
        allowed = [m for m in self.pool.ids if m not in dear and m not in exclude]
        if not allowed:
            cheapest = min(dear, key=dear.get) if dear else None
            detail = (f"the cheapest, {cheapest}, could cost up to ${dear[cheapest]:.6f}" if cheapest
                      else "the others are excluded")
            raise SpendLimitError(f"No model fits max_cost_usd ${max_cost_usd:.6f}: {detail} {hint}.",
                                  code="max_cost_exceeded")
        return [*exclude, *[m for m in dear if m not in exclude]]

    # ---------------------------------------------------------------- asking
    def ask(self, prompt: str, *, cost_weight: float = 0.0, exclude: Sequence[str] = (),
            model: str | None = None, max_tokens: int | None = None,
            messages: list[dict[str, Any]] | None = None, temperature: float | None = None,
            extra: dict[str, Any] | None = None, max_cost_usd: float | None = None,
            prefer: str | None = None, prefer_why: str = "", latency_weight: float = 0.0,
            last_turn: str | None = None) -> QueryResult:
        """Route and answer; returns the finished result (no streaming). With ``ROUTER_ESCALATE`` a
        routed answer may be followed by the next model up's (:meth:`_escalate`)."""
        last, selection = None, None
        for event in self.stream(prompt, cost_weight=cost_weight, exclude=exclude, model=model,
                                 max_tokens=max_tokens, stream=False, messages=messages,
                                 temperature=temperature, extra=extra, max_cost_usd=max_cost_usd,
                                 prefer=prefer, prefer_why=prefer_why, latency_weight=latency_weight,
                                 last_turn=last_turn):
            selection = event.selection if event.kind == "selection" else selection
            last = event
        assert last is not None and last.result is not None
        if model or selection is None:
            return last.result
        return self._escalate(prompt, selection, last.result, max_tokens=max_tokens, messages=messages,
                              temperature=temperature, extra=extra, max_cost_usd=max_cost_usd)

    def _go_up_when_unsure(self, selection: Selection) -> Selection:
        """A stream is decided before its first token: an unsure decision goes to the next model up
        instead (one call; the *weak* trigger needs a whole answer and applies to answers not streamed)."""
        why = unsure(selection, EscalationPolicy.for_settings(self.settings))
        up = next_model_up(selection, selection.selected_model,
                           exclude=[m for m in self.pool.ids if m not in selection.ranking]) if why else None
        if up is None:
            return selection
        record = {"reason": why, "from": selection.selected_model, "to": up, "asked": False, "streamed": True,
                  "note": "a stream goes to the next model up before its first token instead of asking both"}
        return dataclasses.replace(selection, selected_model=up, confidence=selection.scores.get(up, 0.0),
                                   ranking=[up, *[m for m in selection.ranking if m != up]],
                                   reasoning=f"{selection.reasoning} Escalated before answering ({why}): "
                                             f"{up} instead of {selection.selected_model}.",
                                   details={**(selection.details or {}), "escalation": record})

    def _escalatable(self, selection: Selection) -> bool:
        """Whether the router may second-guess this decision: not a route's (a rule someone wrote),
        not a conversation kept on its model, not one already escalated."""
        details = selection.details or {}
        return (EscalationPolicy.for_settings(self.settings).enabled and selection.route is None
                and not details.get("kept_on") and not details.get("escalation"))

    def _escalate(self, prompt: str, selection: Selection, first: QueryResult, **call: Any) -> QueryResult:
        """``first``, or the next model up's answer when the decision was unsure or ``first`` weak and
        that answer scores higher (routing/escalation/policy.py). The second call goes through the
        ledger like any other: a cap that stops it leaves ``first``, and says so."""
        if not self._escalatable(selection) or first.answered_by == LOCAL_ANSWERER:
            return first
        policy = EscalationPolicy.for_settings(self.settings)
        first_score = answer_score(selection.prompt, first.response)
        why = unsure(selection, policy) or weak(first_score, policy)
        if why is None:
            return first
        up = next_model_up(selection, first.answered_by,
                           exclude=[m for m in self.pool.ids if m not in selection.ranking])
        record: dict[str, Any] = {"reason": why, "from": first.answered_by, "to": up, "asked": False,
                                  "scores": {first.answered_by: round(first_score, 4)}}
        if up is None:
            record["note"] = f"no model is predicted to answer better than {first.answered_by}"
            return dataclasses.replace(first, escalation=record)
        try:
            second = self.ask(prompt, model=up, **call)
        except (UserError, ProviderError) as exc:   # a spending cap, max_cost_usd, the model failing
            record["note"] = f"{up} was not asked or did not answer: {redact(str(exc))}"
            return dataclasses.replace(first, escalation=record,
                                       warnings=[*first.warnings, f"Escalation to {up} stopped: {record['note']}"])
        second_score = answer_score(selection.prompt, second.response)
        kept = second if keep_second(first_score, second_score) else first
        extra_cost = second.cost_usd
        record.update(asked=True, kept=kept.answered_by, extra_cost_usd=extra_cost,
                      scores={first.answered_by: round(first_score, 4), up: round(second_score, 4)},
                      answers={first.answered_by: first.response, up: second.response})
        total = (None if first.cost_usd is None or extra_cost is None else first.cost_usd + extra_cost)
        line = (f"Escalated ({why}): asked {up} too (+{'$%.6f' % extra_cost if extra_cost is not None else 'cost n/a'}); "
                f"kept {kept.answered_by}'s answer (evaluator {first.answered_by} {first_score:.2f}, {up} "
                f"{second_score:.2f}).")
        return dataclasses.replace(kept, selected_model=first.selected_model, reasoning=first.reasoning,
                                   selection_confidence=first.selection_confidence, scores=first.scores,
                                   ranking=first.ranking, selector=first.selector, evidence=first.evidence,
                                   fallbacks=first.fallbacks + kept.fallbacks if kept is second else first.fallbacks,
                                   cost_usd=total, warnings=[*first.warnings, line], escalation=record,
                                   latency_ms=round(first.latency_ms + second.latency_ms, 1))

    def stream(self, prompt: str, *, cost_weight: float = 0.0, exclude: Sequence[str] = (),
               model: str | None = None, max_tokens: int | None = None,
               stream: bool = True, messages: list[dict[str, Any]] | None = None,
               temperature: float | None = None,
               extra: dict[str, Any] | None = None, max_cost_usd: float | None = None,
               prefer: str | None = None, prefer_why: str = "", latency_weight: float = 0.0,
               last_turn: str | None = None) -> Iterator[RouterEvent]:
        """Route, then try the ranked models until one answers; yields events as they happen.

        ``messages`` (a whole chat, e.g. from the OpenAI-compatible gateway) is sent to the
        models as it is, while ``prompt`` (the conversation's text) is what routing reads;
        without it the models get ``prompt`` as one user message. ``temperature`` and ``extra``
        (request fields such as ``tools``; see ``openai_compat.EXTRA_FIELDS``) go to HTTP
        providers only; the local model gets the chat's plain-text turns and the temperature.

        ``max_cost_usd``: models that could cost more than it for this request (the bound of
        :mod:`routing.budget`: every byte sent, ``max_tokens`` out) are not chosen
        (:class:`SpendLimitError` when none is left). ``prefer`` (a pool id; ignored
        when ``model`` is given or it is excluded) is put first in the ranking, ``prefer_why``
        saying why: a conversation stays on the model that started it. Paid calls are reserved
        in :attr:`ledger`; when the daily limit stops them and nothing else answered, the
        :class:`SpendLimitError` is raised (not the tiny local model quietly answering).
        """
        start = time.monotonic()
        max_tokens = max_tokens or self.settings.max_tokens
        # The most the request can be billed for in input tokens: held in the ledger, checked
        # against max_cost_usd. The messages and extra fields are what HTTP providers are sent.
        tokens_in = input_token_bound(messages if messages else prompt if isinstance(prompt, str) else "", extra)
        selection = self.decide(prompt, cost_weight=cost_weight, exclude=exclude, model=model,
                                max_tokens=max_tokens, tokens_in=tokens_in, max_cost_usd=max_cost_usd,
                                prefer=prefer, prefer_why=prefer_why, latency_weight=latency_weight, stream=stream,
                                last_turn=last_turn, messages=messages, extra=extra)
        if stream and not model and self._escalatable(selection):
            selection = self._go_up_when_unsure(selection)
        route_ms = round((time.monotonic() - start) * 1000, 2)
        prompt = selection.prompt
        yield RouterEvent("selection", selection=selection)

        local_messages = _text_messages(messages, prompt)
        messages = list(messages) if messages else [{"role": "user", "content": prompt}]
        options = {"temperature": temperature, "extra": extra}
        fallbacks: list[dict[str, Any]] = []
        candidates = selection.ranking[: 1 + max(0, self.settings.max_fallbacks)]
        # A model the daily limit cannot cover does not use up a fallback: the next-ranked model
        # beyond the list is tried in its place, so a cheaper model that fits still answers.
        beyond = [m for m in selection.ranking if m not in candidates]
        over_budget: list[str] = []
        no_key = 0
        tried = 0
        budget_stop: SpendLimitError | None = None
        key_stop: tuple[Any, ProviderError] | None = None  # (client, its 401/402)
        for index, model_id in enumerate(candidates):
            spec = self.pool.get(model_id)
            reason = self.hub.missing_key(spec)
            if reason:
                no_key += 1
                fallbacks.append({"model": model_id, "error": reason, "skipped": True})
                continue
            if key_stop is not None and self.hub.for_spec(spec) is key_stop[0]:
                fallbacks.append({"model": model_id, "error": f"not tried: the same key was refused "
                                  f"({key_stop[1].status})", "skipped": True})
                continue
            rest = self.health.cooling_down(model_id)
            if rest > 0 and not model:
                fallbacks.append({"model": model_id, "error": f"cooling down for {rest:.0f} s after repeated failures",
                                  "skipped": True})
                continue
            remaining = self.settings.deadline_s - (time.monotonic() - start)
            if remaining <= 0 or (tried and remaining < MIN_MODEL_BUDGET_S):
                fallbacks.append({"model": model_id, "error": f"deadline of {self.settings.deadline_s:.0f} s reached "
                                  "(ROUTER_DEADLINE)", "skipped": True})
                break
            try:
                hold = self._reserve(spec, tokens_in, max_tokens)
            except SpendLimitError as exc:
                budget_stop = exc
                over_budget.append(model_id)
                fallbacks.append({"model": model_id, "skipped": True,
                                  "error": "the daily spending limit is reached (ROUTER_DAILY_BUDGET_USD)"
                                  if exc.code == "daily_budget_exhausted" else str(exc)})
                if beyond:
                    candidates.append(beyond.pop(0))
                continue
            left = 1 + sum(1 for m in candidates[index + 1:] if self._can_try(m, explicit=bool(model)))
            deadline = time.monotonic() + model_budget(remaining, left)
            tried += 1
            try:
                yield RouterEvent("attempt", model=model_id)
                result = yield from self._call(spec, messages, max_tokens, stream, deadline, **options)
            except ProviderError as exc:
                self._settle(hold, None, failed=True)
                fallbacks.append({"model": model_id, "error": exc.message, "status": exc.status, "skipped": False})
                if exc.status in (401, 402) and isinstance(self.hub.for_spec(spec), OpenAICompatibleClient):
                    key_stop = (self.hub.for_spec(spec), exc)  # the key's fault, not the model's
                else:
                    self.health.record_failure(model_id, exc.message)
                yield RouterEvent("failed", model=model_id, error=exc.message, status=exc.status)
                continue
            except BaseException:  # the caller went away mid-answer (GeneratorExit): tokens were spent
                self._settle(hold, None)
                raise
            self._settle(hold, result.cost_usd)
            self.health.record_success(model_id, result.latency_ms, _first_token_ms(result))
            final = self._result(selection, result, model_id, fallbacks, start)
            final.route_ms = route_ms
            if over_budget:
                final.notice = (f"What is left of today's spending limit (ROUTER_DAILY_BUDGET_USD) could not cover "
                                f"{', '.join(over_budget)} for this request: answered by {model_id}, the "
                                "best-ranked model that fits.")
            yield RouterEvent("done", result=final, chat=result)
            return

        if key_stop is not None:
            client, exc = key_stop
            others = [f["model"] for f in fallbacks if f.get("error", "").startswith("not tried: the same key")]
            skipped = f" {', '.join(others)} use the same key and were not tried." if others else ""
            raise ProviderKeyError(f"{exc.message}.{skipped} No answer was made up locally instead.",
                                   status=exc.status or 401, provider_host=getattr(client, "host", ""))
        if budget_stop is not None:
            raise budget_stop
        # Nothing remote answered: the local model, clearly labelled.
        wanted = selection.selected_model
        why = ("no OpenRouter key" if no_key == len(candidates)
               else "every routed model failed (see fallbacks)")
        if self.hub.local is None:
            details = "; ".join(f"{f['model']}: {f['error']}" for f in fallbacks)
            raise UserError(f"No model could answer ({details}). Set OPENROUTER_API_KEY, or turn the local "
                            "model on with ROUTER_LOCAL_MODEL=1.")
        notice = f"{why}: answered locally by {LOCAL_ANSWERER} instead of {wanted}"
        yield RouterEvent("attempt", model=LOCAL_ANSWERER)
        try:
            result = yield from self._call_provider(self.hub.local, LOCAL_ANSWERER, local_messages,
                                                    min(max_tokens, self.settings.local_max_new_tokens), stream,
                                                    temperature=temperature)
        except ProviderError as exc:
            fallbacks.append({"model": LOCAL_ANSWERER, "error": exc.message, "skipped": False})
            raise UserError(f"No model could answer. Last error (local model): {exc.message}") from exc
        final = self._result(selection, result, LOCAL_ANSWERER, fallbacks, start)
        final.notice, final.route_ms = notice, route_ms
        yield RouterEvent("done", result=final, chat=result)

    def _reserve(self, spec: ModelSpec, tokens_in: int, max_tokens: int):
        """The ledger's hold for a paid call (None for a free model); SpendLimitError past the limit.

        The hold is :func:`routing.budget.cost_bound`: ``tokens_in`` (the request's
        :func:`~routing.budget.input_token_bound`) at the input price, ``max_tokens`` at the
        output price: no more can be billed, so no limit can be passed.
        """
        if not is_paid(spec):
            return None
        return self.ledger.reserve(spec.id, cost_bound(spec, tokens_in, max_tokens))

    def _settle(self, hold, cost_usd: float | None, *, failed: bool = False) -> None:
        if hold is not None:
            self.ledger.settle(hold, cost_usd, failed=failed)

    def _can_try(self, model_id: str, *, explicit: bool) -> bool:
        """Whether the loop in :meth:`stream` would ask this model now (key set, not resting)."""
        if self.hub.missing_key(self.pool.get(model_id)):
            return False
        return explicit or self.health.cooling_down(model_id) <= 0

    def _call(self, spec: ModelSpec, messages, max_tokens: int, stream: bool, deadline: float | None = None,
              *, temperature: float | None = None, extra: dict[str, Any] | None = None):
        provider = self.hub.for_spec(spec)
        if not isinstance(provider, OpenAICompatibleClient):
            messages, extra = _text_messages(messages, None), None
        return (yield from self._call_provider(provider, spec.model_name, messages, max_tokens, stream, deadline,
                                               temperature=temperature, extra=extra))

    @staticmethod
    def _call_provider(provider, model_name: str, messages, max_tokens: int, stream: bool,
                       deadline: float | None = None, *, temperature: float | None = None,
                       extra: dict[str, Any] | None = None):
        """Generator: yields delta events, returns the ChatResult.

        ``deadline`` (``time.monotonic()``) and ``extra`` reach HTTP clients only; the local
        model and other in-process providers take neither.
        """
        is_http = isinstance(provider, OpenAICompatibleClient)
        limits: dict[str, Any] = {"deadline": deadline} if deadline is not None and is_http else {}
        if extra and is_http:
            limits["extra"] = extra
        if temperature is not None:
            limits["temperature"] = temperature
        if not stream:
            result: ChatResult = provider.chat(model_name, messages, max_tokens=max_tokens, **limits)
            yield RouterEvent("delta", text=result.text)
            return result
        chunk: StreamChunk
        for chunk in provider.stream_chat(model_name, messages, max_tokens=max_tokens, **limits):
            if chunk.done:
                assert chunk.result is not None
                return chunk.result
            if chunk.delta or chunk.tool_calls:
                yield RouterEvent("delta", text=chunk.delta, tool_calls=chunk.tool_calls)
        raise ProviderError("the stream ended without a final message", retryable=True)

    def _result(self, selection: Selection, result: ChatResult, answered_by: str,
                fallbacks: list[dict[str, Any]], start: float) -> QueryResult:
        cut = result.finish_reason == "length"
        return QueryResult(
            prompt=selection.prompt, selected_model=selection.selected_model, response=redact(result.text),
            selection_confidence=round(selection.confidence, 4), reasoning=selection.reasoning,
            answered_by=answered_by, fallbacks=fallbacks, usage=dict(result.usage or {}),
            cost_usd=result.cost_usd, latency_ms=round((time.monotonic() - start) * 1000, 1),
            scores={k: round(v, 4) for k, v in selection.scores.items()}, selector=selection.selector,
            ranking=selection.ranking, warnings=list(self.warnings) + ([TRUNCATED_WARNING] if cut else []),
            first_token_ms=_first_token_ms(result), evidence=evidence_of(selection),
            route=selection.route, route_similarity=selection.route_similarity,
            finish_reason=result.finish_reason, truncated=cut,
            escalation=(selection.details or {}).get("escalation"),   # a stream that went up before answering
            upstream_ms=round(result.latency_ms, 1) if result.latency_ms else None,
        )

    def ask_model(self, model_id: str, prompt: str, *, max_tokens: int | None = None,
                  on_delta: Callable[[str], None] | None = None) -> ChatResult:
        """One model, no selection and no fallback (compare-all). Raises ProviderError/UserError.

        With ``on_delta`` the answer is streamed and each piece of text is passed to it as it
        arrives (the Compare tab fills its columns so); the result is the same."""
        prompt = self.validate_prompt(prompt)
        spec = self.pool.get(model_id)
        reason = self.hub.missing_key(spec)
        if reason:
            raise ProviderError(reason, retryable=False, model=model_id)
        provider = self.hub.for_spec(spec)
        limits = ({"deadline": time.monotonic() + self.settings.deadline_s}
                  if isinstance(provider, OpenAICompatibleClient) else {})
        max_tokens = max_tokens or self.settings.max_tokens
        try:
            hold = self._reserve(spec, input_token_bound(prompt), max_tokens)  # what is sent below
        except SpendLimitError as exc:  # per model, like other failures: compare-all and the judge show it
            raise ProviderError(str(exc), status=402, retryable=False, model=model_id) from None
        messages = [{"role": "user", "content": prompt}]
        try:
            if on_delta is None:
                result = provider.chat(spec.model_name, messages, max_tokens=max_tokens, **limits)
            else:
                calls = self._call_provider(provider, spec.model_name, messages, max_tokens, True,
                                            limits.get("deadline"))
                while True:
                    try:
                        event = next(calls)
                    except StopIteration as done:
                        result = done.value
                        break
                    if event.text:
                        on_delta(event.text)
        except ProviderError as exc:
            self._settle(hold, None, failed=True)
            self.health.record_failure(model_id, exc.message)
            raise
        except BaseException:
            self._settle(hold, None)
            raise
        self._settle(hold, result.cost_usd)
        self.health.record_success(model_id, result.latency_ms)
        return dataclasses.replace(result, text=redact(result.text))

    # ---------------------------------------------------------------- health
    def health_report(self, probe: bool = True) -> list[dict[str, Any]]:
        """Which models are reachable now, with last error and latency. Spends no tokens."""
        probes: dict[tuple[str, str | None], dict[str, Any]] = {}
        listed: set[str] | None = None
        rows = []
        for spec in self.pool.models:
            row: dict[str, Any] = {"model": spec.id, "name": spec.display_name, "provider": spec.provider,
                                   "price_per_m_in": spec.input_price_per_m, "price_per_m_out": spec.output_price_per_m,
                                   "price_source": spec.price_source}
            row.update(self.health.snapshot(spec.id))
            reason = self.hub.missing_key(spec)
            if reason:
                row.update(reachable=False, probe_error=reason, probe_latency_ms=None)
            elif spec.provider == "local":
                status = self.hub.local.status() if self.hub.local else {"state": "off"}
                row.update(reachable=status.get("state") == "ready", probe_error=status.get("error"),
                           probe_latency_ms=None)
            elif probe:
                client = self.hub.for_spec(spec)
                key = (client.base_url, spec.provider)
                if key not in probes:
                    probes[key] = client.probe()
                    if spec.provider == "openrouter" and probes[key].get("ok"):
                        try:
                            listed = {m.get("id") for m in client.list_models()}
                        except ProviderError:
                            listed = None
                p = probes[key]
                ok = bool(p.get("ok"))
                err = p.get("error")
                if ok and spec.provider == "openrouter" and listed is not None and spec.model_name not in listed:
                    ok, err = False, f"{spec.model_name} is not in the provider's model list"
                row.update(reachable=ok, probe_error=err, probe_latency_ms=p.get("latency_ms"))
            rows.append(row)
        return rows


def _first_token_ms(result: ChatResult) -> float | None:
    """Time to the first token of a streamed answer, where the client measured it."""
    value = ((result.raw or {}).get("_client") or {}).get("first_token_ms")
    return float(value) if isinstance(value, (int, float)) else None
