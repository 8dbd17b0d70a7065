"""The prompt categories the rule-based selector recognises (one source of truth).

The pool file maps categories to models (``"categories": [...]`` on each model), the
corpus in ``assets/`` is labelled with them, and selection testing reports by them.
"""

CATEGORIES: dict[str, str] = {
    "coding": "writing, debugging or explaining code",
    "math": "calculation, algebra, calculus, probability, proofs",
    "reasoning": "logic puzzles, planning, step-by-step deduction, trade-offs",
    "creative": "stories, poems, lyrics, slogans, dialogue",
    "factual": "questions about facts: history, science, geography, definitions",
    "multilingual": "prompts in other languages and translation",
    "summarization": "condensing a given text",
    "extraction": "pulling entities, fields or tables out of a given text",
    "visual": "describing scenes, images, designs, alt text",
    "chat": "greetings, small talk, advice, opinions",
}

DEFAULT_CATEGORY = "chat"
