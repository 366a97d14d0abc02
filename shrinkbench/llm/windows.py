"""The token windows a run reads, as its protocol preset says (`shrinkbench.llm.protocols`).

- Evaluation: the test split tokenized whole (with the tokenizer's special tokens where the
  preset says so), then the first `eval_windows` non-overlapping windows of `seq_len` tokens
  (0: every whole window; `shrinkbench.llm.text.eval_windows`).
- The preset's second text (SparseGPT's C4 validation perplexity): the first `documents` test
  documents of its text joined with `join`, tokenized whole, cut to `windows` x `seq_len`
  tokens, then every whole window (`valenc[:, :256 * seqlen]`, `nsamples = numel // seqlen`).
- Calibration: `draw_calibration` of the preset's draw over the calibration text's train split
  (whole for `windows`, document by document otherwise), each window `calib_len` (else
  `seq_len`) tokens long; the positions drawn go into the record.
"""
from __future__ import annotations

import hashlib

import torch

from shrinkbench.llm.protocols import draw_calibration
from shrinkbench.llm.text import TextSplits, eval_windows, token_ids


def _key(text: TextSplits, tokenizer_key: str, special: bool, part: str) -> str:
    tag = "/special" if special else ""  # without special tokens: the cache keys the offline protocol always had
    return hashlib.sha256(f"{text.sha256}/{tokenizer_key}{tag}".encode()).hexdigest()[:24] + f"-{part}"


def split_ids(text: TextSplits, tokenizer, tokenizer_key: str, special: bool, part: str) -> torch.Tensor:
    """The token ids of `text`'s `train` or `test` split, tokenized whole (cached)."""
    return token_ids(getattr(text, part), tokenizer, _key(text, tokenizer_key, special, part), special)


def evaluation_windows(cfg, text: TextSplits, tokenizer, tokenizer_key: str) -> torch.Tensor:
    """(windows, seq_len) of the run's evaluation text (see the module docstring)."""
    ids = split_ids(text, tokenizer, tokenizer_key, cfg.preset.special_tokens, "test")
    return eval_windows(ids, cfg.seq_len, cfg.eval_windows, cfg.dataset)


def second_windows(cfg, text: TextSplits, tokenizer) -> torch.Tensor:
    """(windows, seq_len) of the preset's second perplexity text (SparseGPT's C4 validation)."""
    second = cfg.preset.second
    joined = second.join.join(text.test_docs[: second.documents])
    ids = torch.tensor(tokenizer(joined, add_special_tokens=cfg.preset.special_tokens)["input_ids"],
                       dtype=torch.int64)[: second.windows * cfg.seq_len]
    return eval_windows(ids, cfg.seq_len, 0, f"{second.text} (first {second.documents} test documents)")


def calibration_length(cfg) -> int:
    return cfg.preset.calib_len or cfg.seq_len


def calibration_set(cfg, text: TextSplits, tokenizer, tokenizer_key: str, count: int, generator,
                    seed: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(count, length) calibration windows and their (document, offset) positions."""
    draw, length = cfg.preset.draw, calibration_length(cfg)
    special = cfg.preset.special_tokens
    if draw == "windows":
        ids = split_ids(text, tokenizer, tokenizer_key, special, "train")
        positions = draw_calibration(draw, seed, count, length, ids=ids, generator=generator, name=cfg.calib_text)
        return torch.stack([ids[o: o + length] for _, o in positions]), positions
    docs = text.train_docs
    cache: dict[int, list[int]] = {}

    def tokenize(i: int) -> int:
        if i not in cache:
            cache[i] = tokenizer(docs[i], add_special_tokens=special)["input_ids"]
        return len(cache[i])

    positions = draw_calibration(draw, seed, count, length, documents=docs, tokenize=tokenize, name=cfg.calib_text)
    windows = torch.tensor([cache[i][o: o + length] for i, o in positions], dtype=torch.int64)
    return windows, positions
