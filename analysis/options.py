"""The settings every analysis shares, as one frozen, validated dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.schema import SPLITS, STAGES, higher_is_better

INTERVALS = ("t", "bootstrap")
DIRECTIONS = ("auto", "higher", "lower")


@dataclass(frozen=True)
class AnalysisOptions:
    """What is analysed and how.

    - `metric`, `stage`, `split`: the response (default: test-split top-1 after fine-tuning).
    - `alpha`: significance level of every test; `confidence`: level of reported intervals.
    - `rope`: half-width of the region of practical equivalence, in the metric's unit
      (accuracy points): differences inside (-rope, +rope) are treated as negligible.
    - `power`: target power of the minimum detectable effect and the seed planner.
    - `direction`: which way is better for the response: `auto` (the metrics registry's
      direction, an error for a metric without one), `higher` or `lower`.
    - `interval`: curve bands and curve-level intervals, Student-t ("t") or bootstrap over
      whole units ("bootstrap"; it under-covers below 10 units and is warned about there).
    - `n_boot`, `seed`: bootstrap resamples and the seed of the one numpy Generator that
      every resampler receives (written into each report).
    """

    metric: str = "top1"
    stage: str = "post"
    split: str = "test"
    alpha: float = 0.05
    confidence: float = 0.95
    rope: float = 0.5
    power: float = 0.8
    direction: str = "auto"
    interval: str = "t"
    n_boot: int = 2000
    seed: int = 0
    across_protocols: bool = False

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise AnalysisError(f"stage {self.stage!r} is not one of {', '.join(STAGES)}")
        if self.split not in SPLITS:
            raise AnalysisError(f"split {self.split!r} is not one of {', '.join(SPLITS)}")
        for name in ("alpha", "confidence", "power"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise AnalysisError(f"{name} must lie strictly between 0 and 1, got {value}")
        if not self.rope >= 0.0:
            raise AnalysisError(f"rope must be >= 0 accuracy points, got {self.rope}")
        if self.direction not in DIRECTIONS:
            raise AnalysisError(f"direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        if self.interval not in INTERVALS:
            raise AnalysisError(f"interval {self.interval!r} is not one of {', '.join(INTERVALS)}")
        if self.n_boot < 100:
            raise AnalysisError(f"n_boot must be at least 100, got {self.n_boot}")
        if self.seed < 0:
            raise AnalysisError(f"seed must be a non-negative integer, got {self.seed}")

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger response is better (see `direction`)."""
        if self.direction != "auto":
            return self.direction == "higher"
        registered = higher_is_better(self.metric)
        if registered is None:
            raise AnalysisError(f"metric {self.metric!r} has no registered direction (higher or lower "
                                f"is better); pass --direction higher or --direction lower")
        return registered

    @property
    def response(self) -> str:
        """E.g. `post/test top1`."""
        return f"{self.stage}/{self.split} {self.metric}"

    def to_dict(self) -> dict:
        return asdict(self)
