"""Evolutionary architecture search over a trained supernet (reference §7, with its bugs fixed).

Algorithm (AlphaNet ``parallel_supernet_evo_search.py``):

1. Initial population: the smallest sub-network plus uniformly random ones, rejection-sampled
   until their FLOPs lie in ``[min_mflops, max_mflops]`` (and, here, under ``max_latency_ms`` when
   a latency table is given).
2. Every generation: evaluate the population (fitness = top-1 after BN recalibration, on a
   held-out split chosen by the caller), then update a Pareto archive keyed by FLOPs rounded to
   bins of ``flops_step`` MFLOPs, keeping the best top-1 per bin.
3. Next population: ``mutate_size`` mutants of uniformly drawn archive members (every gene
   replaced with probability ``mutate_prob`` by a *different* uniformly drawn value) and
   ``crossover_size`` uniform crossovers of two drawn members (each gene from the first parent
   with probability ``crossover_prob``); children outside the constraints are rejected and redrawn.

Differences from the reference, all deliberate:

* The reference evaluates only ``len(population) // world_size * world_size`` candidates, so a
  population smaller than the GPU count leaves the archive empty and the next ``random.choice``
  crashes. Here every candidate is evaluated and the settings are validated up front (population
  >= 1, and children requested whenever there is a next generation).
* The smallest sub-network seeds the population only when it satisfies the constraints (the
  reference adds it unconditionally); otherwise one more random candidate is drawn.
* Rejection sampling is bounded (``max_sampling_attempts``) and infeasible constraints are
  reported instead of looping forever.
* A candidate seen before is not re-evaluated: fitness is deterministic here because the
  calibration batches are drawn once and shared (the reference re-draws them per candidate).
* An interrupted search resumes: with a journal (`search_journal`), every evaluation is appended
  to a file as it happens, and a rerun of the same search on the same weights replays them.
* Results are returned (and written by the CLI) instead of only logged: archive, exact Pareto
  front over every evaluated candidate, and per-target picks (the best evaluated candidate at or
  below each FLOPs target) used to choose a model family.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

from ..errors import UserError
from ..models.complexity import complexity
from ..space import ArchConfig, SearchSpace
from .evaluate import Accuracy
from .search_journal import SearchJournal

log = logging.getLogger(__name__)

FitnessFn = Callable[[ArchConfig], Accuracy]
LatencyFn = Callable[[ArchConfig], float]


@dataclass(frozen=True)
class SearchSettings:
    """Evolution budget and constraints (defaults: the reference's commented "default" values)."""

    min_mflops: float
    max_mflops: float
    population_size: int = 512
    mutate_size: int = 128
    crossover_size: int = 128
    mutate_prob: float = 0.2
    crossover_prob: float = 0.5
    iterations: int = 20
    flops_step: float = 10.0
    max_latency_ms: float | None = None
    seed: int = 0
    max_sampling_attempts: int = 10_000

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(f"search settings: {message}")

        need(0 <= self.min_mflops <= self.max_mflops, "need 0 <= min_mflops <= max_mflops")
        need(self.population_size >= 1, "population_size must be >= 1")
        need(self.mutate_size >= 0 and self.crossover_size >= 0, "mutate_size/crossover_size must be >= 0")
        need(
            self.iterations == 1 or self.mutate_size + self.crossover_size >= 1,
            "mutate_size + crossover_size must be >= 1 when iterations > 1",
        )
        need(self.iterations >= 1, "iterations must be >= 1")
        need(0.0 <= self.mutate_prob <= 1.0, "mutate_prob must be in [0, 1]")
        need(0.0 <= self.crossover_prob <= 1.0, "crossover_prob must be in [0, 1]")
        need(self.flops_step > 0, "flops_step must be > 0")
        need(self.max_latency_ms is None or self.max_latency_ms > 0, "max_latency_ms must be > 0")
        need(self.max_sampling_attempts >= 1, "max_sampling_attempts must be >= 1")


@dataclass
class Candidate:
    """An evaluated (or about-to-be evaluated) sub-network."""

    arch: ArchConfig
    mflops: float
    params: int
    latency_ms: float | None
    origin: str  # min | random | mutation | crossover
    generation: int
    top1: float | None = None
    top5: float | None = None
    samples: int | None = None

    def to_dict(self, space_name: str) -> dict:
        data = {
            "arch": {"space": space_name, **_camel_arch(self.arch)},
            "mflops": round(self.mflops, 4),
            "params": self.params,
            "top1": self.top1,
            "top5": self.top5,
            "samples": self.samples,
            "origin": self.origin,
            "generation": self.generation,
        }
        if self.latency_ms is not None:
            data["latencyMs"] = round(self.latency_ms, 4)
        return data


def _camel_arch(arch: ArchConfig) -> dict:
    return {
        "resolution": arch.resolution,
        "width": list(arch.width),
        "depth": list(arch.depth),
        "kernelSize": list(arch.kernel_size),
        "expandRatio": list(arch.expand_ratio),
    }


def mutate(space: SearchSpace, arch: ArchConfig, prob: float, rng: random.Random) -> ArchConfig:
    """Replace each gene with probability ``prob`` by a different, uniformly drawn choice."""
    values = space.encode(arch)
    for i, gene in enumerate(space.choices()):
        if rng.random() < prob:
            others = [v for v in gene.options if v != values[i]]
            if others:  # a gene with a single choice cannot change
                values[i] = rng.choice(others)
    return space.decode(values)


def crossover(
    space: SearchSpace, first: ArchConfig, second: ArchConfig, prob: float, rng: random.Random
) -> ArchConfig:
    """Uniform crossover: each gene from ``first`` with probability ``prob``, else from ``second``."""
    a, b = space.encode(first), space.encode(second)
    return space.decode([x if rng.random() < prob else y for x, y in zip(a, b)])


def flops_bin(mflops: float, step: float) -> float:
    """The archive bin of ``mflops`` (Python's round, as the reference)."""
    return round(mflops / step) * step


def pareto_front(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates not dominated in (lower MFLOPs, higher top-1), by increasing MFLOPs."""
    ordered = sorted((c for c in candidates if c.top1 is not None), key=lambda c: (c.mflops, -c.top1))
    front: list[Candidate] = []
    for candidate in ordered:
        if not front or candidate.top1 > front[-1].top1:
            front.append(candidate)
    return front


def best_under(candidates: Iterable[Candidate], target_mflops: float) -> Candidate | None:
    """Highest top-1 among candidates with MFLOPs <= target (ties: fewer MFLOPs)."""
    eligible = [c for c in candidates if c.top1 is not None and c.mflops <= target_mflops]
    if not eligible:
        return None
    return max(eligible, key=lambda c: (c.top1, -c.mflops))


@dataclass
class SearchResult:
    space: str
    settings: SearchSettings
    evaluated: list[Candidate]
    archive: dict[float, Candidate]
    history: list[dict] = field(default_factory=list)

    @property
    def front(self) -> list[Candidate]:
        return pareto_front(self.evaluated)

    def pick_targets(self, targets: Sequence[float]) -> list[tuple[float, Candidate | None]]:
        return [(float(t), best_under(self.evaluated, t)) for t in targets]

    def to_dict(self, targets: Sequence[float] = (), extra: dict | None = None) -> dict:
        settings = {_camel(k): v for k, v in asdict(self.settings).items()}
        data = {
            "space": self.space,
            "settings": settings,
            **(extra or {}),
            "evaluatedCount": len(self.evaluated),
            "history": self.history,
            "archive": [
                {"binMflops": round(b, 4), **c.to_dict(self.space)} for b, c in sorted(self.archive.items())
            ],
            "paretoFront": [c.to_dict(self.space) for c in self.front],
            "targets": [
                {"targetMflops": t, "pick": None if c is None else c.to_dict(self.space)}
                for t, c in self.pick_targets(targets)
            ],
        }
        return data


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class EvolutionarySearch:
    """Runs the search; ``fitness`` turns an arch into accuracy (BN calibration included)."""

    def __init__(
        self,
        space: SearchSpace,
        settings: SearchSettings,
        fitness: FitnessFn,
        latency: LatencyFn | None = None,
        num_classes: int | None = None,
        journal: SearchJournal | None = None,
    ):
        settings.validate()
        if settings.max_latency_ms is not None and latency is None:
            raise UserError("search settings: max_latency_ms needs a latency table")
        self.space = space
        self.settings = settings
        self.fitness = fitness
        self.latency = latency
        self.num_classes = num_classes
        self.journal = journal
        self.rng = random.Random(settings.seed)
        self._evaluated: dict[ArchConfig, Candidate] = {}

    # ---- constraints ---------------------------------------------------------------------
    def describe(self, arch: ArchConfig, origin: str, generation: int) -> Candidate:
        cx = complexity(self.space, arch, self.num_classes)
        latency = None if self.latency is None else float(self.latency(arch))
        return Candidate(arch, cx.mflops, cx.params, latency, origin, generation)

    def feasible(self, candidate: Candidate) -> bool:
        s = self.settings
        if not s.min_mflops <= candidate.mflops <= s.max_mflops:
            return False
        return s.max_latency_ms is None or candidate.latency_ms <= s.max_latency_ms

    def _check_reachable(self) -> None:
        low = complexity(self.space, self.space.min_arch(), self.num_classes).mflops
        high = complexity(self.space, self.space.max_arch(), self.num_classes).mflops
        s = self.settings
        if s.max_mflops < low or s.min_mflops > high:
            raise UserError(
                f"FLOPs range [{s.min_mflops}, {s.max_mflops}] MFLOPs is outside the space "
                f"'{self.space.name}' ([{low:.2f}, {high:.2f}] MFLOPs)"
            )

    def _draw(self, make: Callable[[], ArchConfig], origin: str, generation: int) -> Candidate:
        for _ in range(self.settings.max_sampling_attempts):
            candidate = self.describe(make(), origin, generation)
            if self.feasible(candidate):
                return candidate
        raise UserError(
            f"no {origin} candidate met the constraints after {self.settings.max_sampling_attempts} "
            "attempts; widen the FLOPs range or relax max_latency_ms"
        )

    # ---- evolution -----------------------------------------------------------------------
    def initial_population(self) -> list[Candidate]:
        population = []
        smallest = self.describe(self.space.min_arch(), "min", 0)
        if self.feasible(smallest):
            population.append(smallest)
        else:
            log.info(
                "smallest sub-network (%.2f MFLOPs) is outside the constraints; not seeded", smallest.mflops
            )
        while len(population) < self.settings.population_size:
            population.append(self._draw(lambda: self.space.sample(self.rng), "random", 0))
        return population

    def next_population(self, archive: dict[float, Candidate], generation: int) -> list[Candidate]:
        members = list(archive.values())
        s = self.settings
        children = []
        for _ in range(s.mutate_size):
            children.append(
                self._draw(
                    lambda: mutate(self.space, self.rng.choice(members).arch, s.mutate_prob, self.rng),
                    "mutation",
                    generation,
                )
            )
        for _ in range(s.crossover_size):
            children.append(
                self._draw(
                    lambda: crossover(
                        self.space,
                        self.rng.choice(members).arch,
                        self.rng.choice(members).arch,
                        s.crossover_prob,
                        self.rng,
                    ),
                    "crossover",
                    generation,
                )
            )
        return children

    def evaluate(self, candidate: Candidate) -> Candidate:
        """Fitness of ``candidate`` (cached per arch: calibration batches are fixed; with a journal,
        also across runs of the same search)."""
        known = self._evaluated.get(candidate.arch)
        if known is not None:
            return known
        accuracy = self.journal.lookup(candidate.arch) if self.journal is not None else None
        if accuracy is None:
            accuracy = self.fitness(candidate.arch)
            if self.journal is not None:
                self.journal.record(candidate.arch, accuracy)
        candidate.top1, candidate.top5, candidate.samples = (
            accuracy["top1"],
            accuracy["top5"],
            accuracy["samples"],
        )
        self._evaluated[candidate.arch] = candidate
        return candidate

    def run(self, on_generation: Callable[[int, dict], None] | None = None) -> SearchResult:
        self._check_reachable()
        s = self.settings
        archive: dict[float, Candidate] = {}
        history: list[dict] = []
        population = self.initial_population()
        for generation in range(s.iterations):
            before = len(self._evaluated)
            for candidate in population:
                result = self.evaluate(candidate)
                key = flops_bin(result.mflops, s.flops_step)
                if key not in archive or archive[key].top1 < result.top1:
                    archive[key] = result
            best = max(archive.values(), key=lambda c: c.top1)
            summary = {
                "generation": generation,
                "population": len(population),
                "newlyEvaluated": len(self._evaluated) - before,
                "archiveSize": len(archive),
                "bestTop1": best.top1,
                "bestTop1Mflops": round(best.mflops, 4),
            }
            history.append(summary)
            if on_generation is not None:
                on_generation(generation, summary)
            if generation + 1 < s.iterations:
                population = self.next_population(archive, generation + 1)
        return SearchResult(self.space.name, s, list(self._evaluated.values()), archive, history)
