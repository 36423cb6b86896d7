"""`Pipeline.upsample` and `audiosr upsample` / `audiosr info` on a tiny random model built here.

The model's vocoder head is biased to a very low magnitude, so the generated band is faint and the
output is the input's low band (kept by the low-frequency replacement) plus a whisper above the cutoff:
seams, level and silence are then measurable against the input itself. Windows are 0.64 s, so a few
seconds of audio cross many window joins and several of the replacement's streaming blocks.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiosr.audio import SAMPLE_RATE, MelConfig, resample
from audiosr.cli import app
from audiosr.degrade import lowpass
from audiosr.inference import int8
from audiosr.inference.cutoff import analyse
from audiosr.inference.int8 import Int8Conv2d, Int8Linear
from audiosr.inference.model import ModelError
from audiosr.inference.restore import Pipeline
from audiosr.inference.stream import BLOCK
from audiosr.metrics import detect_cutoff
from audiosr.models.diffusion import SAMPLERS
from audiosr.models.layers import Upsample
from audiosr.models.unet import build_unet
from audiosr.models.vae import build_vae
from audiosr.models.vocoder import build_vocoder
from audiosr.packaging import package
from audiosr.registry import log_pipeline
from audiosr.train.checkpoint import save_model

SEGMENT_FRAMES = 64  # 0.64 s windows, 0.06 s overlap (a tenth)
STEPS = ["--steps", "2"]


def build_tiny(root: Path) -> Path:
    """Random tiny VAE, U-Net and iSTFT vocoder saved as the training stages export them, then packaged."""
    torch.manual_seed(0)
    mel = MelConfig(n_mels=16).to_dict()
    vae_arch = {"channels": 8, "multipliers": [1, 2], "latent_channels": 4, "num_res_blocks": 1, "attention": False}
    ldm_arch = {"width": 16, "multipliers": [1, 2], "attention_levels": [1], "num_res_blocks": 1, "heads": 2}
    voc_arch = {
        "arch": "istft",
        "istft": {"dim": 32, "intermediate_dim": 64, "num_layers": 1, "n_fft": 1920, "hop": 480},
    }
    vae, unet, vocoder = build_vae(vae_arch, 16), build_unet(ldm_arch, 4), build_vocoder(voc_arch, 16)
    with torch.no_grad():
        vocoder.head.bias[: 1920 // 2 + 1] = -8.0  # log-magnitudes: a faint generated band
    common = {"version": 1, "profile": "tiny", "n_mels": 16, "steps": 0}
    save_model(
        root / "vae",
        vae.state_dict(),
        {**common, "kind": "vae", "arch": vae_arch, "mel": mel, "scale": 1.0, "factor": 2, "latent_channels": 4},
    )
    save_model(root / "ldm", unet.state_dict(), {**common, "kind": "ldm", "arch": ldm_arch, "latent_channels": 4})
    save_model(root / "vocoder", vocoder.state_dict(), {**common, "kind": "vocoder", "arch": voc_arch, "mel": mel})
    package(
        root,
        root / "pipeline",
        extra={"segment_frames": SEGMENT_FRAMES, "training_data": {"source": "synthetic", "segments": 0}},
    )
    return root / "pipeline"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions on a busy 2-core machine: more threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pipe(model_dir) -> Pipeline:
    return Pipeline.load(model_dir)


def tone(n: int, hz: float, amp: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """n samples of a sine at sr."""
    return (amp * np.sin(2 * np.pi * hz * np.arange(n) / sr)).astype(np.float32)


def music(n: int, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """n samples of partials under 4 kHz with a slow tremolo: varied, band-limited, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = sum(
        rng.uniform(0.02, 0.1) * np.sin(2 * np.pi * rng.uniform(80, 4000) * t + rng.uniform(0, 6)) for _ in range(12)
    )
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)


