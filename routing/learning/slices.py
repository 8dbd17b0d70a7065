"""The held-out slice of the outcome log: which prompts automatic retraining never trains on.

A prompt belongs to the test slice when its hash (of the whitespace-collapsed, lower-cased text)
falls in the first share of the hash range (``ROUTER_HOLDOUT_SHARE``, default :data:`TEST_SHARE`).
Decided by the text alone, the slice grows with the log and a prompt never changes sides; the
shadow sampler asks *every* model for the prompts in it (within the shadow budget), so the
release gate can compare any two selectors there on complete outcomes.
"""

from __future__ import annotations

import hashlib
import re

TEST_SHARE = 0.15

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace-collapsed, lower-cased text: the key for deduplication."""
    return _SPACES.sub(" ", text).strip().lower()


def prompt_hash(text: str) -> str:
    """Stable short hash of a prompt (after :func:`normalise`)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


def hash_in_share(digest: str, share: float = TEST_SHARE) -> bool:
    return int(digest[:8], 16) / 0xFFFFFFFF < share


def in_test_slice(prompt: str, share: float = TEST_SHARE) -> bool:
    return hash_in_share(prompt_hash(prompt), share)
