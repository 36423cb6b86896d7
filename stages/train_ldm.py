"""DVC stage train_ldm: degraded/clean pairs + the VAE -> models/ldm.

Multi-process: torchrun --nproc_per_node N stages/train_ldm.py
"""

from audiosr.config import Params, stage_main, to_dict
from audiosr.data.store import SegmentSet
from audiosr.models.load import load_model
from audiosr.train.ldm import LDMTask
from audiosr.train.runner import train_stage


def main() -> None:
    params = Params.load()
    cfg = params.ldm
    vae_state, vae_cfg = load_model("models/vae")
    sets = {
        name: SegmentSet.open(f"data/{name}")
        for name in ("pairs/train", "segments/train", "pairs/valid", "segments/valid")
    }
    train_stage(
        "ldm",
        cfg,
        params.profile,
        lambda d: LDMTask(cfg, vae_state, vae_cfg, *sets.values(), d),
        identity={"params": to_dict(cfg), "data": sets["pairs/train"].meta, "vae": vae_cfg},
        logged={
            "profile": params.profile,
            "ldm": to_dict(cfg),
            "filter": to_dict(params.filter),
            "noise": to_dict(params.noise),
            "seed": params.seed,
        },
    )


if __name__ == "__main__":
    stage_main(main)