def joins(pipe: Pipeline, n: int) -> list[slice]:
    """The crossfade regions of an n-sample input at 48 kHz (the default overlap: a tenth of a window)."""
    seg = pipe.segment_frames * pipe.mel.hop
    ov = round(pipe.segment_frames / 10) * pipe.mel.hop
    count = 1 + max(0, -(-(n - seg) // (seg - ov)))
    return [slice(p * (seg - ov), min(n, p * (seg - ov) + ov)) for p in range(1, count)]


# --------------------------------------------------------------------------------------------------
# Pipeline.upsample


def test_long_tone_has_no_seams(pipe) -> None:
    """A tone below the cutoff crosses 9 window joins and 2 streaming blocks of the replacement without a click."""
    x = tone(6 * SAMPLE_RATE, 1000.0, 0.4)
    y = pipe.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=4000).wave[0]
    assert y.shape == x.shape
    regions = joins(pipe, len(x))
    assert len(regions) >= 9
    limit = 1.02 * np.abs(np.diff(x)).max()
    for r in regions:
        assert np.abs(np.diff(y[r])).max() <= limit
    blocks = [slice(b - 600, b + 600) for b in range(BLOCK, len(x), BLOCK)]
    for r in blocks:
        assert np.abs(np.diff(y[r])).max() <= limit
    mid = slice(2048, -2048)  # away from the signal's own edges
    assert np.abs(y[mid] - x[mid]).max() < 1e-3


def test_identity_model_gives_back_the_input(pipe, monkeypatch) -> None:
    """With a model that returns its windows, the windowing, crossfade and merging reconstruct the input:
    identical windows are joined at constant level (the crossfade sees r = 1)."""
    monkeypatch.setattr(Pipeline, "restore_windows", lambda self, w, *a: w.clone())
    x = np.stack([music(3 * SAMPLE_RATE), music(3 * SAMPLE_RATE, seed=1)])
    for cutoff in (0, None):
        y = pipe.upsample(x, SAMPLE_RATE, steps=1, cutoff_hz=cutoff).wave
        np.testing.assert_allclose(y, x, atol=2e-5)


def test_uncorrelated_windows_keep_their_power(pipe, monkeypatch) -> None:
    """Independent noise from each window is joined at equal power: no dip or bump at the joins."""

    def noise(self, windows, steps, guidance, sampler, generators):
        return torch.stack([0.3 * torch.randn(windows.shape[1], generator=g) for g in generators])

    monkeypatch.setattr(Pipeline, "restore_windows", noise)
    x = tone(20 * 30720, 1000.0, 0.5)  # every window's peak is 0.5: its gain is 1
    y = pipe.upsample(x, SAMPLE_RATE, steps=1, cutoff_hz=0).wave[0]
    at_joins = np.concatenate([y[r] for r in joins(pipe, len(x))])
    assert abs(np.sqrt(np.mean(at_joins**2)) / 0.3 - 1) < 0.05


def test_loudness_is_kept(pipe) -> None:
    """No re-normalisation: a quieter input gives the same output, scaled (each window is normalised to
    the training peak and scaled back)."""
    x = music(72_000)
    loud = pipe.upsample(x, SAMPLE_RATE, steps=2).wave
    quiet = pipe.upsample(0.1 * x, SAMPLE_RATE, steps=2).wave
    np.testing.assert_allclose(quiet, 0.1 * loud, atol=2e-6)
    # the level of what is kept of the input, with a fixed cut: the tiny model's output is far below the
    # input, and the adaptive merge takes the generated bins wherever the input is 15 dB above them
    loud = pipe.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=4000).wave
    assert abs(np.sqrt(np.mean(loud**2)) / np.sqrt(np.mean(x**2)) - 1) < 0.05


def test_silence_stays_silence(pipe) -> None:
    x = np.zeros((2, 48_000), np.float32)
    x[0, 20_000:] = music(28_000)
    r = pipe.upsample(x, SAMPLE_RATE, steps=2)
    assert not r.wave[1].any() and r.cutoff_hz[1] == 0.0  # a silent channel
    assert not r.wave[0, : 20_000 - 2048].any()  # a silent stretch, up to the STFT frames that reach the music
    gen = pipe.upsample(x[:1], SAMPLE_RATE, steps=2, cutoff_hz=0).wave[0]  # the generated band alone
    assert not gen[: 20_000 - 2048].any() and np.abs(gen[20_000:]).max() > 0


