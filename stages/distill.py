"""DVC stage distill: the LDM (teacher) + the VAE + degraded pairs -> models/distill, the one-step student.

Multi-process: torchrun --nproc_per_node N stages/distill.py
"""

import hashlib
from pathlib import Path

from audiosr import results
from audiosr.config import Params, stage_main, to_dict
from audiosr.data.store import SegmentSet, atomic_dir
from audiosr.models.load import load_model
from audiosr.train.distill import DistillTask
from audiosr.train.runner import train_stage

OUT = Path("models/distill")


def digest(path: str) -> str:
    """The weights' hash: a re-trained teacher (same config, new weights) must not resume an old student."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def no_student() -> None:
    """distill.steps 0: a models/distill that holds no student, and empty training metrics, for DVC's outputs."""
    with atomic_dir(OUT) as tmp:
        (tmp / "NO_STUDENT").write_text("distill.steps is 0: no one-step student; package leaves it out\n")
    Path("metrics").mkdir(exist_ok=True)
    Path("metrics/train_distill_log.csv").write_text("step,loss\n")
    results.write_training(Path("."), "distill", {"steps": 0}, digits=None)
    print("distill: distill.steps is 0, no student")


def main() -> None:
    params = Params.load()
    cfg = params.distill
    if cfg.steps == 0:
        return no_student()
    vae_state, vae_cfg = load_model("models/vae")
    ldm_state, ldm_cfg = load_model("models/ldm")
    pairs, valid = SegmentSet.open("data/pairs/train"), SegmentSet.open("data/pairs/valid")
    train_stage(
        "distill",
        cfg,
        params.profile,
        lambda d: DistillTask(cfg, vae_state, vae_cfg, ldm_state, ldm_cfg, pairs, valid, d),
        identity={
            "params": to_dict(cfg),
            "data": pairs.meta,
            "weights": {p: digest(f"models/{p}/model.safetensors") for p in ("vae", "ldm")},
        },
        logged={"profile": params.profile, "distill": to_dict(cfg)},
    )


if __name__ == "__main__":
    stage_main(main)
