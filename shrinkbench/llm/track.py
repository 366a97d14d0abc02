"""The language-model track as the core sees it (`shrinkbench.core.tracks.Track`): pretrained causal
LMs pruned one-shot with calibration data, perplexity as the response; no base model is trained
(a pretrained checkpoint is the starting weights). Registered through the entry point
`llm = "shrinkbench.llm.track:TRACK"` (pyproject.toml). Imports its modules lazily, so listing
needs no torch.
"""
from __future__ import annotations

from typing import Any

from shrinkbench.core.tracks import Listing, Track


def _from_dict(data, where="config"):
    from shrinkbench.llm.config import LLMRunConfig

    return LLMRunConfig.from_dict(data, where)


def _execute(cfg, store, device=None, **runtime):
    from shrinkbench.llm.runner import execute

    return execute(cfg, store, device, **runtime)


def _describe(cfg) -> str:
    from shrinkbench.llm.suite import describe_llm

    return describe_llm(cfg)


def _load_suite(data, where, path, added=None):
    from shrinkbench.llm.suite import load_llm_suite

    return load_llm_suite(data, where, path, added)


def _register_commands(sub) -> None:
    from shrinkbench.llm.cli import register

    register(sub)


def _check_run_options(args) -> None:
    """Options of the vision runs that a language-model suite would ignore: one-line ConfigError."""
    from shrinkbench.core.errors import ConfigError

    for flag, given, instead in (("--data-root", getattr(args, "data_root", None), "its texts are named in [sweep] datasets"),
                                 ("--download", getattr(args, "download", False), "set download = true in its [run] table"),
                                 ("--loader-workers", getattr(args, "loader_workers", 0), "it reads no images")):
        if given:
            raise ConfigError(f"{flag} acts on vision suites; this is a language-model suite ({instead}): leave "
                              f"{flag} out")


def _check_device(configs, device: str) -> None:
    """The device exists here and computes every dtype the runs ask for (their preset's or their
    own): a one-line ConfigError naming the way out (`dtype = "float32"` in [run]) otherwise."""
    from shrinkbench.core.device import resolve_device
    from shrinkbench.llm.placement import check_run_dtype

    dev = resolve_device(device)
    for cfg in {(c.dtype, c.protocol): c for c in configs}.values():
        check_run_dtype(cfg, dev)


def _benchmark_method(configs, added) -> str | None:
    """The first added method, else the first pruned one, as the reports name it."""
    from shrinkbench.analysis.schema import strategy_name

    pruned = [c for c in configs if not c.is_dense]
    chosen = [c for c in pruned if c.strategy in added]
    return next((strategy_name(c.to_dict(), c.record_names()["method_tags"]) for c in chosen or pruned), None)


def list_models(pattern: str = "*") -> list[dict[str, Any]]:
    """The registered language models matching `pattern`, from their cards (nothing is loaded)."""
    from shrinkbench.llm.models import CARDS, MODELS

    return [{"name": name, "params": CARDS[name].params, "architecture": CARDS[name].architecture,
             "context": CARDS[name].context, "source": CARDS[name].source,
             "aliases": list(MODELS.aliases(name))} for name in MODELS.names(pattern)]


def list_strategies() -> list[dict[str, Any]]:
    """Every registered language-model method, by `kind`: strategies (their scopes, where the
    kept count is exact; the patterns they run at; whether they calibrate), structured criteria,
    layer allocations and mask refinements; each with its constructor's parameters (defaults and
    ranges, `shrinkbench.core.params.constructor_parameters`), its paper and its definition.
    Generated from the registries, so a new entry is listed as it is registered."""
    import inspect

    from shrinkbench.core.params import parameters_text
    from shrinkbench.llm.allocation import ALLOCATIONS
    from shrinkbench.llm.methods import LLM_STRATEGIES
    from shrinkbench.llm.refine import LLM_REFINEMENTS

    def first_line(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    rows = []
    for name, cls in LLM_STRATEGIES.items():
        rows.append({"name": name, "kind": "strategy", "granularity": "unstructured, N:M", "scope": cls.default_scope,
                     "scopes": list(cls.scopes), "criterion": "calibrated" if cls.needs_inputs else "data-free",
                     "aliases": list(LLM_STRATEGIES.aliases(name)), "parameters": parameters_text(cls),
                     "paper": getattr(cls, "paper", ""), "description": first_line(cls)})
    from shrinkbench.llm.structured.catalog import criteria_rows

    rows += [{**row, "kind": "structured criterion", "parameters": "", "paper": ""} for row in criteria_rows()]
    for name, cls in ALLOCATIONS.items():
        rows.append({"name": name, "kind": "layer allocation",
                     "granularity": "unstructured, N:M" if name == "uniform" else "unstructured",
                     "scope": None, "scopes": [], "criterion": "calibrated" if cls.needs_inputs else "data-free",
                     "aliases": list(ALLOCATIONS.aliases(name)), "parameters": parameters_text(cls),
                     "paper": cls.paper, "description": first_line(cls)})
    for name, cls in LLM_REFINEMENTS.items():
        rows.append({"name": name, "kind": "mask refinement", "granularity": "unstructured, N:M", "scope": None,
                     "scopes": [], "criterion": "calibrated", "aliases": list(LLM_REFINEMENTS.aliases(name)),
                     "parameters": parameters_text(cls), "paper": cls.paper, "description": first_line(cls)})
    return rows


def list_texts(data_root: str | None = None) -> list[dict[str, Any]]:
    """Every registered text with its source and split rule (`file:<path>` reads a user's file)."""
    from shrinkbench.llm.text import SOURCES, TEXTS

    return [{"name": name, "splits": "train, test", "split_rule": SOURCES[name][1], "source": SOURCES[name][0],
             "aliases": list(TEXTS.aliases(name))} for name in TEXTS]


def _load_metrics() -> None:
    import shrinkbench.llm.metrics  # noqa: F401  (registers perplexity, nll, sparsity, ...)


TRACK = Track(
    name="llm",
    title="language-model track",
    summary="pretrained causal language models pruned one-shot with calibration data; perplexity",
    config_from_dict=_from_dict,
    execute=_execute,
    describe=_describe,
    load_suite=_load_suite,
    listing=Listing(models=list_models, strategies=list_strategies, datasets=list_texts,
                    load_metrics=_load_metrics),
    register_commands=_register_commands,
    prepare_base=None,
    with_data_options=None,
    response_metric="perplexity",
    benchmark_method=_benchmark_method,
    check_run_options=_check_run_options,
    check_device=_check_device,
)