def block_rms(v: np.ndarray, n: int = 4800) -> np.ndarray:
    """RMS of consecutive n-sample blocks (0.1 s at 48 kHz)."""
    v = v[: len(v) // n * n]
    return np.sqrt(np.mean(v.reshape(-1, n).astype(np.float64) ** 2, axis=1))


def floor_model(level: float):
    """A model that gives back its window (the low band right) plus a band of its own above 6 kHz at a
    fixed level in every window (as a trained model's floor): restore_windows for monkeypatch."""

    def restore(self, windows, steps, guidance, sampler, generators):
        hp = torch.from_numpy(np.fft.rfftfreq(windows.shape[1], 1 / SAMPLE_RATE) > 6000)
        noise = torch.stack([torch.randn(windows.shape[1], generator=g) for g in generators])
        return windows + level * torch.fft.irfft(torch.fft.rfft(noise) * hp, n=windows.shape[1])

    return restore


def test_quiet_input_is_not_gated(pipe, monkeypatch) -> None:
    """A file peaking at -85 dBFS, and a quiet stretch (-90 dB) between loud music, come out at the
    input's level through the adaptive band merge: quiet is not silence."""
    monkeypatch.setattr(Pipeline, "restore_windows", floor_model(1e-4))
    x = music(2 * SAMPLE_RATE)
    quiet = x * (10 ** (-85 / 20) / np.abs(x).max())
    y = pipe.upsample(quiet, SAMPLE_RATE, steps=1).wave[0]
    assert abs(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(quiet**2)) - 1) < 0.05
    x = music(6 * SAMPLE_RATE)
    x[2 * SAMPLE_RATE : 4 * SAMPLE_RATE] *= 10 ** (-90 / 20)
    y = pipe.upsample(x, SAMPLE_RATE, steps=1).wave[0]
    ratio_db = 20 * np.log10(block_rms(y) / block_rms(x))
    steps = [19, 20, 39, 40]  # the 0.1 s blocks at the two 90 dB steps, where the merge's STFT frames spread
    assert np.abs(np.delete(ratio_db, steps)).max() < 1.0, ratio_db


def test_restored_band_fades_with_the_input(pipe, monkeypatch) -> None:
    """On a fade-out from -6 to -100 dB over a second (the test's windows are 0.64 s: 60 dB in a window),
    a model's generated band at a level of its own follows the input down and never rises above the
    input's level."""
    monkeypatch.setattr(Pipeline, "restore_windows", floor_model(1e-3))
    n = SAMPLE_RATE
    x = music(n) * (0.5 / np.abs(music(n)).max()) * 10 ** (np.linspace(-6, -100, n) / 20)
    y = pipe.upsample(x, SAMPLE_RATE, steps=1, cutoff_hz=4000).wave[0]
    high = y - lowpass(y, SAMPLE_RATE, "butterworth", 8, 5000.0)
    level_db = 20 * np.log10(block_rms(high, 2400) / block_rms(x, 2400))
    assert level_db.max() < -6.0, level_db


@pytest.mark.parametrize("sr", [8000, 22_050, 44_100, 96_000])
def test_any_rate_keeps_duration_and_channels(pipe, sr) -> None:
    n = int(1.1 * sr)
    x = np.stack([tone(n, 300.0, 0.3, sr), tone(n, 500.0, 0.2, sr), tone(n, 700.0, 0.1, sr)])
    r = pipe.upsample(x, sr, steps=2, cutoff_hz=2000)
    assert r.wave.shape == (3, round(x.shape[1] * SAMPLE_RATE / sr)) and r.sample_rate == SAMPLE_RATE
    back = pipe.upsample(x, sr, steps=1, output_rate=44_100)
    assert back.wave.shape == (3, round(x.shape[1] * 44_100 / sr)) and back.sample_rate == 44_100
    # each channel keeps its own tone
    x48 = resample(x, sr)
    corr = [np.corrcoef(r.wave[c, 2048:-2048], x48[c, 2048:-2048])[0, 1] for c in range(3)]
    assert min(corr) > 0.99


def test_short_and_mono_inputs(pipe) -> None:
    for n in (1, 700, 30_000):
        r = pipe.upsample(tone(n, 200.0, 0.3) + 0.01, SAMPLE_RATE, steps=1)
        assert r.wave.shape == (1, n) and np.isfinite(r.wave).all()


def test_a_window_past_the_end_runs_only_what_it_covers(pipe, monkeypatch) -> None:
    """A file shorter than a window, and a long file's last window, run the rest of the signal and an
    overlap's worth of its continuation in whole latent positions (the tiny model's: 4 frames, 1920
    samples), not a whole window; the output keeps the input's length and, its band kept, its level."""
    runs = []
    restore = Pipeline.restore_windows
    monkeypatch.setattr(
        Pipeline, "restore_windows", lambda self, w, *a: runs.append(tuple(w.shape)) or restore(self, w, *a)
    )
    seg, ov = 64 * 480, 6 * 480  # the tiny model's window and overlap
    for n, windows in (
        (9_600, [(2, 13_440)]),  # 0.2 s: 9600 + 2880 samples, up to 7 positions
        (2 * (seg - ov) + 7_680, [(4, seg), (2, 11_520)]),  # the last window: 7680 + 2880, up to 6 positions
    ):
        runs.clear()
        x = np.stack([music(n), music(n, seed=1)])
        y = pipe.upsample(x, SAMPLE_RATE, steps=1, cutoff_hz=4000).wave  # the input's band kept
        assert runs == windows
        assert y.shape == x.shape and np.isfinite(y).all()
        assert abs(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) - 1) < 0.1


