"""`audiosr upsample`, `info` and `degrade` when things go wrong: broken model folders, signals, unreadable
inputs, unwritable outputs, clipped inputs, bad option values, the edges of the output. Each test runs
the real command (typer's CliRunner, or a subprocess for signals) on audio computed here, with the tiny
random model of test_upsample (its generated band is faint, so the output is the input's band as the
low-frequency replacement keeps it) or the `project` fixture's trained model where training matters.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosr.audio import resample
from audiosr.inference.stream import OutputError, continuation, write_stream
from tests.test_upsample import STEPS, build_tiny, music, run, write


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("models"))


def error_lines(result) -> list[str]:
    """The lines the command printed, after checking it ended by itself (no uncaught exception)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.strip()]


def sine(seconds: float, sr: int, hz: float, amp: float = 0.3, phase: float = 0.0) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr + phase)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Model folders


def broken_copies(model_dir: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Copies of a good model folder, each broken in one way -> (folder, the file named in the error)."""
    cases: dict[str, tuple[Path, str]] = {}

    def copy(name: str) -> Path:
        dst = root / name
        shutil.copytree(model_dir, dst)
        return dst

    for part in ("vae", "ldm", "vocoder"):
        folder = copy(f"truncated_{part}")
        data = (folder / f"{part}.safetensors").read_bytes()
        (folder / f"{part}.safetensors").write_bytes(data[: len(data) // 2])
        cases[f"truncated {part}"] = (folder, f"{part}.safetensors")
    for name, text in (("garbage", "{not json"), ("list", "[1, 2]"), ("empty", "")):
        folder = copy(f"config_{name}")
        (folder / "config.json").write_text(text)
        cases[f"config {name}"] = (folder, "config.json")
    folder = copy("config_keys")
    config = json.loads((folder / "config.json").read_text())
    del config["mel"]
    (folder / "config.json").write_text(json.dumps(config))
    cases["config without mel"] = (folder, "config.json")
    # edited values: each one line naming the key, before any input is blamed
    student = {**config["ldm"], "distilled_from": "ldm"}  # a student without its sampling_steps
    for key, edit in {
        "latent_scale": {"latent_scale": "abc"},
        "n_mels": {"n_mels": 80},
        "segment_frames": {"segment_frames": 0},
        "profile": {"profile": "full"},
        "student.sampling_steps": {"student": student},
    }.items():
        folder = copy(f"config_{key}")
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **edit}))
        shutil.copy(folder / "ldm.safetensors", folder / "student.safetensors")
        cases[f"config {key}"] = (folder, f"config.json: {key}" if key != "student.sampling_steps" else "config.json")
    return cases


def test_broken_model_folder_is_one_line(tmp_path, model_dir) -> None:
    """A truncated .safetensors or a config.json that is not a pipeline's: one line naming the file and
    what to do, for `upsample` (--model) and for `info` (its MODEL argument), never a traceback."""
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    for case, (folder, name) in broken_copies(model_dir, tmp_path / "models").items():
        r = run("upsample", src, "--model", folder, *STEPS)
        lines = error_lines(r)
        assert r.exit_code == 1 and len(lines) == 1, (case, r.output)
        assert lines[0].startswith("error:") and str(folder / name) in lines[0], (case, r.output)
        assert "dvc repro package" in lines[0] and "--model" in lines[0], (case, r.output)
        i = run("info", folder)
        lines = error_lines(i)
        assert i.exit_code == 1 and len(lines) == 1 and str(folder / name) in lines[0], (case, i.output)
        assert "audiosr info MODEL" in lines[0] and "--model" not in lines[0], (case, i.output)
    assert not (tmp_path / "a_48k.wav").exists()


def test_version_mismatch_says_what_to_do(tmp_path, model_dir) -> None:
    folder = tmp_path / "old"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "version": 99}))
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    lines = error_lines(r := run("upsample", src, "--model", folder, *STEPS))
    assert r.exit_code == 1 and len(lines) == 1 and "version 99" in lines[0], r.output
    assert "dvc repro package" in lines[0] and "install" in lines[0] and "--model" in lines[0], r.output
    lines = error_lines(i := run("info", folder))
    assert i.exit_code == 1 and "dvc repro package" in lines[0] and "--model" not in lines[0], i.output


def test_info_advice_names_its_argument(tmp_path) -> None:
    lines = error_lines(r := run("info", tmp_path / "nope"))
    assert r.exit_code == 1 and len(lines) == 1 and "nope" in lines[0]
    assert "audiosr info MODEL" in lines[0] and "--model" not in lines[0], r.output


@pytest.mark.slow
def test_info_prints_metrics_as_lines(project) -> None:
    """A trained model's training metrics, one readable line per part: no Python dicts."""
    wd, _ = project
    r = run("info", wd / "models/pipeline")
    assert r.exit_code == 0, r.output
    assert "{" not in r.output and "'" not in r.output, r.output
    lines = {line.split()[0] + " " + line.split()[1]: line for line in r.output.splitlines() if " metrics " in line}
    assert set(lines) == {"vae metrics", "ldm metrics", "vocoder metrics", "distill metrics"}, r.output
    assert "val/rec_l1 " in lines["vae metrics"] and "val/v_mse " in lines["ldm metrics"]
    assert "val/x0_mse " in lines["distill metrics"]
    assert "val/mel_l1 " in lines["vocoder metrics"] and "steps 4" in lines["vocoder metrics"]


# --------------------------------------------------------------------------------------------------
# Signals


def upsample_process(src: Path, model_dir: Path, *options: str) -> subprocess.Popen:
    """`audiosr upsample SRC` with the tiny model at 4 steps, as a process of its own."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-c", "from audiosr.cli import app; app()", "upsample", str(src), "--model"]
    cmd += [str(model_dir), "--steps", "4", "--device", "cpu", "--quiet", *options]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_on_one_output_leave_one_whole_file(tmp_path, model_dir) -> None:
    """Two runs writing one output at once (two terminals, a re-run while one is going): one writes it
    whole, the other is refused with one line naming it; no temporary or lock file is left."""
    n = 30 * 44_100
    srcs = [write(tmp_path / f"{name}.wav", music(n, 44_100, seed=i), 44_100) for i, name in enumerate("ab")]
    out = tmp_path / "D" / "x.wav"
    procs = [upsample_process(src, model_dir, "-o", str(out), "--force") for src in srcs]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert "another run is writing it now" in refused and "Traceback" not in refused, refused
    y, sr = sf.read(out)
    assert sr == 48_000 and len(y) == round(n * 48_000 / 44_100)
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.wav"]


@pytest.mark.parametrize("value", ["nan", "inf", "-3", "0.5"])
def test_a_guidance_that_is_not_a_scale_is_refused(tmp_path, model_dir, value) -> None:
    src = write(tmp_path / "a.wav", music(20_000), 44_100)
    r = run("upsample", src, "--model", model_dir, "--guidance", value)
    lines = error_lines(r)
    assert r.exit_code == 1 and len(lines) == 1 and "--guidance" in lines[0], r.output
    assert not (tmp_path / "a_48k.wav").exists()


def test_batch_is_checked_and_does_not_change_the_file(tmp_path, model_dir) -> None:
    """`--batch 0` is refused in one line; one window at a time writes the file the default batch writes."""
    src = write(tmp_path / "a.wav", np.stack([music(60_000), music(60_000, seed=2)]), 44_100)
    r = run("upsample", src, "--model", model_dir, "--batch", "0")
    lines = error_lines(r)
    assert r.exit_code == 1 and len(lines) == 1 and "--batch" in lines[0], r.output
    assert not (tmp_path / "a_48k.wav").exists()
    outs = []
    for batch, name in (("4", "b4.wav"), ("1", "b1.wav")):
        r = run("upsample", src, "--model", model_dir, *STEPS, "--batch", batch, "-o", tmp_path / name, "-q")
        assert r.exit_code == 0, r.output
        outs.append(sf.read(tmp_path / name)[0])
    assert outs[0].shape == (round(60_000 * 48_000 / 44_100), 2)
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-4)


def test_non_finite_samples_are_never_written(tmp_path) -> None:
    """A NaN from the model (a broken weight, an overflow) is an error naming the output; nothing is left."""
    good = np.zeros((1, 1000), np.float32)
    bad = good.copy()
    bad[0, 500] = np.nan
    with pytest.raises(OutputError, match="non-finite"):
        write_stream(tmp_path / "x.wav", iter([good, bad, good]), 48_000, 1)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_leaves_no_partial_file(tmp_path, model_dir) -> None:
    """SIGTERM (timeout, docker stop, systemd) mid-file: the temporary file is removed, no output is left,
    the exit code is 128 + 15."""
    src = write(tmp_path / "long.wav", music(40 * 44_100, 44_100), 44_100)
    proc = upsample_process(src, model_dir)

    def started() -> bool:
        return any(t.stat().st_size > 0 for t in tmp_path.glob(".long_48k.*.tmp.wav"))

    try:
        deadline = time.monotonic() + 120
        while not started() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "finished before it could be interrupted: make the input longer"
        assert started(), "the temporary output never appeared"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, err)
    assert "Traceback" not in err and "terminated" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]


# --------------------------------------------------------------------------------------------------
# Inputs and outputs


def test_an_unreadable_named_file_is_one_failure_among_many(tmp_path, model_dir, monkeypatch) -> None:
    """A file named on the command line that cannot be read fails alone: the others are restored, the run
    ends with the list of failures (exit 1), never a usage error (exit 2) that stops the whole batch."""
    a = write(tmp_path / "a.wav", music(20_000), 44_100)
    locked = write(tmp_path / "locked.wav", music(20_000, seed=1), 44_100)
    b = write(tmp_path / "b.wav", music(20_000, seed=2), 44_100)
    locked.chmod(0)
    readable = os.access(locked, os.R_OK)  # root reads anything
    if readable:  # show the command what an ordinary user's system says about the file
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: Path(p) != locked and real(p, mode, *a, **k))
    r = run("upsample", a, locked, b, "--model", model_dir, *STEPS)
    error_lines(r)
    assert r.exit_code != 2, r.output
    assert (tmp_path / "a_48k.wav").exists() and (tmp_path / "b_48k.wav").exists(), r.output
    if not readable:
        assert r.exit_code == 1 and "1 input(s) failed" in r.output
        assert "locked.wav: cannot be read (permission denied)" in r.output, r.output


def test_unwritable_output_is_one_line_naming_it(tmp_path, model_dir) -> None:
    srcs = [write(tmp_path / "in" / f"{n}.wav", music(20_000, seed=i), 44_100) for i, n in enumerate("ab")]
    # a folder under a regular file: cannot be made
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "sub"
    r = run("upsample", *srcs, "-o", out, "--model", model_dir, *STEPS)
    lines = error_lines(r)
    assert r.exit_code == 1 and "2 input(s) failed" in r.output, r.output
    for name in ("a", "b"):
        line = next(x for x in lines if x.startswith("error:") and f"{name}.wav" in x)
        assert f"{out / name}_48k.wav: cannot be written" in line and "not a directory" in line, line
    # a folder without write permission (root writes anyway; /sys refuses root too)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):
        locked = Path("/sys")
        try:
            (locked / ".audiosr-probe.wav").open("wb").close()
            pytest.skip("no folder refuses writes here")
        except OSError:
            pass
    r = run("upsample", srcs[0], "-o", locked / "x.wav", "--model", model_dir, *STEPS)
    lines = error_lines(r)
    assert r.exit_code == 1 and "System error" not in r.output, r.output
    assert any(f"{locked / 'x.wav'}: cannot be written" in x and "permission denied" in x for x in lines), r.output


def test_clipped_input_is_reported(tmp_path, model_dir) -> None:
    """A clipped input gives one warning line; output samples that clip are counted in the summary with
    the headroom that would avoid them. A clean input gets neither."""
    clipped = np.clip(sine(1.5, 44_100, 1000.0, amp=1.6), -1.0, 1.0)
    src = write(tmp_path / "hot.wav", clipped, 44_100)
    r = run("upsample", src, "--model", model_dir, *STEPS)
    lines = error_lines(r)
    assert r.exit_code == 0, r.output
    warnings = [x for x in lines if x.startswith("warning:")]
    assert len(warnings) == 1 and "hot.wav" in warnings[0] and "clipped" in warnings[0], r.output
    y, _ = sf.read(tmp_path / "hot_48k.wav")
    at_full_scale = float(np.mean(np.abs(y) >= 1 - 2**-22))
    summary = next(x for x in lines if "hot_48k.wav" in x and not x.startswith("warning:"))
    if at_full_scale > 0:
        assert "clipped" in summary and "dB" in summary, summary
    clean = write(tmp_path / "clean.wav", sine(1.5, 44_100, 1000.0, amp=0.5), 44_100)
    r = run("upsample", clean, "--model", model_dir, *STEPS)
    assert r.exit_code == 0 and "is clipped" not in r.output and "clipped at" not in r.output, r.output
    assert "warning" not in r.output, r.output


def test_rtf_only_for_audio_long_enough_to_mean_it(tmp_path, model_dir) -> None:
    one = write(tmp_path / "one.wav", np.full(1, 0.3, np.float32), 44_100)
    r = run("upsample", one, "--model", model_dir, *STEPS)
    assert r.exit_code == 0 and "one_48k.wav" in r.output and "RTF" not in r.output, r.output
    two = write(tmp_path / "two.wav", music(2 * 44_100), 44_100)
    r = run("upsample", two, "--model", model_dir, *STEPS)
    assert r.exit_code == 0 and "RTF" in r.output, r.output


# --------------------------------------------------------------------------------------------------
# The output's edges


@pytest.mark.parametrize(("sr", "tones"), [(8000, [1000.0, 3100.0]), (44_100, [5000.0]), (192_000, [7777.0] * 6)])
def test_a_tone_ends_without_a_burst(tmp_path, model_dir, sr, tones) -> None:
    """A pure tone (per channel: its own frequency and phase) keeps its level to the first and the last
    sample: the first and last 20 ms peak no higher than the rest (the low-frequency replacement's STFT
    sees a continuation of the signal past its ends, not a mirror image with a kink). The input is kept
    under a fixed cut near its Nyquist frequency: the tiny model's output is faint, and the adaptive merge
    takes a tone far above the model's output for hum the model took out."""
    x = np.stack([sine(1.2, sr, hz, phase=c) for c, hz in enumerate(tones)])
    src = write(tmp_path / "tone.wav", x, sr)
    r = run("upsample", src, "--model", model_dir, *STEPS, "--cutoff", str(0.95 * min(sr / 2, 24_000)))
    assert r.exit_code == 0, r.output
    y, out_sr = sf.read(tmp_path / "tone_48k.wav", always_2d=True)
    edge = int(0.02 * out_sr)
    for c in range(len(tones)):
        body = np.abs(y[edge:-edge, c]).max()
        head, tail = np.abs(y[:edge, c]).max(), np.abs(y[-edge:, c]).max()
        assert 0.28 < body < 0.33 and head <= 1.03 * body and tail <= 1.03 * body, (tones[c], body, head, tail)


def lossy_tone(path: Path) -> Path:
    """A 2 s harmonic tone at 16 kHz written as Ogg Vorbis or MP3 (by the path's suffix)."""
    sr = 16_000
    t = np.arange(2 * sr) / sr
    tone = sum(0.2 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 8)).astype(np.float32)
    sf.write(path, tone, sr, **({"subtype": "VORBIS"} if path.suffix == ".ogg" else {}))
    return path


