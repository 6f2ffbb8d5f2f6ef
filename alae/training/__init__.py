"""The one training loop (loop.py) and what it drives: schedule, data, objectives, EMA, statistics, records, samples, in-training metrics."""
