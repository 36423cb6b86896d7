"""DVC stage train_vae: clean mels (data/segments) -> models/vae."""

from audiosr.params import load_params
from audiosr.train.runner import clean_data_stage
from audiosr.train.vae import VAETask

if __name__ == "__main__":
    clean_data_stage("vae", VAETask, load_params())
