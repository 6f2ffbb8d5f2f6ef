"""The one error type of the metrics: a problem the user can fix, said in one line."""
from alae.errors import UserError


class MetricError(UserError, ValueError):
    """An unknown metric name, missing or unusable weights, or data that cannot give the metric."""
