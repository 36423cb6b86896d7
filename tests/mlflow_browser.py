"""The MLflow UI in a real browser (headless Chromium from Debian, driven by selenium), on a project's store:
checks the pages a user meets when comparing two pipeline executions, and can save their screenshots.

    python -m tests.mlflow_browser [--store mlflow.db] [--runs workspace noise-tone] [--screenshots docs]

(`make ui-check`). Needs Debian's `chromium` and `chromium-driver`, and selenium (a dev dependency).
Starts `mlflow ui` on a free loopback port against the store, then checks:
1. the experiment opens on its runs table (not MLflow 3's GenAI pages), one row per pipeline execution,
   the stage runs folded under them;
2. the compare view of the two pipeline runs: the `overrides` tag, the params that differ, the headline
   metrics in their `/` sections, and the example spectrograms and wavs as common artifacts;
3. the model registry: the version of each run tagged with its experiment, the baseline's alias.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ML = "workflowType=machine_learning"  # the UI's "Model training" switch (its default is the GenAI pages)


def available() -> str | None:
    """Why the check cannot run here (None when it can)."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        return "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium: pip install selenium"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_ui(store: Path):
    """`mlflow ui` on a free loopback port against a SQLite store; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store.resolve()}"]
    server = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=store.resolve().parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the MLflow UI did not come up in 2 minutes")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def api(base: str, endpoint: str, body: dict | None = None, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def pipeline_runs(base: str, names: list[str]) -> tuple[str, dict[str, dict]]:
    """The experiment id and the latest finished pipeline run of each DVC experiment name."""
    experiments = api(base, "experiments/search", {"max_results": 100})["experiments"]
    exp = next((e for e in experiments if e["name"] == "audiosr"), None)
    assert exp is not None, "no MLflow experiment 'audiosr' in this store: run the pipeline first"
    runs = {}
    for name in names:
        found = api(
            base,
            "runs/search",
            {
                "experiment_ids": [exp["experiment_id"]],
                "filter": f"tags.`audiosr.run` = 'pipeline' and tags.`dvc.exp_name` = '{name}' "
                "and attributes.status = 'FINISHED'",
                "order_by": ["attributes.start_time DESC"],
                "max_results": 1,
            },
        ).get("runs", [])
        assert found, f"no finished pipeline run of {name!r} in this store"
        runs[name] = found[0]
    return exp["experiment_id"], runs


def legacy(base: str, experiment_id: str, name: str) -> bool:
    """Whether the store holds a `<name>/evaluate` run without a parent (logged before pipeline runs)."""
    found = api(
        base,
        "runs/search",
        {"experiment_ids": [experiment_id], "filter": f"attributes.run_name = '{name}/evaluate'", "max_results": 1000},
    ).get("runs", [])
    return any("mlflow.parentRunId" not in {t["key"] for t in r["data"].get("tags", [])} for r in found)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def page(driver, url: str, expect: list[str], timeout: float = 60) -> str:
    """Open `url` and wait until the page shows every text in `expect`; returns the page's text."""
    driver.get(url)
    deadline, text = time.time() + timeout, ""
    while time.time() < deadline:
        text = driver.find_element("tag name", "body").text
        if all(e in text for e in expect):
            time.sleep(1)  # let the last requests settle before a screenshot
            return driver.find_element("tag name", "body").text
        time.sleep(0.5)
    missing = [e for e in expect if e not in text]
    raise AssertionError(
        f"{driver.current_url}: {missing} not shown after {timeout:.0f} s; the page says:\n{text[:1500]}"
    )


def close_assistant(driver) -> None:
    """Close the MLflow Assistant side panel: it takes a third of the window and hides the compare view's
    list of artifacts."""
    for button in driver.find_elements("css selector", "button[data-component-id='mlflow.assistant.chat_panel.close']"):
        if button.is_displayed():
            button.click()
            time.sleep(1)


