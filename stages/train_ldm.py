"""DVC stage train_ldm: degraded/clean pairs + the VAE -> models/ldm.

Multi-process: torchrun --nproc_per_node N stages/train_ldm.py
"""

from audiosr.data.store import SegmentSet
from audiosr.params import load_params
from audiosr.profiles import resolve
from audiosr.train.checkpoint import load_model
from audiosr.train.ldm import LDMTask
from audiosr.train.runner import train_stage


def main() -> None:
    params = load_params()
    block, profile = params["ldm"], params["profile"]
    arch = resolve(profile, "ldm", block)
    vae_state, vae_cfg = load_model("models/vae")
    sets = {name: SegmentSet.open(f"data/{name}") for name in
            ("pairs/train", "segments/train", "pairs/valid", "segments/valid")}
    train_stage("ldm", block, profile,
                lambda s, d: LDMTask(arch, s, vae_state, vae_cfg, *sets.values(), d),
                identity={"block": block, "arch": arch, "data": sets["pairs/train"].meta, "vae": vae_cfg},
                logged={"profile": profile, "ldm": block, "ldm_arch": arch, "filter": params["filter"],
                        "noise": params["noise"], "seed": params["seed"]})


if __name__ == "__main__":
    main()
