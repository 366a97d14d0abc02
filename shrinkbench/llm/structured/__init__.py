"""Structured pruning of causal language models: depth (blocks) and width (GQA head groups, MLP
channels), compaction into a smaller Hugging Face model that loads anywhere, and measured CPU
cost. `units` (units and plans), `scoring` (criteria and selection), `prune` (spec -> plan),
`compact` (the smaller model, saving), `cost` (latency, memory, MACs per token), `reference`
(a true float64 copy, the exact reference compaction is checked against)."""
