"""The `audiosr` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from audiosr import degrade as deg
from audiosr.audio import AudioError, read, write

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Audio super-resolution tools.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.callback()
def main() -> None:
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
    if output.resolve() == input.resolve():
        _fail(f"{output}: is the input; choose another output path")
    if output.exists() and not force:
        _fail(f"{output}: exists; pass --force to overwrite it")
    try:
        wave, sr = read(input)
    except (AudioError, FileNotFoundError) as exc:
        _fail(str(exc))
    peak = float(np.abs(wave).max())
    if peak == 0:
        _fail(f"{input}: is silent; nothing to degrade")
    rng = np.random.default_rng(seed)
    phase = float(rng.uniform(0, 2 * np.pi))
    d = deg.Degradation(filter, order, cutoff, noise, amplitude if noise != "none" else 0.0,
                        tone_hz if noise == "tone" else 0.0, phase if noise == "tone" else 0.0)
    try:
        y = deg.apply(wave * (0.5 / peak), sr, d, rng)
    except ValueError as exc:
        _fail(str(exc))
    write(output, y, sr)
    typer.echo(f"{output}: {filter} order {order} at {cutoff:g} Hz, noise {noise}, {sr} Hz, {wave.shape[0]} ch")
