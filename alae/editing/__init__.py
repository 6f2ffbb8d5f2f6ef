"""What the tools do to latents: attribute directions, label files, W+ edits, style-layer groups."""
