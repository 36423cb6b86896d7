"""DVC stage train_vae: clean mels (data/segments) -> models/vae."""

from audiosr.config import Params, stage_main
from audiosr.train.runner import clean_data_stage
from audiosr.train.vae import VAETask

if __name__ == "__main__":
    stage_main(lambda: clean_data_stage("vae", VAETask, Params.load()))
