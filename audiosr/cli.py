"""The `audiosr` command: `degrade` makes test inputs, `upsample` restores files with a trained model,
`info` describes a model. Thin: the work is in audiosr.degrade and audiosr.inference."""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, NoReturn

import numpy as np
import torch
import typer

from audiosr import degrade as deg
from audiosr import plots
from audiosr.audio import SAMPLE_RATE, AudioError, read, temporary, write
from audiosr.inference.model import FORMAT_1, PARTS, STUDENT, ModelError, describe, resolve_model
from audiosr.inference.restore import DEFAULT_GUIDANCE, DEFAULT_STEPS, OUTPUT_RATES, FileResult, Pipeline
from audiosr.inference.spectrogram import Spectrograms
from audiosr.models.diffusion import SAMPLERS
from audiosr.names import AUDIO_SUFFIXES, PRECISIONS
from audiosr.progress import bar

# plain help (click's): flags shown as flags, not as `--force <bool>`
app = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Audio super-resolution tools."
)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _print_version(value: bool) -> None:
    if value:
        from audiosr.inference.model import package_version

        typer.echo(f"audiosr {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Audio super-resolution by latent diffusion: data, degradation and restoration tools."""


@app.command()
def degrade(
    input: Annotated[Path, typer.Argument(help="Audio file to degrade (any rate soundfile reads).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the degraded WAV.")],
    filter: Annotated[str, typer.Option(help=f"Low-pass family: {', '.join(deg.FILTERS)}.")] = "chebyshev",
    order: Annotated[int, typer.Option(help="Filter order (2-10 in training).")] = 8,
    cutoff: Annotated[float, typer.Option(help="Cut-off frequency in Hz.")] = 4000.0,
    noise: Annotated[str, typer.Option(help="Noise: none, tone or gaussian.")] = "none",
    amplitude: Annotated[float, typer.Option(help="Tone peak or Gaussian standard deviation.")] = 0.01,
    tone_hz: Annotated[float, typer.Option("--tone-hz", help="Tone frequency in Hz.")] = 1000.0,
    seed: Annotated[int, typer.Option(help="Seed of the Gaussian noise and the tone's phase.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")] = False,
) -> None:
    """Degrade a file as the training pairs are made: peak-normalise to 0.5, zero-phase low-pass, add noise."""
    if noise not in ("none", "tone", "gaussian"):
        _fail(f"--noise: {noise!r} is not one of none, tone, gaussian")
    if filter not in deg.FILTERS:
        _fail(f"--filter: {filter!r} is not one of {', '.join(deg.FILTERS)}")
    if not 1 <= order <= 32:
        _fail(f"--order: {order} is out of range; use an integer from 1 to 32 (2 to 10 in training)")
    if not 0 <= amplitude <= 1:
        _fail(f"--amplitude: {amplitude:g} is out of range; use a value from 0 to 1 (the input's peak is 0.5)")
    if output.resolve() == input.resolve():
        _fail(f"{output}: is the input; choose another output path")
    if output.exists() and not force:
        _fail(f"{output}: exists; pass --force to overwrite it")
    try:
        wave, sr = read(input)
    except (AudioError, FileNotFoundError) as exc:
        _fail(str(exc))
    for option, hz in (("--cutoff", cutoff), ("--tone-hz", tone_hz if noise == "tone" else None)):
        if hz is not None and not 0 < hz < sr / 2:
            _fail(
                f"{option}: {hz:g} Hz is out of range; it must lie between 0 and the Nyquist frequency "
                f"{sr / 2:g} Hz of {input}"
            )
    peak = float(np.abs(wave).max())
    if peak == 0:
        _fail(f"{input}: is silent; nothing to degrade")
    rng = np.random.default_rng(seed)
    phase = float(rng.uniform(0, 2 * np.pi))
    d = deg.Degradation(
        filter,
        order,
        cutoff,
        noise,
        amplitude if noise != "none" else 0.0,
        tone_hz if noise == "tone" else 0.0,
        phase if noise == "tone" else 0.0,
    )
    try:
        y = deg.apply(wave * (0.5 / peak), sr, d, rng)
    except ValueError as exc:
        _fail(str(exc))
    write(output, y, sr)
    typer.echo(f"{output}: {filter} order {order} at {cutoff:g} Hz, noise {noise}, {sr} Hz, {wave.shape[0]} ch")


# --------------------------------------------------------------------------------------------------
# upsample / info


@dataclass
class Job:
    src: Path
    dst: Path
    found: bool  # found in a folder (not named on the command line)
    tree: Path = Path()  # its folder under the folder it was found in (mirrored under -o and --spectrogram)


def plan(inputs: list[Path], output: Path | None, rate: int) -> tuple[list[Job], list[str]]:
    """Inputs (files, folders searched recursively) -> (jobs, one error line per unusable input).

    Outputs are `<stem>_48k.wav` (`_44k` at 44.1 kHz) beside each input, or under `output`: a file for
    one input file (unless `output` is a folder or has no suffix), a folder for more (a folder input's
    tree mirrored inside it). A file found in a folder that is another input's output (an earlier
    run's result) is not an input.
    """
    errors: list[str] = []
    found: list[tuple[Path, Path | None]] = []
    for item in inputs:
        if item.is_dir():
            files = sorted(
                p
                for p in item.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
            )
            if not files:
                errors.append(f"{item}: no audio files in this folder (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
            found += [(p, item) for p in files]
        elif item.exists():
            found.append((item, None))
        else:
            errors.append(f"{item}: no such file or folder")
    suffix = f"_{rate // 1000}k.wav"
    single = len(inputs) == 1 and len(found) == 1 and found[0][1] is None
    jobs = []
    for src, root in found:
        tree = src.parent.relative_to(root) if root else Path()
        if output is None:
            dst = src.with_name(src.stem + suffix)
        elif single and output.suffix and not output.is_dir():
            dst = output
        else:
            dst = output / tree / (src.stem + suffix)
        jobs.append(Job(src, dst, root is not None, tree))
    outputs = {j.dst.resolve() for j in jobs}
    return [j for j in jobs if not (j.found and j.src.resolve() in outputs)], errors


def _cutoff(value: str) -> float | None:
    if value == "auto":
        return None
    try:
        hz = float(value)
    except ValueError:
        hz = -1.0
    if not 0 <= hz < SAMPLE_RATE / 2:
        _fail(f"--cutoff: {value!r} is not 'auto' or a frequency in Hz from 0 (no replacement) to 24000")
    return hz


def _spectrogram_path(spectrogram: Path, job: Job, many: bool) -> Path:
    """The PNG itself for one input, `<output stem>.png` inside it for several (or when it is a folder), in
    the input's folder under the folder it was found in."""
    return spectrogram / job.tree / f"{job.dst.stem}.png" if many or spectrogram.is_dir() else spectrogram


def _save_figure(spectrograms: Spectrograms, result: FileResult, path: Path) -> None:
    fig = plots.spectrogram_figure(
        spectrograms.images, spectrograms.seconds, result.cutoff_hz, SAMPLE_RATE, title=result.input.name
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
    finally:
        plots.close(fig)
        tmp.unlink(missing_ok=True)


RTF_MIN_SECONDS = 1.0  # below it the fixed costs (reading, the first window) swamp the real-time factor


def _summary(r: FileResult) -> str:
    cut = "/".join(f"{c / 1000:.1f}" for c in r.cutoff_hz)
    head = f"{r.input} -> {r.output}: {r.seconds:.1f} s, {r.channels} ch, {r.sample_rate} Hz, cutoff {cut} kHz"
    if r.copied:
        head = f"{head}; already 48 kHz and full band: copied (pass --force to upsample anyway)"
    else:
        rtf = f", RTF {r.rtf:.2f}" if r.seconds >= RTF_MIN_SECONDS else ""
        head = f"{head}; {r.elapsed_s:.1f} s{rtf}"
    if r.clipped_output > 0:
        over = 20 * math.log10(r.output_peak)
        head += (
            f"; {100 * r.clipped_output:.2g} % of the output clipped at full scale (peak +{over:.1f} dBFS: "
            f"lower the input by {math.ceil(over * 10) / 10:.1f} dB to avoid it)"
        )
    return head


def _clipping_warning(r: FileResult) -> str | None:
    if r.clipped_input == 0:
        return None
    return (
        f"{r.input}: the input is clipped ({100 * r.clipped_input:.2g} % of its samples at full scale); "
        "restoration cannot undo clipping, whose distortion reaches into the restored band"
    )


class Terminated(SystemExit):
    """SIGTERM, raised where the command is, so its cleanup runs as for Ctrl-C."""


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM (what `timeout`, `docker stop` and systemd send) into an exception for the duration of
    the block, so the temporary output is removed as on Ctrl-C; the process exits with 128 + 15."""

    def handler(signum, frame) -> None:
        raise Terminated(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (the command embedded somewhere): its SIGTERM is not ours
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def upsample(
    inputs: Annotated[
        list[Path], typer.Argument(help="Audio files or folders (searched recursively).", readable=False)
    ],  # unreadable: one failure
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output file (one input) or folder (several). Default: <name>_48k.wav beside it."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Pipeline folder, runs:/<run id>/pipeline or models:/<name>/<version>. Default: $AUDIOSR_MODEL, else "
            "models/pipeline of the repository holding the current folder, or of the one audiosr is installed from."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help=f"Diffusion sampling steps of the teacher (DPM-Solver++). Default: {DEFAULT_STEPS}, its own single "
            "step, the best sampler measured on the small profile; with --student, the student's."
        ),
    ] = None,
    student: Annotated[
        bool,
        typer.Option(
            "--student",
            help="Restore with the model's one-step student (the distill stage's), where it has one; more "
            "--steps than the student's run the teacher.",
        ),
    ] = False,
    guidance: Annotated[
        float | None,
        typer.Option(
            help="Classifier-free guidance scale of the teacher (1: none); the student's is built in. "
            f"Default: the model's ({DEFAULT_GUIDANCE:g} for the models trained here, 3.5 for an imported AudioSR)."
        ),
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            help=f"{', '.join(SAMPLERS)}. Default: the model's (dpmpp_2m; ddim_eta1 for an imported AudioSR)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the diffusion noise.")] = 0,
    batch: Annotated[
        int,
        typer.Option(
            help="Windows (5.12 s of one channel) through the networks at once: more is faster on a GPU, and on a "
            "CPU a little faster for more memory; the result is the same."
        ),
    ] = 4,
    device: Annotated[str | None, typer.Option(help="cpu or cuda. Default: cuda when available.")] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="fp32, bf16, int8 (a CPU), or auto: bf16 on a GPU or a CPU with AMX (twice as fast there), else fp32."
        ),
    ] = "auto",
    cutoff: Annotated[
        str,
        typer.Option(help="Keep the input below this frequency (Hz); 'auto': where it carries the signal; 0: nowhere."),
    ] = "auto",
    output_rate: Annotated[int, typer.Option("--output-rate", help="48000 or 44100.")] = SAMPLE_RATE,
    spectrogram: Annotated[
        Path | None,
        typer.Option(help="Write a PNG of input and output side by side (a folder of PNGs for several inputs)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite existing outputs; upsample inputs that are already 48 kHz full band."),
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="Leave inputs whose output exists alone (a re-run of a folder)."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summaries, only errors.")] = False,
) -> None:
    """Restore recordings to 48 kHz with a trained model: any length, rate and channel count."""
    if force and skip_existing:
        _fail("--force and --skip-existing: choose one")
    if output_rate not in OUTPUT_RATES:
        _fail(f"--output-rate: {output_rate} is not one of {', '.join(map(str, OUTPUT_RATES))}")
    if steps is not None and steps < 1:
        _fail(f"--steps: must be at least 1, got {steps}")
    if batch < 1:
        _fail(f"--batch: must be at least 1, got {batch}")
    if guidance is not None and (not math.isfinite(guidance) or guidance < 1):
        _fail(f"--guidance: must be a number of at least 1 (1: no guidance), got {guidance:g}")
    if device not in (None, "cpu", "cuda"):
        _fail(f"--device: {device!r} is not cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        _fail("--device cuda: CUDA is not available on this machine; use --device cpu")
    if precision not in PRECISIONS:
        _fail(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if sampler not in (None, *SAMPLERS):
        _fail(f"--sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
    cutoff_hz = _cutoff(cutoff)
    jobs, failures = plan(inputs, output, output_rate)
    for line in failures:
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    with _sigterm_unwinds():  # from here a SIGTERM unwinds like Ctrl-C: no temporary file is left
        try:
            with resolve_model(model) as path:
                pipe = Pipeline.load(
                    path, device or ("cuda" if torch.cuda.is_available() else "cpu"), precision, student=student
                )
            if student and pipe.student is None:
                _fail(
                    f"--student: {model or 'models/pipeline'} has no one-step student; train one with "
                    "`dvc exp run -S distill.steps=400`, or leave out --student"
                )
        except ModelError as exc:
            _fail(str(exc))
        sources = {j.src.resolve() for j in jobs}
        targets: set[Path] = set()
        with bar("upsample", disable=True if quiet else None) as progress:
            for job in jobs:
                if skip_existing and job.dst.exists():
                    if not quiet:
                        typer.echo(f"{job.src}: skipped, {job.dst} exists")
                    continue
                error = _check(job, sources, targets, force)
                if error is None:
                    task = progress.add_task(job.src.name, total=None, info="")
                    spec = Spectrograms() if spectrogram else None
                    try:
                        result = pipe.upsample_file(
                            job.src,
                            job.dst,
                            steps,
                            guidance,
                            seed,
                            cutoff_hz,
                            output_rate,
                            copy_full_band=not force,
                            sampler=sampler,
                            batch=batch,
                            progress=lambda d, n, t=task: progress.update(t, completed=d, total=n),
                            spectrogram=spec,
                        )
                        if spec is not None:
                            _save_figure(spec, result, _spectrogram_path(spectrogram, job, len(jobs) > 1))
                    except (AudioError, ValueError, OSError, RuntimeError) as exc:  # one line, then the next file
                        error = str(exc) if str(job.src) in str(exc) else f"{job.src}: {exc}"
                    except Terminated:
                        progress.stop()
                        typer.secho(
                            f"error: terminated (SIGTERM) while restoring {job.src}; {job.dst} was not written",
                            fg=typer.colors.RED,
                            err=True,
                        )
                        raise
                    progress.remove_task(task)
                if error is not None:
                    failures.append(error)
                    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
                elif not quiet:
                    if (warning := _clipping_warning(result)) is not None:
                        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
                    typer.echo(_summary(result))
        if failures:
            typer.secho(f"{len(failures)} input(s) failed:", fg=typer.colors.RED, err=True)
            for line in failures:
                typer.secho(f"  {line}", err=True)
            raise typer.Exit(1)


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metrics_line(values: dict) -> str:
    """A training summary (metrics/train_<part>.json) as one line: validation first, then the rest."""
    keys = sorted(values, key=lambda k: (not k.startswith("val/"), k))
    return ", ".join(f"{k} {_number(values[k])}" for k in keys)


def _check(job: Job, sources: set[Path], targets: set[Path], force: bool) -> str | None:
    """Why a job's output may not be written, or None."""
    dst = job.dst.resolve()
    if dst in sources:
        return f"{job.src}: the output {job.dst} is an input; inputs are never overwritten"
    if dst in targets:
        return f"{job.src}: another input already writes {job.dst}; give the inputs distinct names"
    targets.add(dst)
    if job.dst.exists() and not force:
        return f"{job.src}: the output {job.dst} exists; pass --force to overwrite it"
    return None


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Pipeline folder, runs:/<run id>/pipeline or models:/<name>/<v>.")],
) -> None:
    """What a model is: profile, sizes, mel settings, training data and steps, logged metrics."""
    try:
        with resolve_model(model) as path:
            d = describe(path, model)
    except ModelError as exc:
        _fail(exc.advice("name another: audiosr info MODEL"))
    cfg = d["config"]
    mel = cfg["mel"]
    trained = {**FORMAT_1, **cfg}
    lines = [
        ("model", model),
        ("profile", f"{cfg.get('profile')} (format version {cfg['version']})"),
        (
            "mel",
            f"{mel['n_mels']} bands, {mel['sample_rate']} Hz, n_fft {mel['n_fft']}, hop {mel['hop']}, "
            f"{mel['fmin']:g}-{mel['fmax']:g} Hz",
        ),
        (
            "segment",
            f"{trained['segment_frames']} frames ({trained['segment_frames'] * mel['hop'] / SAMPLE_RATE:.2f} s), "
            f"peak {trained['peak']:g}, trained on cutoffs up to {trained['full_band_hz'] / 1000:g} kHz",
        ),
        ("latent scale", f"{cfg['latent_scale']:.4g}"),
    ]
    for part in (p for p in (*PARTS, STUDENT) if p in d["params"]):
        arch = cfg[part]["arch"]
        chosen = arch.get(arch.get("arch"), {})  # the vocoder's block for its architecture
        shape = ", ".join(f"{k} {v}" for k, v in {**arch, **chosen}.items() if not isinstance(v, dict))
        trained = "imported" if "imported" in cfg else f"{cfg[part].get('steps', '?')} steps"
        lines.append((part, f"{d['params'][part] / 1e6:.2f} M params, {trained}; {shape}"))
    own = {"steps": DEFAULT_STEPS, "guidance": DEFAULT_GUIDANCE, "sampler": "dpmpp_2m", **cfg.get("sampling", {})}
    sampling = (
        f"the teacher, {own['steps']} {own['sampler']} step{'s' if own['steps'] > 1 else ''} at guidance "
        f"{own['guidance']:g} by default (--steps, --guidance, --sampler)"
    )
    if STUDENT in d["params"]:
        teacher = cfg[STUDENT]["teacher"]
        sampling += (
            f"; --student: the one-step student, distilled from {teacher['steps']} teacher steps at guidance "
            f"{teacher['guidance']:g}"
        )
    else:
        sampling += "; no one-step student in this model"
    lines.append(("sampling", sampling))
    if "imported" in cfg:
        unused = ", ".join(f"{group} ({n})" for group, n in cfg["imported"]["unused"].items())
        lines.append(("imported", f"from {cfg['imported']['from']}; not imported by design: {unused or 'nothing'}"))
    data = cfg.get("training_data")
    if data:
        lines.append(("training data", ", ".join(f"{k} {v}" for k, v in data.items())))
    for part, values in sorted(cfg.get("metrics", {}).items()):  # training summaries, one per part
        if isinstance(values, dict):
            lines.append((f"{part} metrics", _metrics_line(values)))
        else:
            lines.append((f"{part} metrics", _number(values)))
    for key, value in sorted(d["run_metrics"].items()):  # the MLflow run's, for a runs:/ or models:/ model
        lines.append((key, _number(value)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        typer.echo(f"{key:<{width}}  {value}")


@app.command("import-audiosr")
def import_audiosr(
    checkpoint: Annotated[
        Path,
        typer.Argument(help="AudioSR's published weights: pytorch_model.bin of haoheliu/audiosr_basic or _speech."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The pipeline folder to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing folder.")] = False,
) -> None:
    """Turn AudioSR's published checkpoint into a pipeline folder (for upsample, info and evaluation)."""
    from audiosr.published import import_checkpoint

    if output.exists() and not force:
        _fail(f"{output}: exists; choose another --output or pass --force to replace it")
    try:
        config = import_checkpoint(checkpoint, output)
    except ModelError as exc:
        _fail(str(exc))
    unused = ", ".join(f"{group} ({n})" for group, n in config["imported"]["unused"].items())
    typer.echo(f"{output}: AudioSR's U-Net, VAE and vocoder, latent scale {config['latent_scale']:.4g}")
    typer.echo(f"not imported (by design): {unused or 'nothing'}")
    for note in config["imported"]["notes"]:
        typer.echo(f"note: {note}")


@app.command("evaluate")
def evaluate_model(
    model: Annotated[str, typer.Argument(help="Pipeline folder (an imported AudioSR, say), runs:/... or models:/...")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for its eval*.json and eval*_items.csv.")],
    steps: Annotated[
        int | None,
        typer.Option(help="Sampling steps of `model`. Default: the model's own, else params.yaml's eval.steps."),
    ] = None,
    guidance: Annotated[
        float | None, typer.Option(help="Guidance of `model`. Default: the model's own, else eval.guidance.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda. Default: cuda when available.")] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="fp32, bf16, int8 or auto, as for upsample. Default: params.yaml's eval.precision."),
    ] = None,
) -> None:
    """Score a model on this repository's held-out sets with the evaluate stage's protocol (params.yaml's
    eval block, data/segments/test and data/real), item for item comparable with the stage's metrics/."""
    from audiosr.config import Params, ParamsError
    from audiosr.evaluate import evaluate_folder
    from audiosr.params import workers

    for needed in (Path("params.yaml"), Path("data/segments/test"), Path("data/real/manifest.csv")):
        if not needed.exists():
            _fail(f"{needed}: not found; run audiosr evaluate in a repository whose test sets are built (dvc repro)")
    if device not in (None, "cpu", "cuda"):
        _fail(f"--device: {device!r} is not cpu or cuda")
    if precision not in (None, *PRECISIONS):
        _fail(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        params = Params.load()
    except ParamsError as exc:
        _fail(str(exc))
    cfg = params.eval if precision is None else replace(params.eval, precision=precision)
    try:
        with resolve_model(model) as path, bar("evaluate") as progress:
            task = progress.add_task("evaluate", total=None, info="")
            headlines = evaluate_folder(
                path,
                output,
                cfg,
                steps=steps,
                guidance=guidance,
                workers=1 if device == "cuda" else workers(),
                device=device,
                progress=lambda d, n: progress.update(task, completed=d, total=n),
            )
    except ModelError as exc:
        _fail(str(exc))
    for name, headline in headlines.items():
        lfr = headline["model_lfr"]
        typer.echo(f"{name} set: model_lfr LSD {lfr['lsd']:.3f}, {lfr['worse_than_input']} items worse than the input")
    typer.echo(f"{output}: written; compare with the default model: python -m studies.compare metrics {output}")
