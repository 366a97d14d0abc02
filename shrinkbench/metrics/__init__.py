"""The metrics registry and the functions that measure every registered metric."""
from shrinkbench.metrics import accuracy, cost, language, structure  # noqa: F401  (fills the registry)
from shrinkbench.metrics.accuracy import PredictionCounts, evaluate, predict_counts
from shrinkbench.metrics.cost import LatencySettings, measure_cost
from shrinkbench.metrics.registry import METRICS, MetricInfo, metric, metric_info
from shrinkbench.metrics.structure import measure_structure

__all__ = ["METRICS", "MetricInfo", "metric", "metric_info", "PredictionCounts", "evaluate",
           "predict_counts", "LatencySettings", "measure_cost", "measure_structure"]
