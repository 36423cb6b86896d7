"""DVC stage train_vae: clean mels (data/segments) -> models/vae."""

from audiosr.audio import MelConfig
from audiosr.data.store import SegmentSet
from audiosr.params import load_params
from audiosr.profiles import resolve
from audiosr.train.runner import train_stage
from audiosr.train.vae import VAETask


def main() -> None:
    params = load_params()
    block, profile = params["vae"], params["profile"]
    arch = resolve(profile, "vae", block)
    mel = MelConfig.from_params(params["mel"])
    train, valid = SegmentSet.open("data/segments/train"), SegmentSet.open("data/segments/valid")
    train_stage("vae", block, profile, lambda s, d: VAETask(arch, s, mel, train, valid, d),
                identity={"block": block, "arch": arch, "data": train.meta},
                logged={"profile": profile, "vae": block, "vae_arch": arch, "mel": params["mel"]})


if __name__ == "__main__":
    main()
