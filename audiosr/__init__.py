"""audiosr: audio super-resolution by latent diffusion over a mel VAE, as a DVC + MLflow pipeline."""

__version__ = "0.1.0"