def rms_db(v: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(v, np.float64) ** 2)))


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_a_lossy_file_is_continued_without_a_burst(tmp_path, fmt) -> None:
    """The codec empties the top of the band, which gave the linear predictor poles on the unit circle
    there: the continuation past the end of a decoded tone rang at up to 55 times its peak (clipped to
    twice it), so the model's last window and the merge's last frames saw a burst. It now stays under the
    tone's level, while a pure tone is still continued at its own."""
    data, sr = sf.read(lossy_tone(tmp_path / f"clean.{fmt}"), dtype="float32")
    x = resample(data, sr).astype(np.float64)
    assert rms_db(continuation(x, 2048)) < rms_db(x[-2048:]) + 1.0
    sine = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(2 * 48_000) / 48_000)
    assert abs(rms_db(continuation(sine, 2048)) - rms_db(sine)) < 1.0


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_a_lossy_file_ends_without_a_burst(tmp_path, model_dir, fmt) -> None:
    """`audiosr upsample` on the decoded tone (kept under a fixed cut, as in the test above): the output
    keeps the tone's level, and its first and last 20 ms keep the level of the rest."""
    src = lossy_tone(tmp_path / f"clean.{fmt}")
    r = run("upsample", src, "--model", model_dir, "-o", tmp_path / "out.wav", *STEPS, "--cutoff", "7600")
    assert r.exit_code == 0, r.output
    y, out_sr = sf.read(tmp_path / "out.wav")
    edge = int(0.02 * out_sr)
    body = rms_db(y[edge:-edge])
    assert abs(body - rms_db(sf.read(src)[0])) < 1.0
    assert abs(rms_db(y[-edge:]) - body) < 1.5 and abs(rms_db(y[:edge]) - body) < 1.5, (body, rms_db(y[-edge:]))


