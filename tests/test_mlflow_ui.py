"""The real MLflow server on a loopback port, against the store the tiny project's stages wrote: runs,
params, metrics and artifacts are visible through its REST API, also those of a stage that logged through
the server itself (MLFLOW_TRACKING_URI=http://..., as with a team's tracking server)."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.conftest import copy_project, run_stage, stage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, endpoint: str, **query) -> dict:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(query)}" if query else f"{base}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def post(base: str, endpoint: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}{endpoint}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_mlflow_server_shows_the_pipeline_runs(project, tmp_path) -> None:
    wd, env = copy_project(project, tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{wd / 'mlflow.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=wd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the MLflow server did not come up")
        run_stage(stage("evaluate"), wd, {**env, "MLFLOW_TRACKING_URI": base})  # logs through the server
        experiments = post(base, "/api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        exp = next(e for e in experiments if e["name"] == "audiosr")
        runs = post(
            base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100}
        )["runs"]
        by_name = {r["info"]["run_name"]: r for r in runs}
        assert exp["tags"] and {"key": "mlflow.experimentKind", "value": "custom_model_development"} in exp["tags"]
        assert {"workspace/train_vae", "workspace/train_ldm", "workspace/evaluate"} <= set(by_name)
        # the pipeline execution is the parent run: every param, the overrides, the headline metrics
        parent = by_name["workspace"]
        params = {p["key"]: p["value"] for p in parent["data"]["params"]}
        metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
        tags = {t["key"]: t["value"] for t in parent["data"]["tags"]}
        assert params["noise.type"] == "mixed" and "model_lfr/lsd" in metrics and "time/rtf/model" in metrics
        assert tags["audiosr.run"] == "pipeline" and tags["overrides"] == "none"
        assert parent["info"]["status"] == "FINISHED"
        for name in ("workspace/train_vae", "workspace/evaluate"):
            child = {t["key"]: t["value"] for t in by_name[name]["data"]["tags"]}
            assert child["mlflow.parentRunId"] == parent["info"]["run_id"] and child["dvc.exp_name"] == "workspace"
        history = get(
            base,
            "/api/2.0/mlflow/metrics/get-history",
            run_id=by_name["workspace/train_ldm"]["info"]["run_id"],
            metric_key="train/loss",
        )["metrics"]
        assert len(history) >= 1 and all(m["step"] > 0 for m in history)
        ev = by_name["workspace/evaluate"]["info"]["run_id"]
        files = {f["path"] for f in get(base, "/api/2.0/mlflow/artifacts/list", run_id=ev)["files"]}
        assert {"audio", "spectrograms", "tables"} <= files
        # the pipeline run: tables as MLflow tables and the examples at the root, where the compare view
        # lines up the files two runs share
        files = {
            f["path"] for f in get(base, "/api/2.0/mlflow/artifacts/list", run_id=parent["info"]["run_id"])["files"]
        }
        assert {"eval_by_condition.json", "spectrogram_4k_chebyshev_none.png", "4k_chebyshev_none_output.wav"} <= files
        assert "spectrogram_8k_boxcar_none.png" in files and "spectrogram_8k_chebyshev_tone.png" in files
        folder = get(base, "/api/2.0/mlflow/artifacts/list", run_id=ev, path="audio/4k_chebyshev_none")["files"]
        audio = [f["path"] for f in folder]
        assert any(p.endswith("output.wav") for p in audio)
        with urllib.request.urlopen(f"{base}/get-artifact?path={audio[0]}&run_uuid={ev}", timeout=30) as r:
            assert r.read(4) == b"RIFF"  # the UI's player gets a real wav
        # the registry version is tagged with its experiment, and the baseline has an alias
        model = get(base, "/api/2.0/mlflow/registered-models/get", name="audiosr")["registered_model"]
        assert any(a["alias"] == "baseline" for a in model.get("aliases", []))
        version = get(base, "/api/2.0/mlflow/registered-models/alias", name="audiosr", alias="baseline")
        version_tags = {t["key"]: t["value"] for t in version["model_version"]["tags"]}
        assert version_tags["dvc.exp_name"] == "workspace" and version_tags["overrides"] == "none"
    finally:
        server.terminate()
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    # a clean shutdown: `mlflow server` forwards SIGTERM to its uvicorn workers and exits 0 once they
    # stopped, and nothing is left listening on the port (an orphaned worker would still answer)
    assert code == 0, server.stdout.read()[-3000:]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
