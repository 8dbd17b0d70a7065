"""A tiny random BERT encoder for fast tests and smoke runs (seconds on a CPU).

It reuses the bundled MiniLM tokenizer (so texts tokenize as in production) with a 2-layer,
32-wide random model; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from training.embeddings import default_base_model


def make_tiny_encoder(path: str | Path, seed: int = 0, num_labels: int | None = None,
                      labels: list[str] | None = None) -> Path:
    """Write a tiny random BERT (and the MiniLM tokenizer) to ``path``. With ``labels`` it is a
    sequence classifier over those labels (softmax head), else a plain encoder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(seed)
    path = Path(path)
    tok = AutoTokenizer.from_pretrained(default_base_model())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    if labels:
        cfg.num_labels = len(labels)
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {m: i for i, m in enumerate(labels)}
        cfg.problem_type = "single_label_classification"
        model = BertForSequenceClassification(cfg)
    else:
        model = BertModel(cfg)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path
