"""The trained networks: VAE, latent-diffusion U-Net (with its schedule and samplers), vocoder."""
