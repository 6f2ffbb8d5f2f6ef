"""What the networks are: equalized-learning-rate layers (layers.py) and the StyleALAE networks F, G, E, D (style.py)."""
