"""DVC stage degrade: data/segments/<split>/ -> data/pairs/<split>/ (degraded segments + mels + draws).

Train and valid are degraded with the training distribution (`filter`, `noise`, `seed`); the test
split is left to the evaluation's own fixed protocol.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from audiosr.config import Params, mel_dict, stage_main, to_dict  # noqa: E402
from audiosr.data.segments import degrade_split  # noqa: E402
from audiosr.data.store import atomic_dir  # noqa: E402
from audiosr.params import workers  # noqa: E402
from audiosr.progress import track  # noqa: E402
from audiosr.tracking import stage_run  # noqa: E402

SPLITS = ("train", "valid")


def main() -> None:
    params = Params.load()
    mel = params.mel
    logged = {
        "filter": to_dict(params.filter),
        "noise": to_dict(params.noise),
        "seed": params.seed,
        "mel": mel_dict(mel),
    }
    with stage_run("degrade", logged) as mlflow, atomic_dir("data/pairs") as tmp:
        for name in SPLITS:
            table = degrade_split(
                Path("data/segments") / name,
                tmp / name,
                name,
                params.filter,
                params.noise,
                params.seed,
                mel,
                workers(),
                lambda it, n, name=name: track(it, n, f"degrade {name}"),
            )
            counts = {f"{name}/segments": len(table)}
            if len(table):
                counts.update({f"{name}/filter/{k}": v for k, v in table["filter"].value_counts().items()})
                counts.update({f"{name}/noise/{k}": v for k, v in table["noise"].value_counts().items()})
                fig, ax = plt.subplots(figsize=(6, 3))
                ax.hist(table["cutoff_hz"] / 1000, bins=28)
                ax.set(xlabel="cutoff (kHz)", ylabel="segments", title=f"drawn cutoffs, {name}")
                fig.tight_layout()
                mlflow.log_figure(fig, f"cutoff_hist_{name}.png")
                plt.close(fig)
            mlflow.log_metrics(counts)
            print(f"degrade {name}: {counts}")


if __name__ == "__main__":
    stage_main(main)
