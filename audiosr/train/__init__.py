"""Training loops, checkpoints and distributed set-up."""
