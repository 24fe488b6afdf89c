"""Atomic zoo publishing (alphanet.pipeline.publish): content-addressed files, the manifest rename as
the single commit point, garbage collection that keeps the previous generation and never touches
other files, crash injection at every step (hooks and SIGKILL), and a concurrent reader that must
never see a manifest naming a missing file or a checksum mismatch."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alphanet.errors import UserError
from alphanet.export.manifest import build_manifest, build_model_entry, check_model_files, validate_manifest
from alphanet.pipeline.publish import OWNED_FILE_RE, TEMP_PREFIX, publish_lock, publish_zoo
from alphanet.space import load_space

SPACE = load_space("fashion_mnist")
LABELS = [f"class {i}" for i in range(10)]
BYSTANDERS = {"README.md": "hand-written notes\n", "manifest.schema.json": "{}\n", "sample.png": "\x89PNG..."}


class Crash(Exception):
    """Raised by a hook to simulate the publisher dying at that step."""


def stage_zoo(directory: Path, generation: int, names=("fm-a", "fm-b")) -> dict:
    """A staged zoo: a small 'ONNX' file and a reference file per model, and its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in names:
        onnx = directory / f"{name}.onnx"
        onnx.write_bytes(f"model {name} generation {generation} ".encode() * 64)
        (directory / f"{name}.reference.json").write_text(
            json.dumps({"generation": generation, "name": name})
        )
        entries.append(
            build_model_entry(
                name=name,
                onnx_file=onnx,
                mflops=1.0 + generation,
                params=1000,
                data=SPACE.data,
                resolution=SPACE.min_arch().resolution,
                labels=LABELS,
                space_name=SPACE.name,
                arch=SPACE.min_arch(),
                opset=17,
                top1=0.5,
                evaluation={"dataset": "fashion-mnist", "split": "test", "samples": 100},
                reference_file=f"{name}.reference.json",
            )
        )
    return build_manifest(zoo_name="test-zoo", description=f"generation {generation}", models=entries)


def assert_consistent(zoo: Path) -> dict:
    """The zoo as a reader sees it: a valid manifest whose every file exists and matches."""
    manifest = json.loads((zoo / "manifest.json").read_text())
    validate_manifest(manifest)
    assert check_model_files(manifest, zoo) == {}
    for model in manifest["models"]:
        assert (zoo / model["reference"]["file"]).is_file()
    return manifest


def generation_of(manifest: dict) -> int:
    return int(manifest["zoo"]["description"].split()[-1])


@pytest.fixture
def zoo(tmp_path) -> Path:
    directory = tmp_path / "zoo"
    directory.mkdir()
    for name, text in BYSTANDERS.items():
        (directory / name).write_text(text)
    return directory


def publish_generation(tmp_path: Path, zoo: Path, generation: int, **kwargs):
    staging = tmp_path / f"staging-{generation}"
    return publish_zoo(stage_zoo(staging, generation), staging, zoo, **kwargs)