# --------------------------------------------------------------------------------------------------
# degrade


@pytest.mark.parametrize(
    ("option", "value", "say"),
    [
        ("--amplitude", "-0.5", "from 0 to 1"),
        ("--amplitude", "1.5", "from 0 to 1"),
        ("--order", "0", "from 1 to 32"),
        ("--order", "40", "from 1 to 32"),
        ("--cutoff", "0", "Nyquist"),
        ("--cutoff", "-100", "Nyquist"),
        ("--cutoff", "22050", "Nyquist"),
        ("--tone-hz", "0", "Nyquist"),
        ("--tone-hz", "30000", "Nyquist"),
    ],
)
def test_degrade_rejects_out_of_range_values(tmp_path, option, value, say) -> None:
    src = write(tmp_path / "in.wav", music(44_100, 44_100), 44_100)
    out = tmp_path / "out.wav"
    args = {
        "--filter": "chebyshev",
        "--order": "8",
        "--cutoff": "4000",
        "--noise": "tone",
        "--amplitude": "0.01",
        "--tone-hz": "1000",
        option: value,
    }
    r = run("degrade", src, "-o", out, *[v for kv in args.items() for v in kv])
    lines = error_lines(r)
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert lines[0].startswith(f"error: {option}: {value}") and say in lines[0], r.output
    assert not out.exists()


