"""The metrics registry (every metric once: unit, direction, stage, definition) and the measuring
functions the tracks share: structure (params, nonzero, MACs-based speedup) and cost (latency,
throughput, peak memory). A track registers its own metrics (vision: `shrinkbench.vision.metrics`,
top-1/top-5/loss; language models: `shrinkbench.llm.metrics`, perplexity and NLL) when it is loaded
(`shrinkbench.core.tracks.load_metrics`)."""
from shrinkbench.core.metrics import cost, structure  # noqa: F401  (fills the registry)
from shrinkbench.core.metrics.cost import LatencySettings, measure_cost
from shrinkbench.core.metrics.registry import METRICS, MetricInfo, metric, metric_info
from shrinkbench.core.metrics.structure import measure_structure

__all__ = ["METRICS", "MetricInfo", "metric", "metric_info", "LatencySettings", "measure_cost",
           "measure_structure"]
