"""The vision track: image classifiers of a fixed zoo (`models`), datasets with fixed splits
(`data`), base models trained once per base seed (`bases`, `training`), pruning by weight,
channel and N:M (`pruning`, `structured`), a run as a plan of phases (`plans`, `execution`),
one run (`runner`), its frozen config (`config`, `validate`), its suites (`suite`) and the
`prune` command (`cli`). `track.TRACK` is what the core sees of it (docs/architecture.md).
"""