# --------------------------------------------------------------------------------------------------
# From anywhere


def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0 and r.output.startswith("audiosr "), r.output


def test_the_default_model_is_audiosr_model_from_any_folder(tmp_path, model_dir, monkeypatch) -> None:
    """Outside any repository, with $AUDIOSR_MODEL naming the model: no --model needed."""
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.setenv("AUDIOSR_MODEL", str(model_dir))
    r = run("upsample", src, *STEPS)
    assert r.exit_code == 0 and (tmp_path / "a_48k.wav").exists(), r.output
    monkeypatch.setenv("AUDIOSR_MODEL", str(tmp_path / "nope"))
    lines = error_lines(r := run("upsample", src, *STEPS, "--force"))
    assert r.exit_code == 1 and len(lines) == 1 and "nope: no such model folder" in lines[0], r.output


def test_no_default_model_names_where_it_looked(tmp_path, monkeypatch) -> None:
    from audiosr.inference import model

    looked = [tmp_path / "here" / "models" / "pipeline", tmp_path / "checkout" / "models" / "pipeline"]
    monkeypatch.delenv("AUDIOSR_MODEL", raising=False)
    monkeypatch.setattr(model, "default_models", lambda: looked)
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    lines = error_lines(r := run("upsample", src))
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert all(str(p) in lines[0] for p in looked) and "AUDIOSR_MODEL" in lines[0], r.output