def test_a_shorter_window_starts_from_a_whole_windows_noise(pipe, monkeypatch) -> None:
    """The noise of a window that runs shorter at the signal's end is the start of a whole window's."""
    noises = []

    def record(fn, noise, timesteps, schedule, **extra):
        noises.append(noise.clone())
        return noise

    monkeypatch.setitem(SAMPLERS, "dpmpp_2m", record)
    x = torch.from_numpy(music(64 * 480)[None])
    for n in (64 * 480, 16 * 480):
        pipe.restore_windows(x[:, :n], 1, 1.0, "dpmpp_2m", [torch.Generator().manual_seed(3)])
    whole, short = noises
    assert short.shape[-1] * 4 == whole.shape[-1]
    torch.testing.assert_close(short, whole[..., : short.shape[-1]], rtol=0, atol=0)


def test_batch_size_does_not_change_the_result(pipe) -> None:
    x = np.stack([music(77_000), music(77_000, seed=3)])
    a = pipe.upsample(x, SAMPLE_RATE, steps=2, seed=5, batch=1).wave
    b = pipe.upsample(x, SAMPLE_RATE, steps=2, seed=5, batch=8).wave
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a, pipe.upsample(x, SAMPLE_RATE, steps=2, seed=6).wave, atol=1e-7)


def test_a_short_file_is_resampled_once_and_restored_the_same(tmp_path, pipe, monkeypatch) -> None:
    """A file of up to KEEP_SECONDS is decoded and resampled once (its analysis pass kept in memory); a
    longer one is read again. Both write the same samples."""
    from audiosr.inference import restore

    src = write(tmp_path / "a.wav", np.stack([music(3 * 44_100), music(3 * 44_100, seed=2)]), 44_100)
    reads, read = [], restore.file_blocks

    def counted(path):
        reads.append(path)
        return read(path)

    monkeypatch.setattr(restore, "file_blocks", counted)
    outs = []
    for keep, name in ((restore.KEEP_SECONDS, "kept.wav"), (2, "read_twice.wav")):
        monkeypatch.setattr(restore, "KEEP_SECONDS", keep)
        reads.clear()
        pipe.upsample_file(src, tmp_path / name, steps=2, copy_full_band=False)
        outs.append((len(reads), sf.read(tmp_path / name)[0]))
    assert [n for n, _ in outs] == [1, 2]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert outs[0][1].shape == (3 * 48_000, 2)


def test_bf16_is_close_to_fp32(model_dir, pipe) -> None:
    x = music(40_000)
    full = pipe.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=0).wave
    half = Pipeline.load(model_dir, precision="bf16").upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=0).wave
    assert np.abs(half - full).max() < 0.1 * np.abs(full).max()
    with pytest.raises(ValueError, match="precision"):
        Pipeline.load(model_dir, precision="fp8")


def test_int8_restores_close_to_fp32(model_dir, pipe, monkeypatch) -> None:
    """8-bit copies of the networks (audiosr.inference.int8) restore within the bf16 test's tolerance, the
    float networks left as they are. The tiny test model is narrower than MIN_CHANNELS, so its layers from 8
    channels are quantized here."""
    monkeypatch.setattr(int8, "MIN_CHANNELS", 8)
    x = music(40_000)
    full = pipe.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=0).wave
    eight = Pipeline.load(model_dir, precision="int8")
    out = eight.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=0).wave
    vae, unet, _, vocoder = eight.networks()
    assert any(isinstance(m, Int8Conv2d) for m in [*vae.modules(), *unet.modules()])
    assert any(isinstance(m, Int8Linear) for m in vocoder.modules())
    assert not any(isinstance(m, (Int8Conv2d, Int8Linear)) for m in eight.vae.modules())
    assert np.abs(out - full).max() < 0.1 * np.abs(full).max()  # the bf16 test's tolerance
    assert not np.array_equal(out, full)
    with pytest.raises(ValueError, match="int8"):
        Pipeline.load(model_dir, device="meta", precision="int8")


