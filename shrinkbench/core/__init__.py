"""The core: what every track shares and nothing track-specific. The store and its claims
(`store`), the sweep (`sweep`) and its executors (`executors`), suites (`suite`), the tracks
interface (`tracks`), registries, params, seeds, frozen configs (`configs`), user code
(`usercode`), provenance, devices, errors, the one MACs convention (`macs`), exact selection
primitives (`selection`), the metrics registry with the shared measurements (`metrics`) and the
command line's shared parts (`cli`).

Rule: the core never imports a track (`shrinkbench.vision`, `shrinkbench.llm`); it reaches them
through `shrinkbench.core.tracks` (tests/test_architecture.py checks it).
"""