def check(base: str, names: list[str], screenshots: Path | None = None) -> list[str]:
    """Run the checks on the UI at `base`; returns what was checked, one line each (raises on a failure)."""
    experiment_id, runs = pipeline_runs(base, names)
    a, b = (runs[n] for n in names)
    tags_b = {t["key"]: t["value"] for t in b["data"]["tags"]}
    done = []
    if screenshots:
        screenshots.mkdir(parents=True, exist_ok=True)
    driver = browser()
    try:
        # 1. the experiment opens on its runs, one row per pipeline execution
        text = page(driver, f"{base}/#/experiments/{experiment_id}?{ML}", [*names, "Run Name"])
        assert "/runs" in driver.current_url, f"the experiment opened on {driver.current_url}, not its runs"
        assert "Token Usage" not in text and "Traces\n0" not in text, "the experiment opened on GenAI pages"
        # a store older than the pipeline runs holds top-level stage runs of the same names: not checked
        folded = [f"{n}/evaluate" for n in names if f"{n}/evaluate" in text and not legacy(base, experiment_id, n)]
        assert not folded, f"stage runs {folded} are listed at the top level, not folded under their pipeline run"
        done.append(f"runs table: {', '.join(names)} as pipeline rows, their stage runs folded")
        close_assistant(driver)
        if screenshots:
            driver.save_screenshot(str(screenshots / "mlflow_runs.png"))
        # 2. compare the two pipeline runs
        ids = json.dumps([a["info"]["run_id"], b["info"]["run_id"]])
        url = f"{base}/#/compare-runs?runs={urllib.parse.quote(ids)}&experiments=[%22{experiment_id}%22]&{ML}"
        overrides = tags_b.get("overrides", "")
        keys = [{m["key"] for m in r["data"]["metrics"]} for r in (a, b)]
        first = sorted(keys[0] & keys[1])[0]  # the metrics table lists them sorted, the first rows shown
        assert "model_lfr/lsd" in keys[0] & keys[1], "the pipeline runs have no headline metric model_lfr/lsd"
        text = page(driver, url, ["Parameters", "Metrics", "Artifacts", "overrides", overrides, first])
        close_assistant(driver)
        for section in ("Parameters", "Metrics", "Tags"):  # what a user ticks first: only what differs
            driver.find_element("css selector", f"button[aria-label='{section} - Show diff only']").click()
        assert "No common artifacts to display" not in text, "the compare view finds no common artifacts"
        done.append(f"compare view: overrides {overrides!r}, metrics in / sections, common artifacts")
        # open an example spectrogram in the artifact comparison, then the page with it
        items = [e for e in driver.find_elements("xpath", "//*[contains(text(), 'spectrogram_')]") if e.is_displayed()]
        assert items, "no example spectrogram among the common artifacts"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", items[0])
        shown = items[0].text
        items[0].click()
        time.sleep(3)
        images = [  # the previews are blobs fetched from each run's artifacts
            i
            for i in driver.find_elements("css selector", "img")
            if (i.get_attribute("src") or "").startswith("blob:")
            and i.is_displayed()
            and driver.execute_script("return arguments[0].naturalWidth", i) > 0
        ]
        assert len(images) >= 2, "the spectrogram did not open side by side for both runs"
        done.append(f"compare view: {shown} shown side by side ({len(images)} images)")
        if screenshots:  # the whole compare page: a window as tall as its content
            driver.set_window_size(1600, 2000)
            top = driver.find_element("xpath", "//*[starts-with(text(), 'Comparing ')]")
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", top)
            time.sleep(2)
            driver.save_screenshot(str(screenshots / "mlflow_compare.png"))
            driver.set_window_size(1600, 1000)
        # 3. the registry: versions tagged with their experiment, the baseline's alias
        text = page(driver, f"{base}/#/models/audiosr?{ML}", ["audiosr", "Version"])
        close_assistant(driver)
        aliases = api(base, "registered-models/get", name="audiosr")["registered_model"].get("aliases", [])
        names_aliased = {x["alias"] for x in aliases}
        expected = {"baseline" if n == "workspace" else n for n in names}
        assert expected & names_aliased, f"no registry alias for {sorted(expected)}"
        assert any(x in text for x in names_aliased), "the registry page shows no alias"
        done.append(f"registry: aliases {sorted(names_aliased)}")
        if screenshots:
            driver.save_screenshot(str(screenshots / "mlflow_registry.png"))
    finally:
        driver.quit()
    # what the charts plot: no metric of a training run starts again at step 0 (an old summary re-log)
    for name in names:
        children = api(
            base,
            "runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"tags.`mlflow.parentRunId` = '{runs[name]['info']['run_id']}'",
            },
        )["runs"]
        for child in children:
            stage = {t["key"]: t["value"] for t in child["data"]["tags"]}.get("stage", "")
            if not stage.startswith("train_"):  # a data stage's counts are per split ("train/segments")
                continue
            for m in child["data"].get("metrics", []):
                if m["key"].startswith(("val/", "train/")):
                    history = api(base, "metrics/get-history", run_id=child["info"]["run_id"], metric_key=m["key"])
                    steps = [h["step"] for h in history["metrics"]]
                    assert 0 not in steps, f"{child['info']['run_name']}: {m['key']} is logged at step 0"
    done.append("charts: no training metric logged again at step 0")
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("mlflow.db"), help="the SQLite store (default: mlflow.db)")
    ap.add_argument("--runs", nargs=2, default=["workspace", "noise-tone"], help="two DVC experiment names")
    ap.add_argument("--screenshots", type=Path, help="save the pages' screenshots into this folder")
    args = ap.parse_args()
    why = available()
    if why:
        raise SystemExit(f"mlflow_browser: {why}")
    if not args.store.exists():
        raise SystemExit(f"mlflow_browser: {args.store}: no such store; run the pipeline first (make run)")
    with mlflow_ui(args.store) as base:
        for line in check(base, args.runs, args.screenshots):
            print(f"ok: {line}")


if __name__ == "__main__":
    main()
