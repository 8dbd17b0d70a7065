"""The public data the evidence prior learns from, read from ``../shared/data`` (never copied).

* Topic labels: prompts whose source says what they are (Arena-Hard v2's category, LLMRouter's
  task, Vicuna's category, HumanEval, GSM8K), mapped to the rating topics coding, math,
  creative_writing and full (anything else).
* Outcome sets: the five public outcome tables, each split into train and test by prompt
  (RouterBench and LLMRouter ship their splits; the others are split by a hash of the prompt,
  so the split never depends on the order of the file).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from routing.errors import UserError
from training.benchmark.outcomes import OutcomeTable, read_many, read_outcomes

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """``ROUTER_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    return Path(os.environ.get("ROUTER_SHARED_DATA") or REPO.parent / "shared" / "data")


def _jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


LLMROUTER_TOPICS = {"math": "math", "gsm8k": "math", "agentverse-mgsm": "math", "mbpp": "coding",
                    "human_eval": "coding"}
VICUNA_TOPICS = {"coding": "coding", "math": "math", "writing": "creative_writing", "roleplay": "creative_writing"}


def topic_examples(data: Path | None = None, per_source_cap: int = 600, seed: int = 0
                   ) -> tuple[list[str], list[str], list[str]]:
    """(texts, topic labels, source names) from the labelled public prompts; each LLMRouter task
    and GSM8K capped at ``per_source_cap`` so no one source decides a class."""
    import random

    data = data or shared_data()
    prompts = data / "prompts"
    if not prompts.is_dir():
        raise UserError(f"No labelled prompts at {prompts}: the prior's topic classifier learns from "
                        "../shared/data/prompts (see its SOURCES.md).")
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    sources: list[str] = []

    def add(rows: list[tuple[str, str]], source: str) -> None:
        rng.shuffle(rows)
        for text, label in rows[:per_source_cap]:
            texts.append(text)
            labels.append(label)
            sources.append(source)

    for row in _jsonl(prompts / "arena_hard_v2_questions.jsonl"):
        add([(row["prompt"], row.get("subcategory") or row["category"])], "arena_hard_v2")
    by_task: dict[str, list[tuple[str, str]]] = {}
    for row in _jsonl(prompts / "llmrouter_queries_train.jsonl"):
        by_task.setdefault(row["task_name"], []).append((row["query"], LLMROUTER_TOPICS.get(row["task_name"], "full")))
    for task, rows in sorted(by_task.items()):
        add(rows, f"llmrouter:{task}")
    for row in _jsonl(prompts / "vicuna_bench_questions.jsonl"):
        add([(row["turns"][0], VICUNA_TOPICS.get(row["category"], "full"))], "vicuna")
    add([(row["prompt"], "coding") for row in _jsonl(prompts / "humaneval.jsonl.gz")], "humaneval")
    add([(row["question"], "math") for row in _jsonl(prompts / "gsm8k_train.jsonl")], "gsm8k")
    return texts, labels, sources


@dataclass
class OutcomeSet:
    name: str
    train: OutcomeTable
    test: OutcomeTable
    prices: str | None          # a price file for sets without real costs (None: RouterBench has them)


def _hash_split(table: OutcomeTable, test_share: float = 0.5) -> tuple[OutcomeTable, OutcomeTable]:
    """Train/test by a hash of each prompt (stable, order-free)."""
    test = [int(hashlib.sha256(p.encode("utf-8", "replace")).hexdigest()[:8], 16) / 0xFFFFFFFF < test_share
            for p in table.prompts]
    return (table.rows([i for i, t in enumerate(test) if not t]),
            table.rows([i for i, t in enumerate(test) if t]))


SET_NAMES = ("routerbench", "llmrouter", "arena_bench", "math_l5", "crux")


def outcome_sets(data: Path | None = None, names: tuple[str, ...] = SET_NAMES) -> list[OutcomeSet]:
    """The five public outcome sets with their train/test splits."""
    data = data or shared_data()
    out = data / "outcomes"
    if not out.is_dir():
        raise UserError(f"No outcome tables at {out} (see ../shared/data/SOURCES.md).")
    ratings_prices = str(data / "ratings" / "lmarena_model_prices.csv")
    sets = []
    for name in names:
        if name == "routerbench":
            rb = out / "routerbench"
            slices = ("arc_challenge", "mbpp", "winograde")
            sets.append(OutcomeSet(name, read_many([rb / f"{s}_train.csv" for s in slices]),
                                   read_many([rb / f"{s}_test.csv" for s in slices]), None))
        elif name == "llmrouter":
            sets.append(OutcomeSet(name, read_outcomes(out / "llmrouter" / "train.json"),
                                   read_outcomes(out / "llmrouter" / "test.json"), str(out / "llmrouter" / "models.json")))
        elif name == "arena_bench":
            tr, te = _hash_split(read_outcomes(out / "arena_bench" / "arena_bench_v1.csv"))
            sets.append(OutcomeSet(name, tr, te, str(REPO / "benchmarks" / "ratings_maps" / "arena_bench_prices.json")))
        elif name in ("math_l5", "crux"):
            tr, te = _hash_split(read_outcomes(out / "zeroeval" / f"{name}.csv.gz"))
            sets.append(OutcomeSet(name, tr, te, ratings_prices))
        else:
            raise UserError(f"Unknown outcome set {name!r}: use {', '.join(SET_NAMES)}.")
    return sets
