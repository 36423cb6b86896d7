"""Data sources, split, segmentation and the datasets that read them."""