def test_publish_writes_content_addressed_files_and_leaves_other_files_alone(tmp_path, zoo):
    result = publish_generation(tmp_path, zoo, 1, side_files={"CARD.md": "card", "chart.png": b"\x89PNG"})
    manifest = assert_consistent(zoo)
    assert generation_of(manifest) == 1
    for model in manifest["models"]:
        assert OWNED_FILE_RE.match(model["file"]) and model["file"].endswith(".onnx")
        assert model["file"] == f"{model['name']}.{model['sha256'][:12]}.onnx"
        assert OWNED_FILE_RE.match(model["reference"]["file"])
    assert sorted(result.written) == sorted(
        [m["file"] for m in manifest["models"]] + [m["reference"]["file"] for m in manifest["models"]]
    )
    for name, text in BYSTANDERS.items():
        assert (zoo / name).read_text() == text
    assert (zoo / "CARD.md").read_text() == "card" and (zoo / "chart.png").read_bytes() == b"\x89PNG"
    assert not [p for p in zoo.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_garbage_collection_keeps_the_previous_generation_only(tmp_path, zoo):
    first = publish_generation(tmp_path, zoo, 1).manifest
    second = publish_generation(tmp_path, zoo, 2)
    first_files = {m["file"] for m in first["models"]} | {m["reference"]["file"] for m in first["models"]}
    assert second.removed == [] and set(second.kept_previous) == first_files
    assert all((zoo / f).is_file() for f in first_files)  # a server still loading generation 1 is safe
    third = publish_generation(tmp_path, zoo, 3)
    assert set(third.removed) == first_files  # two generations back: collected
    assert not any((zoo / f).exists() for f in first_files)
    assert generation_of(assert_consistent(zoo)) == 3
    for name, text in BYSTANDERS.items():
        assert (zoo / name).read_text() == text


def test_republishing_identical_files_reuses_them(tmp_path, zoo):
    publish_generation(tmp_path, zoo, 1)
    again = publish_generation(tmp_path, zoo, 1)
    assert again.written == [] and len(again.reused) == 4 and again.removed == []
    assert_consistent(zoo)


def test_stale_temporaries_and_unreferenced_owned_files_are_collected(tmp_path, zoo):
    publish_generation(tmp_path, zoo, 1)
    stale_tmp = zoo / f"{TEMP_PREFIX}99999-fm-a.0123456789ab.onnx"
    stale_tmp.write_bytes(b"half-written")
    orphan = zoo / "fm-z.0123456789ab.onnx"  # the pattern the publisher owns, referenced by nobody
    orphan.write_bytes(b"orphan")
    foreign = zoo / "notes.onnx"  # not the publisher's pattern: never touched
    foreign.write_bytes(b"someone else's")
    result = publish_generation(tmp_path, zoo, 2)
    assert set(result.removed) == {stale_tmp.name, orphan.name}
    assert foreign.read_bytes() == b"someone else's"


def test_an_invalid_manifest_or_a_mismatched_file_changes_nothing(tmp_path, zoo):
    publish_generation(tmp_path, zoo, 1)
    before = sorted(p.name for p in zoo.iterdir())
    staging = tmp_path / "bad"
    manifest = stage_zoo(staging, 2)
    manifest["models"][0]["top1"] = 1.5
    with pytest.raises(UserError, match="invalid manifest"):
        publish_zoo(manifest, staging, zoo)
    manifest = stage_zoo(staging, 2)
    (staging / "fm-a.onnx").write_bytes(b"tampered after the manifest was built")
    with pytest.raises(UserError, match="does not match the sha256"):
        publish_zoo(manifest, staging, zoo)
    assert generation_of(assert_consistent(zoo)) == 1
    assert sorted(p.name for p in zoo.iterdir()) == before


def test_a_second_publisher_is_refused_while_the_lock_is_held(tmp_path, zoo):
    with publish_lock(zoo):
        with pytest.raises(UserError, match="another publish"):
            publish_generation(tmp_path, zoo, 1)
    publish_generation(tmp_path, zoo, 1)
    assert sorted(p.name for p in zoo.iterdir() if p.name.startswith(".")) == []  # no lock file left


def _all_steps(tmp_path: Path) -> list[str]:
    """Every hook step a publish of generation 3 over generations 1 and 2 goes through."""
    probe = tmp_path / "probe"
    probe.mkdir()
    publish_generation(tmp_path, probe, 1)
    publish_generation(tmp_path, probe, 2)
    steps: list[str] = []
    publish_generation(tmp_path, probe, 3, side_files={"README.md": "card"}, hook=steps.append)
    return steps


def test_a_crash_at_any_step_leaves_a_consistent_zoo(tmp_path):
    steps = _all_steps(tmp_path)
    assert steps[0] == "locked" and steps[-1] == "done"
    assert {"files-durable", "before-commit", "committed", "side-files"} <= set(steps)
    assert any(s.startswith("wrote:") for s in steps) and any(s.startswith("removed:") for s in steps)
    commit_index = steps.index("committed")
    for index, step in enumerate(steps):
        zoo = tmp_path / f"crash-{index}"
        zoo.mkdir()
        (zoo / "README.md").write_text("old card")
        publish_generation(tmp_path, zoo, 1)
        publish_generation(tmp_path, zoo, 2)

        def crash(current: str, target: str = step) -> None:
            if current == target:
                raise Crash(target)

        with pytest.raises(Crash):
            publish_generation(tmp_path, zoo, 3, side_files={"README.md": "new card"}, hook=crash)
        manifest = assert_consistent(zoo)
        assert generation_of(manifest) == (3 if index >= commit_index else 2), step
        if index < commit_index:
            assert (zoo / "README.md").read_text() == "old card"
        # The next publish after the crash succeeds and cleans up what the crash left behind.
        publish_generation(tmp_path, zoo, 4)
        manifest = assert_consistent(zoo)
        assert generation_of(manifest) == 4
        keep = {m["file"] for m in manifest["models"]} | {m["reference"]["file"] for m in manifest["models"]}
        owned = {
            p.name for p in zoo.iterdir() if OWNED_FILE_RE.match(p.name) or p.name.startswith(TEMP_PREFIX)
        }
        previous = owned - keep
        assert len(previous) <= 4, (step, sorted(owned))  # at most the previous generation's files


_KILL_TARGET = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from test_publish import stage_zoo
from alphanet.pipeline.publish import publish_zoo

work, zoo = Path(sys.argv[1]), Path(sys.argv[2])
generation = int(sys.argv[4])
while True:
    generation += 1
    staging = work / f"staging-{generation % 3}"
    publish_zoo(stage_zoo(staging, generation), staging, zoo)
    print(generation, flush=True)
"""


def test_sigkill_at_random_moments_never_breaks_the_zoo(tmp_path, zoo):
    publish_generation(tmp_path, zoo, 1)
    script = tmp_path / "publisher.py"
    script.write_text(_KILL_TARGET)
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    last, published = 1, 0
    for _ in range(6):
        process = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path),
                str(zoo),
                str(Path(__file__).parent),
                str(last * 10),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        # Wait for its first completed publish (start-up varies with load), then kill it at a
        # random moment of the following ones.
        ready, _, _ = select.select([process.stdout], [], [], 120)
        assert ready, "the publisher never completed a publish"
        first = process.stdout.readline().split()
        time.sleep(rng.random() * 0.4)
        process.send_signal(signal.SIGKILL)
        completed = first + process.stdout.read().split()
        process.wait()
        published += len(completed)
        generation = generation_of(assert_consistent(zoo))
        # The zoo holds the last completed publish, or the one the kill interrupted after its commit.
        assert generation >= (int(completed[-1]) if completed else last)
        assert generation <= (int(completed[-1]) + 1 if completed else last * 10 + 1)
        last = generation
    assert published > 0  # the kills did land between and inside publishes
    publish_generation(tmp_path, zoo, 2)
    assert generation_of(assert_consistent(zoo)) == 2
    for name, text in BYSTANDERS.items():
        assert (zoo / name).read_text() == text


def test_a_concurrent_reader_never_sees_a_mixed_zoo(tmp_path, zoo):
    publish_generation(tmp_path, zoo, 1)
    stop = threading.Event()
    checked = threading.Condition()
    state = {"checks": 0, "failures": []}

    def reader() -> None:
        while not stop.is_set():
            try:
                assert_consistent(zoo)
            except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
                state["failures"].append(repr(exc))
            with checked:
                state["checks"] += 1
                checked.notify_all()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for generation in range(2, 22):
            publish_generation(tmp_path, zoo, generation)
            # Let the reader finish a check against this generation before the next publish, so a
            # slow reader is never two generations behind (the guarantee is one generation).
            with checked:
                target = state["checks"] + 2
                assert checked.wait_for(lambda: state["checks"] >= target, timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert state["failures"] == []
    assert state["checks"] >= 40
    assert generation_of(assert_consistent(zoo)) == 21
