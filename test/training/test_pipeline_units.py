"""Pipeline pieces without a network or a validator run: the refusal rules applied to a validator
report, the published figures and default model of the final manifest, the evaluation-set file
format, subset spacing, and the pipeline config's path resolution and overrides."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from alphanet.__main__ import main
from alphanet.errors import UserError
from alphanet.export.manifest import build_manifest, build_model_entry, validate_manifest
from alphanet.models import complexity
from alphanet.pipeline.config import REPO_ROOT, load_pipeline_config, source_kind
from alphanet.pipeline.dataset_file import MAGIC, EvalTensors, read_dataset_file, write_dataset_file
from alphanet.pipeline.family import Member
from alphanet.pipeline.members import MemberResult, evenly_spaced
from alphanet.pipeline.runner import final_manifest
from alphanet.pipeline.validation import judge
from alphanet.space import load_space
from pipeline_helpers import FMNIST_PIPELINE

SPACE = load_space("fashion_mnist")
CFG = load_pipeline_config(FMNIST_PIPELINE, ["run_dir=/tmp/unused"])


def _result(name: str, top1: float = 0.5, tmp: Path | None = None) -> MemberResult:
    arch = SPACE.min_arch() if name.endswith("min") else SPACE.max_arch()
    cx = complexity(SPACE, arch, 10)
    result = MemberResult(Member(name.split("-")[-1], name, arch, cx.mflops, cx.params, "named"))
    result.pytorch = {"top1": top1, "top5": 0.9, "samples": 1000}
    result.pytorch_on_validation_set = {"top1": top1, "top5": 0.9, "samples": 100}
    if tmp is not None:
        onnx = tmp / f"{name}.onnx"
        onnx.write_bytes(name.encode())
        result.entry = build_model_entry(
            name=name, onnx_file=onnx, mflops=cx.mflops, params=cx.params, data=SPACE.data,
            resolution=arch.resolution, labels=[str(i) for i in range(10)], space_name=SPACE.name, arch=arch,
            opset=17, top1=top1, evaluation={"dataset": "fashion-mnist", "split": "test", "samples": 100},
        )  # fmt: skip
    return result


def _model_report(name: str, *, diff=1e-6, measured=0.5, ok=True, problems=(), latency=True, top1=True):
    report = {"name": name, "ok": ok, "problems": list(problems), "warnings": [], "executionProvider": "cpu"}
    if diff is not None:
        report["reference"] = {
            "file": f"{name}.reference.json",
            "maxAbsDiff": diff,
            "tolerance": 1e-4,
            "ok": True,
        }
    if top1:
        report["top1"] = {
            "measured": measured,
            "top5": 0.9,
            "manifest": 0.5,
            "delta": 0,
            "samples": 100,
            "ok": ok,
        }
    if latency:
        report["latencyMs"] = {"p50": 1.5, "p95": 2.5, "samples": 10}
    return report


def test_judge_accepts_matching_models_and_refuses_with_reasons():
    names = ["fm-min", "fm-max", "fm-a", "fm-b", "fm-c", "fm-d"]
    results = [_result(n) for n in names]
    report = {
        "ok": False,
        "problems": [],
        "models": [
            _model_report("fm-min"),
            _model_report("fm-max", measured=0.501),  # exactly 0.1 point: still accepted (inclusive)
            _model_report(
                "fm-a", diff=3e-4, ok=False, problems=["reference output differs by 3e-4 (> 1e-4)"]
            ),
            _model_report(
                "fm-b", measured=0.52, ok=False, problems=["top-1 0.5200 differs from the manifest's"]
            ),
            _model_report("fm-c", diff=None, ok=True),
            _model_report("fm-d", ok=False, problems=["session creation failed: boom"], top1=False),
        ],
    }
    judge(results, report, CFG)
    by_name = {r.member.name: r for r in results}
    assert by_name["fm-min"].reasons == [] and by_name["fm-max"].reasons == []
    assert by_name["fm-max"].validation["top1Delta"] == pytest.approx(0.001)
    assert by_name["fm-min"].validation["latencyMs"] == {"p50": 1.5, "p95": 2.5, "samples": 10}
    assert by_name["fm-a"].reasons == ["ONNX output differs from PyTorch by 3.000e-04 (> 0.0001)"]
    assert by_name["fm-b"].reasons == [
        "onnxruntime-node top-1 0.5200 differs from PyTorch's 0.5000 by 2.00 points (> 0.1)"
    ]
    assert by_name["fm-c"].reasons == ["output parity was not checked (no reference result)"]
    assert by_name["fm-d"].reasons == [
        "session creation failed: boom",
        "top-1 was not re-measured in onnxruntime-node",
    ]
    assert [r.accepted for r in results] == [False] * 6  # no entry exported in this unit test


def test_judge_refuses_everything_on_a_zoo_level_problem_or_a_missing_model():
    results = [_result("fm-min"), _result("fm-max")]
    judge(
        results,
        {"ok": False, "problems": ["manifest.json invalid"], "models": [_model_report("fm-min")]},
        CFG,
    )
    assert results[0].reasons == ["manifest.json invalid"]
    assert results[1].reasons == ["manifest.json invalid"]
    results = [_result("fm-min")]
    judge(results, {"ok": True, "problems": [], "models": []}, CFG)
    assert results[0].reasons == ["the validator did not report on this model"]


def _tensors(n: int, full: bool) -> EvalTensors:
    return EvalTensors(
        images=torch.randn(n, 1, 28, 28),
        labels=torch.arange(n) % 10,
        classes=10,
        class_names=[str(i) for i in range(10)],
        dataset="fashion-mnist",
        split="test",
        full_split=full,
        split_size=1000 if not full else n,
    )


def test_final_manifest_figures_latency_and_default_model(tmp_path):
    accepted, refused = _result("fm-min", 0.5, tmp_path), _result("fm-max", 0.6, tmp_path)
    judge([accepted], {"problems": [], "models": [_model_report("fm-min", measured=0.5005)]}, CFG)
    refused.reasons = ["refused for the test"]
    say = []
    cfg = {**CFG, "zoo": {**CFG["zoo"], "default_model": "max"}}
    staged = build_manifest(zoo_name="fm", description="d", models=[accepted.entry, refused.entry])
    manifest = final_manifest([accepted, refused], _tensors(100, True), cfg, staged, "host-x", say.append)
    assert manifest["zoo"] == staged["zoo"]  # built once: publishing amends the staging manifest
    validate_manifest(manifest)
    (model,) = manifest["models"]
    assert model["top1"] == 0.5005 and model["evaluation"]["runtime"] == "onnxruntime-node"
    assert model["latencyMs"] == {"p50": 1.5, "p95": 2.5, "batchSize": 1, "host": "host-x"}
    assert "defaultModel" not in manifest and "was refused" in say[0]
    # Validated on a subset: the PyTorch figure on the whole split is published.
    manifest = final_manifest([accepted], _tensors(100, False), CFG, staged, "h", say.append)
    assert manifest["models"][0]["top1"] == 0.5 and manifest["models"][0]["evaluation"]["samples"] == 1000
    assert manifest["models"][0]["evaluation"]["runtime"] == "pytorch"
    with pytest.raises(UserError, match="not a member"):
        final_manifest([accepted], _tensors(100, True), {**CFG, "zoo": {**CFG["zoo"], "default_model": "a9"}},
                       staged, "h", say.append)  # fmt: skip


def test_dataset_file_layout(tmp_path):
    tensors = _tensors(7, False)
    path = tmp_path / "eval.azdata"
    size = write_dataset_file(path, tensors, SPACE.data)
    raw = path.read_bytes()
    assert raw[:8] == MAGIC and len(raw) == size
    (header_length,) = struct.unpack("<I", raw[8:12])
    assert (12 + header_length) % 4 == 0
    header, images, labels = read_dataset_file(path)
    assert header == json.loads(raw[12 : 12 + header_length])
    assert header["shape"] == [7, 1, 28, 28] and header["labelDtype"] == "int32" and header["classes"] == 10
    assert header["input"] == {
        "channels": 1,
        "size": 28,
        "mean": [0.286],
        "std": [0.353],
        "resizeShortSide": 28,
        "interpolation": "bilinear",
    }
    assert "7 of 1000, evenly spaced" in header["description"]
    assert (images == tensors.images.numpy()).all() and (labels == tensors.labels.numpy()).all()
    assert len(raw) == 12 + header_length + 7 * 28 * 28 * 4 + 7 * 4


def test_evenly_spaced_subsets_cover_the_range():
    assert evenly_spaced(10, 20) == list(range(10))
    assert evenly_spaced(50000, 2000)[:3] == [0, 25, 50] and evenly_spaced(50000, 2000)[-1] == 49999
    assert len(evenly_spaced(50000, 2000)) == 2000
    assert evenly_spaced(100, 1) == [0]


def test_config_paths_are_relative_to_the_repository_root_and_overrides_apply():
    cfg = load_pipeline_config(
        FMNIST_PIPELINE, ["run_dir=runs/x", "source.train.config=null", "source.checkpoint=/abs/ckpt.pt"]
    )
    assert cfg["run_dir"] == str(REPO_ROOT / "runs" / "x")
    assert cfg["publish"]["zoo_dir"] == str(REPO_ROOT / "models")
    assert cfg["family"]["search"]["config"] == str(REPO_ROOT / "training/configs/search/fashion_mnist.yaml")
    assert source_kind(cfg) == "checkpoint" and cfg["source"]["checkpoint"] == "/abs/ckpt.pt"
    official = load_pipeline_config(REPO_ROOT / "training/configs/pipeline/imagenet_official.yaml",
                                    ["source.official=/w.pth.tar"])  # fmt: skip
    assert source_kind(official) == "official" and official["family"]["archs"][0] == "a0"
    with pytest.raises(UserError, match="exactly one of"):
        load_pipeline_config(REPO_ROOT / "training/configs/pipeline/imagenet_official.yaml")
    with pytest.raises(UserError, match="'family' is a section"):
        load_pipeline_config(None, ["zoo.name=x", "run_dir=r", "family=3"])


@pytest.mark.parametrize("command", ["pipeline", "ablation"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "npm run" in out and "--config" in out


def test_search_family_pick_pareto_publishes_every_front_member(tmp_path):
    from alphanet.pipeline.family import family_from_search_results
    from alphanet.space import load_space

    space = load_space("fashion_mnist")
    small, large = space.min_arch(), space.max_arch()

    def entry(arch, mflops, top1):
        return {"arch": {"space": space.name, **arch.to_dict()}, "mflops": mflops, "top1": top1}

    results = tmp_path / "search.json"
    results.write_text(
        json.dumps(
            {
                "space": space.name,
                # Both targets pick the small arch (the large one scored lower on the held-out split
                # at the first target's cost): "targets" merges them into one member.
                "targets": [
                    {"targetMflops": 3.0, "pick": entry(small, 2.23, 0.85)},
                    {"targetMflops": 13.0, "pick": entry(small, 2.23, 0.85)},
                ],
                "paretoFront": [entry(small, 2.23, 0.85), entry(large, 12.05, 0.87)],
            }
        )
    )
    data = json.loads(results.read_text())
    by_target = family_from_search_results(data, space, 10, "fm-", "targets")
    assert [m.arch for m in by_target] == [small]
    front = family_from_search_results(data, space, 10, "fm-", "pareto")
    assert [m.arch for m in front] == [small, large]
    assert [m.name for m in front] == ["fm-2.23m", "fm-12.05m"]
