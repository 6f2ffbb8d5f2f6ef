"""Comparing the latent-autoencoder family: runs planned over configs and seeds, their figures, the report."""