def test_the_inference_layout_keeps_the_weights_and_the_output(model_dir) -> None:
    """Restoring puts the 2-D networks into their inference form (`inference_form`: channels-last, the
    upsampling as transposed convolutions): the same state dict, names and values, and in fp32 the VAE's
    output of the training form, to float rounding."""
    x = np.stack([music(30_000), music(30_000, seed=2)])
    plain = Pipeline.load(model_dir)
    before = {k: v.clone() for k, v in plain.vae.state_dict().items()}
    with torch.no_grad():
        mel = torch.randn(2, 16, 64)
        ref = plain.vae.decode(plain.vae.encode(mel)[0])  # the default layout
        fast = Pipeline.load(model_dir)
        fast.upsample(x, SAMPLE_RATE, steps=2, cutoff_hz=0)
        weight = next(p for p in fast.vae.parameters() if p.dim() == 4 and p.shape[1] > 1)
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert all(m.transposed for m in fast.vae.modules() if isinstance(m, Upsample))
        assert not any(m.transposed for m in plain.vae.modules() if isinstance(m, Upsample))
        assert list(fast.vae.state_dict()) == list(before)
        assert all(torch.equal(fast.vae.state_dict()[k], v) for k, v in before.items())
        # float rounding: the transposed conv sums its taps in another order (1.4e-5 off on one CPU without
        # AMX); wrong taps would be off by the output's own size
        torch.testing.assert_close(fast.vae.decode(fast.vae.encode(mel)[0]), ref, atol=1e-4, rtol=1e-4)


def test_streamed_cutoff_matches_detect_cutoff() -> None:
    from audiosr.degrade import lowpass

    noise = np.random.default_rng(0).standard_normal(3 * SAMPLE_RATE).astype(np.float32)
    for cutoff in (3000.0, 9000.0):
        x = lowpass(noise, SAMPLE_RATE, "chebyshev", 8, cutoff)
        streamed = analyse((x[None, i : i + 10_000] for i in range(0, len(x), 10_000)), 1).cutoff_hz[0]
        assert abs(streamed - detect_cutoff(x)) <= 2 * SAMPLE_RATE / 2048


# --------------------------------------------------------------------------------------------------
# The command


