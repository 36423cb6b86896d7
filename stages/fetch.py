"""DVC stage fetch: make data/raw/manifest.csv (and the audio of generated sources) from `data`."""

from pathlib import Path

from audiosr.audio import AudioError
from audiosr.config import Params, stage_main, to_dict
from audiosr.data.instruments import InstrumentError
from audiosr.data.sources import SourceError, build_manifest
from audiosr.data.store import atomic_dir
from audiosr.progress import bar
from audiosr.tracking import stage_run

RAW = Path("data/raw")


def main() -> None:
    cfg = Params.load().data
    data = to_dict(cfg)
    with stage_run("fetch", {"data": data}) as mlflow, atomic_dir(RAW) as tmp:
        n = {"synthetic": cfg.synthetic.tracks, "rendered": cfg.rendered.tracks}.get(cfg.source)
        with bar("fetch") as progress:
            task = progress.add_task(f"fetch {cfg.source}", total=n, info="")
            # generated audio is written into the temporary folder; the manifest names its final place
            manifest = build_manifest(data, tmp, RAW, lambda k: progress.advance(task, k))
        manifest.to_csv(tmp / "manifest.csv", index=False)
        ok = manifest[manifest.status == "ok"]
        mlflow.log_metrics(
            {"tracks": len(ok), "tracks_skipped": len(manifest) - len(ok), "seconds": float(ok.duration.sum())}
        )
        mlflow.log_artifact(str(tmp / "manifest.csv"))
        for table in sorted(tmp.glob("*/instruments.csv")) + sorted(tmp.glob("*/songs.csv")):
            mlflow.log_artifact(str(table))  # the rendered source's instrument measurement and choices
        print(f"fetch: {len(ok)} tracks ({ok.duration.sum() / 3600:.2f} h), {len(manifest) - len(ok)} skipped")


if __name__ == "__main__":
    # a bad source, file or param: one line saying what to do, not a traceback
    stage_main(main, SourceError, AudioError, InstrumentError, ValueError)
