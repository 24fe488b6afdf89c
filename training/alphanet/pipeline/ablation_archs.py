"""Which sub-networks every arm of the distillation ablation evaluates: the smallest, a fixed
middle one, the largest and every member of the published family, recorded once (as JSON) so
arms run at different times evaluate the same archs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from ..export.manifest import arch_from_entry
from ..models import complexity
from ..paths import repo_path
from ..space import ArchConfig, SearchSpace
from .family import named_family
from .publish import read_manifest


def middle_arch(space: SearchSpace) -> ArchConfig:
    """The median choice of every gene (lower median for an even number of choices)."""
    return space.decode([gene.options[(len(gene.options) - 1) // 2] for gene in space.choices()])


def family_archs(cfg: dict[str, Any], space: SearchSpace, num_classes: int, say) -> tuple[list[dict], str]:
    """(arch records, where they came from): min, middle, max + the published family."""
    records: list[dict[str, Any]] = []

    def add(name: str, arch: ArchConfig, role: str) -> None:
        for record in records:
            if record["archConfig"] == arch:
                record["roles"].append(role)
                return
        cx = complexity(space, arch, num_classes)
        records.append(
            {
                "name": name,
                "roles": [role],
                "archConfig": arch,
                "mflops": round(cx.mflops, 4),
                "params": cx.params,
            }
        )

    add("min", space.min_arch(), "min")
    middle = cfg["ablation"]["middle"]
    add(
        "mid" if middle == "mid" else middle,
        middle_arch(space) if middle == "mid" else space.resolve(middle),
        "middle",
    )
    add("max", space.max_arch(), "max")
    origin = "min/middle/max only"
    manifest = read_manifest(Path(cfg["publish"]["zoo_dir"]))
    models = [m for m in (manifest or {}).get("models", []) if m.get("arch", {}).get("space") == space.name]
    members = _valid_members(models, space, say)
    if members:
        for name, arch in members:
            add(name, arch, "family")
        origin = f"published family in {repo_path(cfg['publish']['zoo_dir'])}"
    elif cfg["family"]["mode"] == "named":
        for member in named_family(cfg["family"]["archs"], space, num_classes, cfg["zoo"]["model_prefix"]):
            add(member.name, member.arch, "family")
        origin = "family.archs of the pipeline config (no published zoo of this space)"
    else:
        say(
            f"no published zoo of space '{space.name}' in {cfg['publish']['zoo_dir']}: evaluating min, "
            "middle and max only (run the pipeline first to include the searched family)"
        )
    records.sort(key=lambda r: r["mflops"])
    return records, origin


def _valid_members(models: list[dict[str, Any]], space: SearchSpace, say) -> list[tuple[str, ArchConfig]]:
    """The published models whose arch is one of the space as it is defined now. A zoo published
    from an earlier definition of a space of the same name (other resolutions or widths) would
    otherwise fail every arm's evaluation after its training."""
    members = []
    for model in models:
        arch = arch_from_entry(model["arch"])
        try:
            space.validate(arch)
        except UserError as exc:
            name = model["name"]
            say(
                f"skipping published model {name}: not an arch of space '{space.name}' as defined now ({exc})"
            )
            continue
        members.append((model["name"], arch))
    return members


def jsonable_archs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**{k: v for k, v in r.items() if k != "archConfig"}, "arch": r["archConfig"].to_dict()}
        for r in records
    ]


def arch_records_from_json(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "archConfig": ArchConfig.from_dict(r["arch"])} for r in records]


def union_archs(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Both lists of arch records, one record per arch (roles merged, names kept unique), by MFLOPs."""
    merged = [{**r, "roles": list(r["roles"])} for r in first]
    for record in second:
        same = next((m for m in merged if m["archConfig"] == record["archConfig"]), None)
        if same is not None:
            same["roles"] += [role for role in record["roles"] if role not in same["roles"]]
            continue
        record = {**record, "roles": list(record["roles"])}
        if any(m["name"] == record["name"] for m in merged):
            record["name"] = f"{record['name']}@{record['mflops']:.2f}"
        merged.append(record)
    merged.sort(key=lambda r: r["mflops"])
    return merged