def test_a_model_uri_outside_the_repository_creates_no_store(tmp_path, monkeypatch) -> None:
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    lines = error_lines(r := run("upsample", src, "--model", "models:/audiosr/1"))
    assert r.exit_code == 1 and len(lines) == 1 and "there is no tracking store" in lines[0], r.output
    assert not (tmp_path / "mlflow.db").exists()


def test_skip_existing_re_runs_a_folder(tmp_path, model_dir) -> None:
    srcs = [write(tmp_path / "in" / f"{n}.wav", music(20_000, seed=i), 44_100) for i, n in enumerate("ab")]
    out = tmp_path / "out"
    assert run("upsample", srcs[0], "--model", model_dir, *STEPS, "-o", out).exit_code == 0
    before = (out / "a_48k.wav").stat().st_mtime_ns
    r = run("upsample", tmp_path / "in", "--model", model_dir, *STEPS, "-o", out)
    assert r.exit_code == 1 and "exists; pass --force" in r.output  # without it: the existing one fails
    (out / "b_48k.wav").unlink()
    r = run("upsample", tmp_path / "in", "--model", model_dir, *STEPS, "-o", out, "--skip-existing")
    assert r.exit_code == 0 and "a.wav: skipped" in r.output and (out / "b_48k.wav").exists(), r.output
    assert (out / "a_48k.wav").stat().st_mtime_ns == before


@pytest.mark.parametrize("command", ["upsample", "degrade"])
def test_flags_show_as_flags(command) -> None:
    r = run(command, "--help")
    assert r.exit_code == 0 and "--force" in r.output and "<bool>" not in r.output, r.output


def test_spectrograms_of_a_folder_mirror_its_tree(tmp_path, model_dir) -> None:
    """x/take.wav and y/take.wav under one folder: two PNGs, in x/ and y/ under the --spectrogram folder."""
    for i, sub in enumerate("xy"):
        write(tmp_path / "in" / sub / "take.wav", music(20_000, seed=i), 44_100)
    r = run(
        "upsample",
        tmp_path / "in",
        "--model",
        model_dir,
        *STEPS,
        "-o",
        tmp_path / "out",
        "--spectrogram",
        tmp_path / "png",
    )
    assert r.exit_code == 0, r.output
    assert sorted(str(p.relative_to(tmp_path / "png")) for p in (tmp_path / "png").rglob("*.png")) == [
        "x/take_48k.png",
        "y/take_48k.png",
    ]
