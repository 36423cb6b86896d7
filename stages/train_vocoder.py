"""DVC stage train_vocoder: clean segments and mels (data/segments) -> models/vocoder."""

from audiosr.audio import MelConfig
from audiosr.data.store import SegmentSet
from audiosr.params import load_params
from audiosr.profiles import resolve
from audiosr.train.runner import train_stage
from audiosr.train.vocoder import VocoderTask


def main() -> None:
    params = load_params()
    block, profile = params["vocoder"], params["profile"]
    arch = resolve(profile, "vocoder", block)
    mel = MelConfig.from_params(params["mel"])
    train, valid = SegmentSet.open("data/segments/train"), SegmentSet.open("data/segments/valid")
    train_stage("vocoder", block, profile, lambda s, d: VocoderTask(arch, s, mel, train, valid, d),
                identity={"block": block, "arch": arch, "data": train.meta},
                logged={"profile": profile, "vocoder": block, "vocoder_arch": arch, "mel": params["mel"]})


if __name__ == "__main__":
    main()
