"""DVC stage train_vocoder: clean segments and mels (data/segments) -> models/vocoder."""

from audiosr.config import Params, stage_main
from audiosr.train.runner import clean_data_stage
from audiosr.train.vocoder import VocoderTask

if __name__ == "__main__":
    stage_main(lambda: clean_data_stage("vocoder", VocoderTask, Params.load()))
