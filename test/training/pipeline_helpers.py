"""Helpers for the pipeline tests: run the CLI in-process, fast pipeline overrides, a synthetic
supernet checkpoint, and a real server process (server/main.ts) to publish into and reload."""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch
import yaml

from alphanet.__main__ import main
from alphanet.checkpoint import FORMAT_VERSION, save_checkpoint
from alphanet.config import load_config
from alphanet.data.fashion_mnist import CLASSES
from alphanet.models import AlphaNetSupernet
from alphanet.space import load_space

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "training" / "configs"
FMNIST_PIPELINE = CONFIGS / "pipeline" / "fashion_mnist.yaml"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fast_overrides(run_dir: Path, zoo_dir: Path, *extra: str) -> list[str]:
    """Pipeline overrides for seconds-long runs: tiny calibration, few latency runs, one thread."""
    return [
        "--run-dir",
        str(run_dir),
        "--zoo-dir",
        str(zoo_dir),
        "calibration.batches=1",
        "calibration.batch_size=16",
        "evaluation.batch_size=100",
        "validation.latency_runs=3",
        "validation.intra_op_threads=1",
        "validation.batch_size=100",
        f"baselines.dir={run_dir / 'baselines'}",  # hermetic: none unless a test writes some there
        *extra,
    ]


def write_baseline_run(
    root: Path,
    name: str,
    kind: str,
    mflops: float,
    top1: float,
    split: str = "test",
    held_out: tuple[int, int] | None = None,
    held_out_top1: float | None = None,
    recipe: dict | None = None,
) -> Path:
    """A finished ``alphanet train --baseline`` run directory as the model card reads it;
    ``held_out`` (size, seed) is the training images its config held out (none by default);
    ``recipe``: the training config it was trained with (the family's, to compare it with)."""
    run = root / name
    run.mkdir(parents=True)
    config = copy.deepcopy(recipe) if recipe is not None else {"seed": 0}
    if held_out is not None:
        config.setdefault("data", {}).update(holdout_size=held_out[0], holdout_seed=held_out[1])
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    result = {
        "name": name,
        "network": {"kind": kind},
        "mflops": mflops,
        "params": 123456,
        "epochs": 20,
        "steps": 8600,
        "heldOut": {"top1": top1 - 0.001 if held_out_top1 is None else held_out_top1},
        "evaluation": {"dataset": "fashion-mnist", "split": split, "size": 10000, "top1": top1},
    }
    (run / "baseline.json").write_text(json.dumps(result))
    return run


def synthetic_supernet_checkpoint(path: Path, seed: int = 0) -> Path:
    """A Fashion-MNIST supernet with random weights (BN gammas away from zero) as a checkpoint."""
    space = load_space("fashion_mnist")
    torch.manual_seed(seed)
    supernet = AlphaNetSupernet(space)
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
    state = {
        "format_version": FORMAT_VERSION,
        "model": supernet.state_dict(),
        "config": load_config(
            CONFIGS / "fashion_mnist.yaml", ["data.max_val_samples=200", "runtime.threads=1"]
        ),
        "space": space.name,
        "num_classes": 10,
        "classes": list(CLASSES),
        "step": 0,
        "epoch": 0,
    }
    return save_checkpoint(path, state)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``node --import tsx server/main.ts`` on a zoo directory, on a free local port."""

    def __init__(self, zoo_dir: Path, log_path: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            ["node", "--import", "tsx", "server/main.ts"],
            cwd=REPO_ROOT,
            env={
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", ""),
                "ZOO_DIR": str(zoo_dir),
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "GRPC_PORT": "0",
                "EXECUTION_PROVIDER": "cpu",
                "WORKER_THREADS": "1",
                "INTRA_OP_THREADS": "1",
                "WARMUP_RUNS": "2",
                "LOG_LEVEL": "info",
                **(env or {}),
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_ready(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, body = self.get("/readyz")
                if status == 200:
                    return body
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not ready within {timeout}s:\n{self.log()}")

    def wait_for_models(self, names: set[str], timeout: float = 120.0) -> list[dict]:
        """Poll GET /models until exactly ``names`` are listed (a reload has swapped the zoo)."""
        deadline = time.monotonic() + timeout
        models: list[dict] = []
        while time.monotonic() < deadline:
            status, body = self.get("/models")
            models = body.get("models", []) if status == 200 else []
            if {m["name"] for m in models} == names:
                return models
            time.sleep(0.25)
        raise AssertionError(
            f"models {sorted(names)} not served within {timeout}s (got {models}):\n{self.log()}"
        )

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no log line matching {pattern!r} within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