def write(path: Path, wave: np.ndarray, sr: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave.T if wave.ndim == 2 else wave, sr, subtype="PCM_16")
    return path


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_one_file(tmp_path, model_dir) -> None:
    src = write(tmp_path / "song.wav", np.stack([music(53_000), music(53_000, seed=1)]), 44_100)
    r = run("upsample", src, "--model", model_dir, *STEPS, "--spectrogram", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    out = tmp_path / "song_48k.wav"
    wave, sr = sf.read(out, always_2d=True)
    assert sr == 48_000 and wave.shape == (round(sf.info(src).frames * 48_000 / 44_100), 2)
    assert "song_48k.wav" in r.output and "RTF" in r.output and "cutoff" in r.output
    assert (tmp_path / "s.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png", "song.wav", "song_48k.wav"]  # no temp files
    # the file path gives what the array API gives, up to the 24-bit file
    x, _ = sf.read(src, dtype="float32", always_2d=True)
    y = Pipeline.load(model_dir).upsample(x.T, 44_100, steps=2).wave
    np.testing.assert_allclose(wave.T, y, atol=1e-5)
    # an existing output is kept without --force, replaced with it; the input is never the output
    before = out.stat().st_mtime_ns
    again = run("upsample", src, "--model", model_dir, *STEPS)
    assert again.exit_code == 1 and "exists; pass --force" in again.output and out.stat().st_mtime_ns == before
    assert run("upsample", src, "--model", model_dir, *STEPS, "--force", "--quiet").output == ""
    same = run("upsample", src, "-o", src, "--model", model_dir, *STEPS, "--force")
    assert same.exit_code == 1 and "never overwritten" in same.output
    rate = run("upsample", src, "-o", tmp_path / "x.flac", "--model", model_dir, *STEPS, "--output-rate", "44100")
    assert rate.exit_code == 0 and sf.info(tmp_path / "x.flac").frames == sf.info(src).frames


def test_cli_folders_errors_and_summary(tmp_path, model_dir) -> None:
    root = tmp_path / "in"
    write(root / "a.wav", music(18_000), 22_050)
    write(root / "deep" / "b.flac", np.stack([music(22_000), music(22_000, seed=2)]), 32_000)
    (root / "deep" / "broken.wav").write_bytes(b"RIFF nonsense")
    write(root / "empty.wav", np.zeros(0, np.float32), 44_100)
    sf.write(str(root / "nan.wav"), np.full(1000, np.nan, np.float32), 44_100, subtype="FLOAT")
    (tmp_path / "nothing").mkdir()
    r = run(
        "upsample",
        root,
        tmp_path / "nothing",
        tmp_path / "missing.wav",
        "-o",
        tmp_path / "out",
        "--model",
        model_dir,
        *STEPS,
    )
    assert r.exit_code == 1
    assert (tmp_path / "out" / "a_48k.wav").exists() and (tmp_path / "out" / "deep" / "b_48k.wav").exists()
    assert sf.info(tmp_path / "out" / "deep" / "b_48k.wav").channels == 2
    tail = r.output[r.output.index("5 input(s) failed") :]
    for name in (
        "broken.wav: cannot be read",
        "empty.wav: has no samples",
        "nan.wav: contains NaN",
        "nothing: no audio files",
        "missing.wav: no such file",
    ):
        assert name in tail, r.output
    # beside the inputs: a folder's earlier outputs are not inputs; a named input is never an output
    write(root / "a_48k.wav", music(24_000), 48_000)
    again = run("upsample", root, "--model", model_dir, *STEPS)
    assert (root / "deep" / "b_48k.wav").exists() and not (root / "a_48k_48k.wav").exists()
    assert "a_48k.wav exists; pass --force" in again.output
    named = run("upsample", root / "a.wav", root / "a_48k.wav", "--model", model_dir, *STEPS)
    assert "is an input; inputs are never overwritten" in named.output


def test_cli_full_band_48k_is_copied_unless_forced(tmp_path, model_dir) -> None:
    white = 0.3 * np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
    src = write(tmp_path / "hires.wav", white, SAMPLE_RATE)
    r = run("upsample", src, "--model", model_dir, *STEPS)
    assert r.exit_code == 0 and "already 48 kHz and full band: copied" in r.output
    copy, _ = sf.read(tmp_path / "hires_48k.wav", dtype="float32")
    x, _ = sf.read(src, dtype="float32")
    np.testing.assert_allclose(copy, x, atol=1e-4)
    forced = run("upsample", src, "--model", model_dir, *STEPS, "--force")
    assert forced.exit_code == 0 and "RTF" in forced.output


def test_cli_model_errors(tmp_path, model_dir, monkeypatch) -> None:
    src = write(tmp_path / "a.wav", music(22_000), 44_100)
    monkeypatch.chdir(tmp_path)  # no repository here, so no models/pipeline
    monkeypatch.delenv("AUDIOSR_MODEL", raising=False)
    from audiosr.inference import model  # nor in the checkout audiosr runs from (a clean clone's)

    monkeypatch.setattr(model, "default_models", lambda: [tmp_path / "models" / "pipeline"])
    r = run("upsample", src, *STEPS)
    assert r.exit_code == 1 and "make run" in r.output and "--model" in r.output
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("config.json", "vae.safetensors", "ldm.safetensors"):
        (broken / f).write_bytes((model_dir / f).read_bytes())
    r = run("upsample", src, "--model", broken)
    assert r.exit_code == 1 and "missing vocoder.safetensors" in r.output
    assert "is not 'auto'" in run("upsample", src, "--model", model_dir, "--cutoff", "high").output
    assert "44100" in run("upsample", src, "--model", model_dir, "--output-rate", "16000").output


def test_cli_info(model_dir) -> None:
    r = run("info", model_dir)
    assert r.exit_code == 0, r.output
    for text in ("profile", "tiny", "16 bands", "vae", "ldm", "vocoder", "M params", "training data", "synthetic"):
        assert text in r.output


def test_model_from_mlflow_run(tmp_path, model_dir, monkeypatch) -> None:
    """A pipeline logged to a run (as the package stage does) loads through runs:/ and models:/ URIs."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp):
        uri = log_pipeline(model_dir, mlflow, register="tiny-sr")
        mlflow.log_metric("lsd", 1.25)
    src = write(tmp_path / "a.wav", music(30_000), 44_100)
    r = run("upsample", src, "--model", uri, *STEPS)
    assert r.exit_code == 0, r.output
    assert sf.info(tmp_path / "a_48k.wav").samplerate == 48_000
    info = run("info", "models:/tiny-sr/1")
    assert info.exit_code == 0 and "lsd" in info.output and "1.25" in info.output, info.output
    missing = run("upsample", src, "--model", "runs:/0123456789abcdef/pipeline", "--force")
    assert missing.exit_code == 1 and "cannot be fetched" in missing.output


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="no such model folder"):
        Pipeline.load(tmp_path / "nope")
