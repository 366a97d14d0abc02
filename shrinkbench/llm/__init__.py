"""The language-model track: one-shot pruning of pretrained causal LMs, perplexity as the response.

`config` (the frozen `LLMRunConfig`), `models` (registered and local models, weights hashed,
GGUF dequantized once and cached), `text` (texts with fixed splits, tokens and windows),
`methods` (magnitude, Wanda, SparseGPT and the `LLMStrategy` base of a user's method),
`engine` (block-by-block calibration and pruning), `checks` (a user's strategy checked before
any run, kept counts after), `model_checks` (a model folder checked before any run), `runner`
(one run, one record), `suite` (TOML suites with `track = "llm"`). Records share the store and the analysis of the vision
track (`shrinkbench.core.tracks`). See docs/llm.md.
"""
