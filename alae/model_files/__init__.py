"""Every model file read and written: alae checkpoints (checkpoint.py), the original ALAE's files (original_alae.py), one loader (loading.py)."""
