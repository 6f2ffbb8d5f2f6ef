"""Everything measured: FID, KID, PPL, reconstruction, code, likelihood and digit metrics and a class head's error by name (registry.py), per-image metrics, LPIPS, the weight files."""
from alae.metrics.errors import MetricError
from alae.metrics.inception import MODES
from alae.metrics.registry import FAMILIES, check_metric_names, compute_metrics, parse_metric_names
from alae.metrics.results import RESULTS_FILE, MetricResult, append_result, read_results

__all__ = ["FAMILIES", "MODES", "RESULTS_FILE", "MetricError", "MetricResult", "append_result",
           "check_metric_names", "compute_metrics", "parse_metric_names", "read_results"]
