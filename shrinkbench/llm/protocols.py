"""Protocol presets: the field's named, versioned sets of every setting that decides an LLM
pruning result's numbers (docs/llm.md, "Protocols", has them as a table).

A run names one (`LLMRunConfig.protocol`, default `offline`); the preset fills what the run
leaves out (text, context, evaluation windows, calibration source, count, length and draw,
how text is tokenized, a second evaluation text) and the record carries the preset with what
the run changed (`deviations`). Runs of different presets are not compared unless asked
(`shrinkbench compare --across-protocols`).

- `offline` (v1): today's protocol, nothing downloaded: KJV test verses in 256-token windows
  (the first 16), 16 calibration windows of 256 tokens whose starts the run seed draws
  uniformly over the tokenized train verses (torch generator), no special tokens.
- `wanda` (v1), Sun et al. 2023, `lib/data.py` of locuslab/wanda: WikiText-2 raw test joined
  with "\\n\\n", tokenized once with the tokenizer's special tokens (LLaMA's BOS), every
  non-overlapping window of the model's context (`max_position_embeddings`; the code sets
  `model.seqlen` to it); 128 calibration windows of the context from C4's
  `en/c4-train.00000-of-01024.json.gz`: `random.seed(seed)`, then per window a random document
  `randint(0, n_docs - 1)` redrawn until its tokens are MORE than the context (`>`), and a
  random offset `randint(0, n_tokens - context - 1)`. Second text: C4 validation, the first
  1,100 documents of `en/c4-validation.00000-of-00008.json.gz` joined with " ", its first
  256 x context tokens.
- `sparsegpt` (v1), Frantar & Alistarh 2023, `datautils.py` of IST-DASLab/sparsegpt: the same
  texts, windows and draw as `wanda` (Wanda's code is adapted from it). Its first version
  (54c8443, 2023-03) kept a document of AT LEAST the context (`>=`), and one of exactly the
  context then made `randint(0, -1)` fail; c3bbf61 (2023-07, "fix edge case") made it `>`, so
  every draw the first version completed is the one drawn here.
- `llm-pruner` (v1), Ma et al. 2023, `LLMPruner/datasets/ppl_dataset.py` and
  `example_samples.py` of horseee/LLM-Pruner: WikiText-2 raw test joined with "\\n\\n", every
  non-overlapping window of 128 tokens (`--max_seq_len 128`); calibration 10 windows of 64
  tokens (`get_examples(..., 10, seq_len=64)`): a random document with AT LEAST 64 tokens not
  drawn before (`i not in history`), offset `randint(0, n_tokens - 64)`. Its published source is
  BookCorpus, which this toolkit does not read; the preset draws from C4's train shard, the
  other source `get_examples` offers (`get_c4`, the same rule), and says so.

`tasks`, `task_metrics` and `dtype` are part of each preset's data (what the paper evaluates
zero-shot, with which metric per task, and in what precision) and, like the rest, fill a run's
`tasks` and `dtype` where it leaves them out (`LLMRunConfig`: None resolves to them). A run that
sets others names them among its deviations (`LLMRunConfig.protocol_deviations`), so its label
says e.g. `wanda@v1 modified: dtype=float32, tasks=none`.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.registry import Registry

MODEL_CONTEXT = None
"""`context` of a preset that uses the model's own (`max_position_embeddings`)."""
ALL_WINDOWS = None
"""`eval_windows` of a preset that measures every whole window of the split."""
DRAWS = ("windows", "documents-longer", "documents-at-least-distinct")
"""How calibration windows are drawn (`draw_calibration`)."""

WANDA_TASKS = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
LLM_PRUNER_TASKS = ("boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")


@dataclass(frozen=True)
class SecondText:
    """A second perplexity text: `text`'s test documents, the first `documents` joined with
    `join`, tokenized whole, its first `windows` x context tokens (SparseGPT's C4 validation)."""

    text: str
    documents: int
    join: str
    windows: int
    metric: str


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    source: str
    text: str
    join: str
    context: int | None
    eval_windows: int | None
    calib_text: str
    calib_sequences: int
    calib_len: int | None
    draw: str
    special_tokens: bool
    second: SecondText | None = None
    tasks: tuple[str, ...] = ()
    task_metrics: dict = field(default_factory=dict)
    dtype: str = "float32"
    notes: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d


OFFLINE = Protocol(
    "offline", 1, "shrinkbench's own offline protocol", text="kjv", join="verses joined with \\n",
    context=256, eval_windows=16, calib_text="kjv", calib_sequences=16, calib_len=None, draw="windows",
    special_tokens=False)
WANDA = Protocol(
    "wanda", 1, "Sun et al. 2023, locuslab/wanda lib/data.py", text="wikitext2", join="test documents joined with \\n\\n",
    context=MODEL_CONTEXT, eval_windows=ALL_WINDOWS, calib_text="c4", calib_sequences=128, calib_len=None,
    draw="documents-longer", special_tokens=True,
    second=SecondText("c4", 1100, " ", 256, "perplexity_c4"), tasks=WANDA_TASKS,
    task_metrics={t: "acc" for t in WANDA_TASKS}, dtype="float16",
    notes="LLaMA-1/2: context 2048 / 4096; task accuracy `acc` as the paper's dense LLaMA-7B row reads")
