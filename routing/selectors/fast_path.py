"""The selector's inference fast path: int8 weights for the encoder's linear layers.

torch's dynamic quantization (``quantize_dynamic``, int8 weights per output channel, activations
quantized on the fly) made one routing decision of the MiniLM selector 2.2x faster on a
23-token prompt and 1.9x on a 253-token one on one CPU thread here, with no file to ship: the
float16 weights in ``selector_model/`` are quantized as they load
(``benchmarks/routing_latency.py`` measures it against fp32 and a DistilBERT).

It is used only where its picks were checked: ``fast_path.json`` in the model folder records the
share of check prompts on which the int8 model picks the same model as fp32
(``python -m training.pipeline.fast_path``; the train step writes it for every candidate). Below
:data:`MIN_AGREEMENT`, or with ``ROUTER_FAST_PATH=off``, the selector runs in fp32.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

FAST_PATH_FILE = "fast_path.json"
MIN_AGREEMENT = 0.99
PRECISION = "int8-dynamic"


def int8(model: Any) -> Any:
    """``model`` with the encoder's ``nn.Linear`` layers as dynamically quantized int8 (CPU),
    per output channel; the classification head stays fp32. (Per-tensor scales agreed with fp32
    on 98.7% of the built-in corpus, per-channel on 99.0%.)"""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and "classifier" not in name}
    with warnings.catch_warnings():   # the eager quantization API is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, spec).eval()


def read(model_dir: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(model_dir) / FAST_PATH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def enabled(model_dir: str | Path, setting: str = "auto") -> bool:
    """Whether the folder's int8 path passed its check (and the owner did not switch it off)."""
    if (setting or "auto").lower() == "off":
        return False
    info = read(model_dir) or {}
    return info.get("precision") == PRECISION and float(info.get("agreement") or 0.0) >= MIN_AGREEMENT


#: Cost weights at which picks are compared when the check knows the pool's prices.
CHECK_COST_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: With prices, an int8 pick counts as the same decision when its fp32 utility is within this of
#: the fp32 pick's (a near-tie between two cheap models, which int8 rounding may flip either way).
TIE_TOLERANCE = 0.02


def agreement(fp32: Callable[[Sequence[str]], np.ndarray], fast: Callable[[Sequence[str]], np.ndarray],
              texts: Sequence[str], prices: Sequence[float] | None = None) -> dict[str, Any]:
    """The share of ``texts`` on which both scorers pick the same model (argmax).

    With the pool's normalised ``prices`` the picks are compared at every cost weight of
    :data:`CHECK_COST_WEIGHTS`, and the lowest share counts: a selector whose top pick hardly
    changes at cost weight 0 (the evidence prior: DeepSeek R1 nearly everywhere) is checked where
    int8 could move a pick. There a pick agrees when it is fp32's, or one whose fp32 utility
    (score - weight x price) is within :data:`TIE_TOLERANCE` of it; the exact shares and the mean
    utility lost (``mean_regret``) are recorded beside it."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        return {"precision": PRECISION, "agreement": None, "n": 0}
    a, b = np.asarray(fp32(texts)), np.asarray(fast(texts))
    same = a.argmax(axis=1) == b.argmax(axis=1)
    info = {"precision": PRECISION, "agreement": round(float(same.mean()), 4), "n": int(len(texts)),
            "max_abs_score_diff": round(float(np.abs(a - b).max()), 4), "min_agreement": MIN_AGREEMENT}
    if prices is not None:
        norm = np.asarray(prices, float)
        norm = norm / norm.max() if norm.max() > 0 else norm
        rows = np.arange(len(texts))
        exact, tolerant, regret = {}, {}, {}
        for w in CHECK_COST_WEIGHTS:
            ua, ub = a - w * norm, b - w * norm
            pa, pb = ua.argmax(axis=1), ub.argmax(axis=1)
            lost = ua[rows, pa] - ua[rows, pb]
            exact[str(w)] = round(float((pa == pb).mean()), 4)
            tolerant[str(w)] = round(float((lost <= TIE_TOLERANCE + 1e-12).mean()), 4)
            regret[str(w)] = round(float(lost.mean()), 5)
        info.update(by_cost_weight=tolerant, exact_by_cost_weight=exact, mean_regret=regret,
                    tie_tolerance=TIE_TOLERANCE, agreement=min(tolerant.values()))
    return info
