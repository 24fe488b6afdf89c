"""The pipeline's last stage against a real server (server/main.ts): a publish followed by SIGHUP
swaps the served zoo without a restart, and a reload that cannot be delivered is reported (the zoo
is published all the same)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alphanet.pipeline.reload import ReloadFailed, post_reload
from pipeline_helpers import (
    FMNIST_PIPELINE,
    ServerProcess,
    fast_overrides,
    run_cli,
    synthetic_supernet_checkpoint,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return synthetic_supernet_checkpoint(tmp_path_factory.mktemp("supernet") / "last.pt", seed=1)


def _publish(capsys, checkpoint: Path, run_dir: Path, zoo: Path, archs: str, *extra: str):
    return run_cli(
        capsys, "pipeline", "--config", FMNIST_PIPELINE, "--checkpoint", checkpoint,
        *fast_overrides(run_dir, zoo, "family.mode=named", f"family.archs={archs}", *extra),
    )  # fmt: skip


def test_publish_then_reload_by_sighup_and_by_the_admin_route(checkpoint, tmp_path, capsys, monkeypatch):
    zoo, run_dir = tmp_path / "zoo", tmp_path / "run"
    code, _, stderr = _publish(capsys, checkpoint, run_dir, zoo, "[min,max]")
    assert code == 0, stderr
    server = ServerProcess(zoo, tmp_path / "server.log", env={"ADMIN_TOKEN": "s3cret-token"})
    try:
        assert server.wait_ready()["models"] == 2
        first = server.wait_for_models({"fmnist-min", "fmnist-max"})
        pid_file = tmp_path / "server.pid"
        pid_file.write_text(f"{server.pid}\n")
        code, stdout, stderr = _publish(capsys, checkpoint, run_dir, zoo, "[max]", "--reload-pid", pid_file)
        assert code == 0, stderr
        report = json.loads((run_dir / "pipeline-report.json").read_text())
        assert report["reload"]["ok"] and report["reload"]["results"][0] == {
            "method": "SIGHUP",
            "pid": server.pid,
            "note": "signal sent; the server logs the reload result",
        }
        assert report["stages"][-1]["status"] == "done"
        (model,) = server.wait_for_models({"fmnist-max"})
        assert model["ready"] is True
        before = next(m for m in first if m["name"] == "fmnist-max")
        assert model["top1"] == before["top1"] and model["mflops"] == before["mflops"]
        server.wait_for_log(r"zoo reloaded")
        status, body = server.get("/readyz")
        assert status == 200 and body["models"] == 1

        # The authenticated admin route answers with what now serves.
        url = f"publish.reload_url={server.base}/admin/reload"
        monkeypatch.setenv("ADMIN_TOKEN", "s3cret-token")
        code, stdout, stderr = _publish(capsys, checkpoint, run_dir, zoo, "[min,max]", url)
        assert code == 0, stderr
        (outcome,) = json.loads((run_dir / "pipeline-report.json").read_text())["reload"]["results"]
        assert outcome["status"] == 200 and outcome["method"] == "POST"
        assert {m["name"]: m["ready"] for m in outcome["result"]["models"]} == {
            "fmnist-min": True,
            "fmnist-max": True,
        }
        server.wait_for_models({"fmnist-min", "fmnist-max"})
        # A wrong token is refused by the server (which keeps its zoo), reported as a failed reload.
        with pytest.raises(ReloadFailed, match="HTTP 401.*UNAUTHORIZED"):
            post_reload(f"{server.base}/admin/reload", 30, token="wrong")
        server.wait_for_models({"fmnist-min", "fmnist-max"})
    finally:
        server.stop()


def test_an_undeliverable_reload_is_reported_after_publishing(checkpoint, tmp_path, capsys):
    zoo, run_dir = tmp_path / "zoo", tmp_path / "run"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    code, stdout, stderr = _publish(capsys, checkpoint, run_dir, zoo, "[min]", "--reload-pid", str(gone.pid))
    assert code == 1
    assert json.loads(stdout)["status"] == "reload-failed"
    assert f"no process {gone.pid} to signal" in stderr
    assert json.loads((zoo / "manifest.json").read_text())["models"][0]["name"] == "fmnist-min"
    code, _, stderr = _publish(capsys, checkpoint, run_dir, zoo, "[min]", "--reload-pid", "not-a-pid")
    assert code == 2 and "neither a process id nor a pid file" in stderr
