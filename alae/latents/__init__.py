"""Images and seeds to latents and noise: the tools' image inputs, encoding and W+ refinement, seeds, noise maps, synthesis."""