SPARSEGPT = Protocol(
    "sparsegpt", 1, "Frantar & Alistarh 2023, IST-DASLab/sparsegpt datautils.py", text="wikitext2",
    join="test documents joined with \\n\\n", context=MODEL_CONTEXT, eval_windows=ALL_WINDOWS, calib_text="c4",
    calib_sequences=128, calib_len=None, draw="documents-longer", special_tokens=True,
    second=SecondText("c4", 1100, " ", 256, "perplexity_c4"),
    tasks=("lambada_openai", "piqa", "arc_easy", "arc_challenge", "storycloze_2016"),
    task_metrics={"lambada_openai": "acc", "piqa": "acc", "arc_easy": "acc", "arc_challenge": "acc",
                  "storycloze_2016": "acc"}, dtype="float16",
    notes="zero-shot tasks of the paper's OPT/BLOOM tables")
LLM_PRUNER = Protocol(
    "llm-pruner", 1, "Ma et al. 2023, horseee/LLM-Pruner ppl_dataset.py, example_samples.py", text="wikitext2",
    join="test documents joined with \\n\\n", context=128, eval_windows=ALL_WINDOWS, calib_text="c4",
    calib_sequences=10, calib_len=64, draw="documents-at-least-distinct", special_tokens=True,
    tasks=LLM_PRUNER_TASKS,
    task_metrics={"boolq": "acc", "piqa": "acc", "winogrande": "acc", "hellaswag": "acc_norm",
                  "arc_easy": "acc_norm", "arc_challenge": "acc_norm", "openbookqa": "acc_norm"},
    dtype="float16",
    notes="published calibration text is BookCorpus (not read here): C4 train, get_examples' other source")

PROTOCOLS: Registry[Protocol] = Registry("protocol")
for _p in (OFFLINE, WANDA, SPARSEGPT, LLM_PRUNER):
    PROTOCOLS.register(_p.name, _p)
DEFAULT_PROTOCOL = "offline"


def get_protocol(name: str) -> Protocol:
    """The preset called `name`; a ConfigError naming the presets otherwise."""
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {name!r}; the presets are {', '.join(PROTOCOLS.names())}")
    return PROTOCOLS.get(name)


# ------------------------------------------------------------------------ calibration draws
def draw_calibration(protocol_draw: str, seed: int, count: int, length: int, *, ids=None, documents=None,
                     tokenize=None, generator=None, name: str = "text") -> list[tuple[int, int]]:
    """The calibration windows of a run as (document index, token offset) pairs (document -1:
    the whole tokenized train split `ids`).

    - `windows`: `count` starts drawn uniformly from [0, len(ids) - length] by the torch
      `generator` (the offline protocol).
    - `documents-longer` (Wanda, SparseGPT): `random.seed(seed)`; per window
      `i = randint(0, n_docs - 1)` until `len(tokenize(doc_i)) > length`, then offset
      `randint(0, n_i - length - 1)`.
    - `documents-at-least-distinct` (LLM-Pruner): `>=` and a document not drawn before, offset
      `randint(0, n_i - length)`.
    `tokenize(i)` returns document i's token count (the caller caches it)."""
    if protocol_draw == "windows":
        import torch

        if ids.numel() < length:
            raise ConfigError(f"text {name!r}: its train split has {ids.numel():,} tokens, fewer than one "
                              f"calibration window of {length}")
        starts = torch.randint(0, ids.numel() - length + 1, (count,), generator=generator)
        return [(-1, int(s)) for s in starts.tolist()]
    if protocol_draw not in DRAWS:
        raise ConfigError(f"unknown calibration draw {protocol_draw!r}; known: {', '.join(DRAWS)}")
    n_docs = len(documents)
    if n_docs == 0:
        raise ConfigError(f"text {name!r}: its train split has no documents to draw calibration windows from")
    strict = protocol_draw == "documents-longer"
    distinct = protocol_draw.endswith("distinct")
    rng = random.Random(seed)
    drawn: list[tuple[int, int]] = []
    history: set[int] = set()
    for _ in range(count):
        for _tries in range(100 * n_docs + 1000):
            i = rng.randint(0, n_docs - 1)
            tokens = tokenize(i)
            if (tokens > length if strict else tokens >= length) and not (distinct and i in history):
                break
        else:
            raise ConfigError(f"text {name!r}: no train document has {'more than' if strict else 'at least'} "
                              f"{length} tokens{' not drawn before' if distinct else ''}; lower the context or the "
                              f"calibration count")
        history.add(i)
        drawn.append((i, rng.randint(0, tokens - length if distinct else tokens - length - 1)))
    return drawn
