"""alae-doctor --acceptance: the parts that prove a GPU machine trains correctly and fast (run.py runs them in order)."""
