"""Tracks: the model families a run can belong to, each with its config type and executor.

`vision` (the zoo of image classifiers, `shrinkbench.config.RunConfig`, executed by
`shrinkbench.runner`) and `llm` (causal language models, `shrinkbench.llm.config.LLMRunConfig`,
executed by `shrinkbench.llm.runner`). A config's dict says its track (`"track": "llm"`;
no key = vision, as every record before the LLM track). The sweep, the executors and the store
see a run only through its track: one claim-execute-store path for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from shrinkbench.registry import Registry


@dataclass(frozen=True)
class Track:
    name: str
    config_from_dict: Callable[[Mapping[str, Any], str], Any]
    execute: Callable[..., dict]
    needs_base: bool
    """Whether a base model is made (trained) before the runs: vision yes, a pretrained LLM no."""
    describe: Callable[[Any], str]
    """The one-line name of a run shown by progress bars and dry runs."""


def _vision_from_dict(data, where="config"):
    from shrinkbench.config import RunConfig

    return RunConfig.from_dict(data, where)


def _vision_execute(cfg, store, device=None, **kwargs):
    from shrinkbench.runner import execute

    return execute(cfg, store, device, **kwargs)


def _vision_describe(cfg) -> str:
    from shrinkbench.sweep import describe_vision

    return describe_vision(cfg)


def _llm_describe(cfg) -> str:
    from shrinkbench.llm.suite import describe_llm

    return describe_llm(cfg)


def _llm_from_dict(data, where="config"):
    from shrinkbench.llm.config import LLMRunConfig

    return LLMRunConfig.from_dict(data, where)


def _llm_execute(cfg, store, device=None, on_epoch=None, **_):
    from shrinkbench.llm.runner import execute

    return execute(cfg, store, device)


TRACKS: Registry[Track] = Registry("track")
TRACKS.register("vision", Track("vision", _vision_from_dict, _vision_execute, True, _vision_describe))
TRACKS.register("llm", Track("llm", _llm_from_dict, _llm_execute, False, _llm_describe))


def track_of(cfg_or_dict: Any) -> Track:
    """The track of a config object or of its dict (`track` key; none = vision)."""
    name = cfg_or_dict.get("track") if isinstance(cfg_or_dict, Mapping) else getattr(cfg_or_dict, "track", None)
    return TRACKS.get(name or "vision")


def config_from_dict(data: Mapping[str, Any], where: str = "config"):
    return track_of(data).config_from_dict(data, where)
