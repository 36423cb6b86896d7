"""DVC stage evaluate: the fixed protocol on the test split -> metrics/eval*.{json,csv}, metrics/headline.json,
metrics/stats/eval.json, plots/eval/*.png, MLflow."""

import shutil
import tempfile
from pathlib import Path

from audiosr import plots, results
from audiosr.audio import SAMPLE_RATE, write
from audiosr.config import Params, stage_main, to_dict
from audiosr.data.store import SegmentSet
from audiosr.evaluate import SETS, evaluate, summarise
from audiosr.inference.model import ModelError
from audiosr.inference.restore import Pipeline
from audiosr.params import workers
from audiosr.progress import bar
from audiosr.tracking import close_pipeline_run, flatten, stage_run
from audiosr.train.distributed import pick_device

METRICS, PLOTS = Path("metrics"), Path("plots/eval")


def check_compatible(pipe: Pipeline, test: SegmentSet, params: Params) -> None:
    if pipe.config["n_mels"] != test.meta["mel"]["n_mels"]:
        raise ModelError(
            f"models/pipeline was trained with n_mels={pipe.config['n_mels']}, the test data has "
            f"n_mels={test.meta['mel']['n_mels']}; re-run training (dvc repro)"
        )
    if pipe.config["profile"] != params.profile:
        raise ModelError(
            f"models/pipeline is a {pipe.config['profile']!r} model, params.yaml asks for profile "
            f"{params.profile!r}; re-run training (dvc repro)"
        )


def main() -> None:
    params = Params.load()
    cfg = params.eval
    test = SegmentSet.open("data/segments/test")
    device = pick_device()
    pipe = Pipeline.load("models/pipeline", device)
    check_compatible(pipe, test, params)
    # on a GPU one process keeps the device busy; on a CPU one process per core
    n = 1 if device.type == "cuda" else workers()
    with stage_run("evaluate", {"eval": to_dict(cfg)}) as mlflow:
        with bar("evaluate") as progress:
            task = progress.add_task("evaluate", total=None, info="")
            both, examples, rtf = evaluate(
                "models/pipeline",
                "data/segments/test",
                cfg,
                n,
                str(device),
                lambda d, total: progress.update(task, completed=d, total=total),
                real_dir="data/real",
            )
        sets = both.pop("set")
        rows, real = (both[sets == name].reset_index(drop=True) for name in SETS)
        headline, by_condition = summarise(rows, rtf)
        real_headline, _ = summarise(real, [])
        METRICS.mkdir(exist_ok=True)
        if PLOTS.exists():
            shutil.rmtree(PLOTS)
        PLOTS.mkdir(parents=True)
        results.write_eval(METRICS, headline, real_headline)
        real.round(4).to_csv(METRICS / "eval_real_items.csv", index=False)
        by_condition.round(4).to_csv(METRICS / "eval_by_condition.csv", index=False)
        # every (system, condition, clip) item: the ablation report's paired bootstrap resamples these
        rows.round(4).to_csv(METRICS / "eval_items.csv", index=False)
        # wide tables (one column per system) for DVC plots
        by_cutoff = rows.pivot_table("lsd", "cutoff_hz", "system", sort=False).reset_index()
        by_cutoff.insert(0, "cutoff_khz", by_cutoff.pop("cutoff_hz") / 1000)
        by_cutoff.round(4).to_csv(METRICS / "eval_lsd_by_cutoff.csv", index=False)
        rows.pivot_table("lsd_hf", "filter", "system", sort=False).reset_index().round(4).to_csv(
            METRICS / "eval_lsd_hf_by_filter.csv", index=False
        )
        results.write_eval_figures(PLOTS, rows, real)
        logged = mlflow_metrics(headline) | {f"real/{k}": v for k, v in mlflow_metrics(real_headline).items()}
        mlflow.log_metrics(logged)
        # the pipeline run (the parent) is what a user compares: the tables and examples go there at the
        # root, where the compare view lines up the files two runs have in common; this run keeps folders
        parent = mlflow.active_run().data.tags["mlflow.parentRunId"]
        tables = (("by_condition", by_condition), ("lsd_by_cutoff", by_cutoff), ("items", rows), ("real_items", real))
        for name, table in tables:
            mlflow.log_table(table.round(4), f"tables/eval_{name}.json")  # MLflow's table view
            mlflow.log_table(table.round(4), f"eval_{name}.json", run_id=parent)
        log_examples(mlflow, parent, examples, pipe)
    close_pipeline_run({k: v for k, v in logged.items() if k.count("/") == 1 + k.startswith("real/") or "rtf/" in k})
    for name, result, items in zip(SETS, (headline, real_headline), (rows, real), strict=True):
        for system in ("model_lfr", "model_fast_lfr"):
            if system in result:
                values = result[system]
                print(
                    f"evaluate: {name} set, {system} LSD {values['lsd']:.3f} (unprocessed "
                    f"{result['unprocessed']['lsd']:.3f}), worse than the input on {values['worse_than_input']} of "
                    f"{(items.system == system).sum()} items, restored band "
                    f"{values['level_db']:+.1f} dB (mean absolute {values['level_abs_db']:.1f})"
                )
    print(f"evaluate: RTF {headline['model']['rtf']:.3f} (model)")


def mlflow_metrics(headline: dict) -> dict[str, float]:
    """eval.json as MLflow metrics in `/` hierarchies (`model_lfr/lsd`, `model_lfr/lsd_by_cutoff/4k`), the
    real-time factors apart as `time/rtf/<system>`."""
    out = {}
    for system, values in headline.items():
        for key, value in flatten(values).items():
            name = f"time/rtf/{system}" if key == "rtf" else f"{system}/{key.replace('.', '/')}"
            out[name] = float(value)
    return out


def log_examples(mlflow, parent: str, examples: list, pipe: Pipeline) -> None:
    """Per example condition: the spectrograms of input, output and target in kHz and seconds (plots/eval/,
    the run's spectrograms/ and the pipeline run's root) and the three as wavs (the run's
    audio/<condition>/, and the output at the pipeline run's root)."""
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        for cond, clean, outs in examples:
            name = f"{int(cond.cutoff_hz) // 1000}k_{cond.filter}_{cond.noise}"
            waves = {"input": outs["unprocessed"], "model_lfr": outs["model_lfr"], "target": clean}
            images = {name: results.power_image(wave) for name, wave in waves.items()}
            title = f"cutoff {cond.cutoff_hz / 1000:g} kHz, {cond.filter}, noise: {cond.noise}"
            seconds = len(clean) / SAMPLE_RATE
            fig = plots.spectrogram_figure(images, seconds, [cond.cutoff_hz], SAMPLE_RATE, title)
            fig.savefig(PLOTS / f"spectrogram_{name}.png", dpi=100)
            plots.close(fig)
            mlflow.log_artifact(str(PLOTS / f"spectrogram_{name}.png"), "spectrograms")
            client.log_artifact(parent, str(PLOTS / f"spectrogram_{name}.png"))
            folder = Path(tmp) / "audio" / name
            folder.mkdir(parents=True)
            for system, wave in (("input", outs["unprocessed"]), ("output", outs["model_lfr"]), ("target", clean)):
                write(folder / f"{system}.wav", wave, SAMPLE_RATE)
            shutil.copy(folder / "output.wav", Path(tmp) / f"{name}_output.wav")
            client.log_artifact(parent, str(Path(tmp) / f"{name}_output.wav"))
        mlflow.log_artifacts(str(Path(tmp) / "audio"), "audio")


if __name__ == "__main__":
    stage_main(main, ModelError)
