"""A real round trip through a Label Studio server on localhost (marker ``integration``).

``scripts/label-studio-env.sh`` installs ``label-studio`` into its own virtual environment
(``.venv-label-studio/``; it pins its own dependencies) and migrates a template database
once, so each run here only copies it. The test starts the server with a legacy token
for the admin (``--enable-legacy-api-token``: legacy tokens are off for new
organisations), creates a personal access token (JWT) with it, and drives landforge with
that one: ``label export`` -> ``label push`` (tasks with predictions through the SDK) ->
annotations submitted through the API as three simulated annotators (users of the
organisation) -> ``label pull`` -> ``label import``; the imported table must equal what
was submitted. It stops the server it started. Run it with ``make test-integration``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from landforge.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LS_VENV = Path(os.environ.get("LANDFORGE_LABEL_STUDIO_VENV", ROOT / ".venv-label-studio"))
LS_BIN = LS_VENV / "bin" / "label-studio"
TEMPLATE = LS_VENV / "template-data" / "label_studio.sqlite3"
START_TIMEOUT = float(os.environ.get("LANDFORGE_LABEL_STUDIO_START_TIMEOUT", "600"))
ADMIN, PASSWORD, LEGACY = "admin@example.com", "landforge-test-1", "landforge0legacy0token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """A started Label Studio: (url, legacy token); stopped afterwards.

    ``LANDFORGE_LABEL_STUDIO_URL`` + ``LANDFORGE_LABEL_STUDIO_LEGACY_TOKEN`` use a server
    that is already running instead (a fresh one per test run otherwise).
    """
    if os.environ.get("LANDFORGE_LABEL_STUDIO_URL"):
        yield (
            os.environ["LANDFORGE_LABEL_STUDIO_URL"],
            os.environ["LANDFORGE_LABEL_STUDIO_LEGACY_TOKEN"],
        )
        return
    if not LS_BIN.exists():
        pytest.skip(
            f"Label Studio is not installed at {LS_BIN}: run scripts/label-studio-env.sh "
            "(needs the package registry) to run this test"
        )
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("label_studio_sdk")
    data = tmp_path_factory.mktemp("label-studio-data")
    if TEMPLATE.is_file():  # migrated once by scripts/label-studio-env.sh
        shutil.copy(TEMPLATE, data / TEMPLATE.name)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, LATEST_VERSION_CHECK="false", LABEL_STUDIO_BASE_DATA_DIR=str(data),
               DJANGO_DB="sqlite", LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true")  # fmt: skip
    log = open(data / "server.log", "wb")  # noqa: SIM115  (closed in the finaliser)
    proc = subprocess.Popen(
        # --internal-host: listen on localhost only (--host is the URL it tells browsers)
        [str(LS_BIN), "start", "--no-browser", "--host", url, "--internal-host", "127.0.0.1",
         "--port", str(port),
         "--data-dir", str(data), "--username", ADMIN, "--password", PASSWORD,
         "--user-token", LEGACY, "--enable-legacy-api-token"],  # fmt: skip
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = (data / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"label-studio exited with {proc.returncode}:\n{tail}")
            try:
                r = httpx.get(f"{url}/api/current-user/whoami",
                              headers={"Authorization": f"Token {LEGACY}"}, timeout=5)  # fmt: skip
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"label-studio did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(1)
        yield url, LEGACY
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server we started, and its children
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _api(url, token, method, path, **kw):
    import httpx

    r = httpx.request(method, f"{url}{path}", headers={"Authorization": f"Token {token}"},
                      timeout=30, **kw)  # fmt: skip
    assert r.status_code < 300, (path, r.status_code, r.text[:500])
    return r.json() if r.content else None


def test_round_trip_through_label_studio(label_studio, tmp_path, parcels_file, monkeypatch, capsys):
    url, legacy = label_studio
    # a personal access token (JWT refresh token) made with the legacy token
    pat = _api(url, legacy, "POST", "/api/token/")["token"]
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", pat)
    annotators = ["ann1@example.com", "ann2@example.com", "ann3@example.com"]
    tasks_dir = tmp_path / "tasks"
    assert main(["label", "export", str(parcels_file), "--out", str(tasks_dir), "--patch-px", "64",
                 "--annotators", ",".join(annotators), "--batch-size", "4"]) == 0  # fmt: skip
    server = ["--url", url, "--project", "landforge round trip", "--timeout", "30"]
    assert main(["label", "push", str(tasks_dir), *server, "--out", str(tmp_path / "p.json")]) == 0
    receipt = json.loads((tmp_path / "p.json").read_text())
    n_tasks = len(json.loads((tasks_dir / "tasks.json").read_text()))
    assert receipt["imported"] == n_tasks
    # pushing again adds nothing
    assert main(["label", "push", str(tasks_dir), *server]) == 0
    assert "0 tasks imported" in capsys.readouterr().out

    # the simulated annotators are users of the organisation; annotations through the API
    users = {}
    for email in annotators:
        users[email] = _api(url, legacy, "POST", "/api/users/",
                            json={"email": email, "username": email.split("@")[0]})["id"]  # fmt: skip
    from landforge.labelling.options import SimulateOptions
    from landforge.labelling.simulate import SimAnnotator

    sims = {e: SimAnnotator(e, 0.2, ["R", "B", "A", "M", "E"], dict(SimulateOptions().confusion),
                            seed=k) for k, e in enumerate(annotators)}  # fmt: skip
    truth = pd.read_parquet(parcels_file).set_index("parcel_id")["label"]
    project = receipt["project"]
    page = _api(url, legacy, "GET", f"/api/tasks?project={project}&page_size=1000&fields=all")
    server_tasks = page["tasks"] if isinstance(page, dict) else page
    assert len(server_tasks) == n_tasks
    submitted = []
    for t in server_tasks:
        d = t["data"]
        assert t["predictions"] or t.get("total_predictions"), "predictions were not imported"
        for who in filter(None, [d["annotator"], d["checker"]]):
            lab = sims[who].label(truth[d["parcel_id"]])
            _api(url, legacy, "POST", f"/api/tasks/{t['id']}/annotations/",
                 json={"completed_by": users[who], "result": [
                     {"from_name": "class", "to_name": "image", "type": "choices",
                      "value": {"choices": [lab]}}]})  # fmt: skip
            submitted.append((d["parcel_id"], who, lab))

    pulled = tmp_path / "pulled.json"
    assert main(["label", "pull", *server, "--out", str(pulled)]) == 0
    table = tmp_path / "annotations.csv"
    assert (
        main(["label", "import", str(pulled), "--tasks", str(tasks_dir), "--out", str(table)]) == 0
    )
    got = pd.read_csv(table, dtype=str)
    assert sorted(zip(got["parcel_id"], got["annotator"], got["label"], strict=True)) == sorted(
        submitted
    )
    # the cross-check runs on what came back
    assert main(["label", "check", str(table), "--tasks", str(tasks_dir),
                 "--out", str(tmp_path / "check")]) == 0  # fmt: skip
    summary = json.loads((tmp_path / "check" / "check.json").read_text())
    assert summary["annotated"] == n_tasks

    # a wrong token: one line, exit 2
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", "wrong-token-123")
    capsys.readouterr()
    assert main(["label", "pull", *server, "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the token" in err[0], err
