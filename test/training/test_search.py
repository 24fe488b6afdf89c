"""Evolutionary search operators, archive/front/target logic, constraints, latency table."""

from __future__ import annotations

import json
import random

import pytest
import torch

from alphanet.engine.latency_table import (
    CacheFlusher,
    LatencyTable,
    arch_units,
    build_unit,
    measure_latency_ms,
    space_units,
)
from alphanet.engine.search import (
    Candidate,
    EvolutionarySearch,
    SearchSettings,
    best_under,
    crossover,
    flops_bin,
    mutate,
    pareto_front,
)
from alphanet.engine.search_journal import SearchJournal, journal_path
from alphanet.errors import UserError
from alphanet.export.bn_folding import fold_batchnorm
from alphanet.models import StaticAlphaNet, complexity
from alphanet.space import load_space

SPACE = load_space("fashion_mnist")  # 6.87 .. 42.18 MFLOPs (small_settings: 10 .. 28)


def synthetic_fitness(arch):
    """Deterministic, arch-dependent accuracy: more FLOPs and bigger kernels score higher."""
    mflops = complexity(SPACE, arch).mflops
    top1 = min(1.0, 0.5 + mflops / 40 + sum(arch.kernel_size) / 500)
    return {"top1": top1, "top5": 1.0, "samples": 100}


def small_settings(**overrides) -> SearchSettings:
    values = dict(
        min_mflops=10.0,
        max_mflops=28.0,
        population_size=6,
        mutate_size=4,
        crossover_size=4,
        iterations=4,
        flops_step=1.0,
        seed=0,
    )
    values.update(overrides)
    return SearchSettings(**values)


# ---- operators ---------------------------------------------------------------------------------


def test_mutation_with_probability_one_changes_every_gene_that_can_change():
    rng = random.Random(0)
    arch = SPACE.sample(rng)
    child = mutate(SPACE, arch, 1.0, rng)
    for gene, before, after in zip(SPACE.choices(), SPACE.encode(arch), SPACE.encode(child)):
        if len(gene.options) > 1:
            assert after != before and after in gene.options
        else:
            assert after == before
    assert mutate(SPACE, arch, 0.0, rng) == arch


def test_mutation_draws_uniformly_among_the_other_values():
    rng = random.Random(1)
    arch = SPACE.min_arch()  # mb5 widths {48, 56, 64}: the min is 48
    counts = {56: 0, 64: 0}
    for _ in range(600):
        counts[mutate(SPACE, arch, 1.0, rng).width[5]] += 1
    assert set(counts) == {56, 64} and 240 < counts[56] < 360


def test_crossover_takes_each_gene_from_a_parent():
    rng = random.Random(2)
    a, b = SPACE.min_arch(), SPACE.max_arch()
    assert crossover(SPACE, a, b, 1.0, rng) == a
    assert crossover(SPACE, a, b, 0.0, rng) == b
    child = crossover(SPACE, a, b, 0.5, rng)
    for x, y, z in zip(SPACE.encode(a), SPACE.encode(b), SPACE.encode(child)):
        assert z in (x, y)
    assert child not in (a, b)  # 41 genes at p=0.5: taking all from one parent is ~1e-12


# ---- archive, front, targets ---------------------------------------------------------------------


def _candidate(mflops: float, top1: float) -> Candidate:
    return Candidate(SPACE.min_arch(), mflops, 1, None, "random", 0, top1=top1)


def test_bins_front_and_targets():
    assert flops_bin(203.39, 10) == 200 and flops_bin(206, 10) == 210 and flops_bin(3.13, 0.25) == 3.25
    cands = [_candidate(3.0, 0.80), _candidate(3.5, 0.79), _candidate(4.0, 0.85), _candidate(4.0, 0.86)]
    cands += [_candidate(6.0, 0.84), _candidate(7.0, 0.90)]
    front = pareto_front(cands)
    assert [(c.mflops, c.top1) for c in front] == [(3.0, 0.80), (4.0, 0.86), (7.0, 0.90)]
    assert best_under(cands, 2.9) is None
    assert best_under(cands, 3.9).top1 == 0.80
    assert best_under(cands, 6.5).top1 == 0.86
    assert best_under(cands, 100).top1 == 0.90


# ---- the search loop ---------------------------------------------------------------------------


def test_search_respects_constraints_and_keeps_the_best_per_bin():
    settings = small_settings()
    result = EvolutionarySearch(SPACE, settings, synthetic_fitness).run()
    assert len(result.history) == settings.iterations
    assert result.evaluated[0].origin == "min" or complexity(SPACE, SPACE.min_arch()).mflops < 10.0
    for cand in result.evaluated:
        assert settings.min_mflops <= cand.mflops <= settings.max_mflops
        assert cand.top1 == synthetic_fitness(cand.arch)["top1"]
    for key, best in result.archive.items():
        same_bin = [c for c in result.evaluated if flops_bin(c.mflops, 1.0) == key]
        assert best.top1 == max(c.top1 for c in same_bin)
    origins = {c.origin for c in result.evaluated}
    assert {"random", "mutation", "crossover"} <= origins
    # Evolution improves on the initial population's best for this monotone fitness.
    assert result.history[-1]["bestTop1"] >= result.history[0]["bestTop1"]


def test_search_is_deterministic_and_serialisable():
    first = EvolutionarySearch(SPACE, small_settings(), synthetic_fitness).run()
    second = EvolutionarySearch(SPACE, small_settings(), synthetic_fitness).run()
    assert [c.arch for c in first.evaluated] == [c.arch for c in second.evaluated]
    data = json.loads(json.dumps(first.to_dict(targets=[14.0, 21.0, 1.0])))
    assert data["settings"]["flopsStep"] == 1.0 and data["evaluatedCount"] == len(first.evaluated)
    picks = data["targets"]
    assert (
        picks[0]["pick"]["mflops"] <= 14.0 and picks[1]["pick"]["mflops"] <= 21.0 and picks[2]["pick"] is None
    )
    assert set(picks[0]["pick"]["arch"]) == {
        "space",
        "resolution",
        "width",
        "depth",
        "kernelSize",
        "expandRatio",
    }
    fronts = [c["mflops"] for c in data["paretoFront"]]
    assert fronts == sorted(fronts)


def test_a_population_of_one_still_evolves():
    # The reference evaluates len(pop)//world_size*world_size candidates and crashes on an empty
    # archive; here a single-member population is enough.
    settings = small_settings(population_size=1, mutate_size=1, crossover_size=0, iterations=3)
    result = EvolutionarySearch(SPACE, settings, synthetic_fitness).run()
    assert [h["population"] for h in result.history] == [1, 1, 1]
    assert result.archive


def test_min_arch_seeds_the_population_only_when_feasible():
    low = complexity(SPACE, SPACE.min_arch()).mflops
    inside = EvolutionarySearch(SPACE, small_settings(min_mflops=low), synthetic_fitness).initial_population()
    assert inside[0].arch == SPACE.min_arch() and inside[0].origin == "min"
    outside = EvolutionarySearch(SPACE, small_settings(min_mflops=low + 0.5), synthetic_fitness)
    assert all(c.origin == "random" for c in outside.initial_population())


def test_infeasible_and_invalid_settings_are_user_errors():
    with pytest.raises(UserError, match="outside the space"):
        EvolutionarySearch(SPACE, small_settings(min_mflops=50, max_mflops=60), synthetic_fitness).run()
    with pytest.raises(UserError, match="population_size"):
        EvolutionarySearch(SPACE, small_settings(population_size=0), synthetic_fitness)
    with pytest.raises(UserError, match="mutate_size"):
        EvolutionarySearch(SPACE, small_settings(mutate_size=0, crossover_size=0), synthetic_fitness)
    with pytest.raises(UserError, match="latency"):
        EvolutionarySearch(SPACE, small_settings(max_latency_ms=1.0), synthetic_fitness)
    tight = small_settings(min_mflops=11.9, max_mflops=11.95, max_sampling_attempts=20)
    with pytest.raises(UserError, match="after 20 attempts"):
        EvolutionarySearch(SPACE, tight, synthetic_fitness).run()


# ---- latency table -----------------------------------------------------------------------------


def fake_table() -> LatencyTable:
    """Unit latency = a distinct function of the unit, so sums are checkable exactly."""
    table = LatencyTable(batch_size=1, threads=1, host="test", cache_flush_mb=0)
    for unit in space_units(SPACE):
        table.entries[unit.key] = 0.001 * (len(unit.key) + sum(v for _, v in unit.values))
    return table


def test_space_units_cover_every_arch_and_predictions_are_exact_sums(tmp_path):
    table = fake_table()
    rng = random.Random(4)
    for _ in range(50):
        arch = SPACE.sample(rng)
        units = arch_units(SPACE, arch)
        assert table.predict(SPACE, arch) == pytest.approx(sum(table.entries[u.key] for u in units))
    arch = SPACE.min_arch()
    kinds = [u.kind for u in arch_units(SPACE, arch)]
    assert kinds == ["resize", "stem"] + ["block"] * sum(arch.depth) + ["head"]  # min resolution 20 != 28
    table.save(tmp_path / "table.json")
    loaded = LatencyTable.load(tmp_path / "table.json")
    assert loaded.entries == table.entries and loaded.host == "test"
    del loaded.entries[arch_units(SPACE, arch)[1].key]
    with pytest.raises(UserError, match="lacks 1 unit"):
        loaded.predict(SPACE, arch)
    (tmp_path / "bad.json").write_text('{"formatVersion": 99}')
    with pytest.raises(UserError, match="invalid latency table"):
        LatencyTable.load(tmp_path / "bad.json")


def test_latency_constraint_is_enforced_exactly():
    table = fake_table()
    latencies = sorted(table.predict(SPACE, SPACE.sample(random.Random(i))) for i in range(40))
    limit = latencies[len(latencies) // 2]
    settings = small_settings(min_mflops=0.0, max_mflops=20.0, max_latency_ms=limit)
    search = EvolutionarySearch(SPACE, settings, synthetic_fitness, lambda a: table.predict(SPACE, a))
    result = search.run()
    assert all(c.latency_ms <= limit for c in result.evaluated)
    assert all(c.latency_ms == table.predict(SPACE, c.arch) for c in result.evaluated)
    assert "latencyMs" in result.to_dict()["archive"][0]


def test_units_compose_exactly_the_network():
    rng = random.Random(8)
    for arch in [SPACE.min_arch(), SPACE.max_arch(), SPACE.sample(rng), SPACE.sample(rng)]:
        x = torch.rand(1, 1, 28, 28)
        params = 0
        with torch.no_grad():
            for unit in arch_units(SPACE, arch):
                module, shape = build_unit(unit)
                assert tuple(x.shape[1:]) == shape, unit.key  # each unit consumes its predecessor's output
                x = module.eval()(x)
                params += sum(p.numel() for p in module.parameters())
        assert x.shape == (1, 10)
        assert params == complexity(SPACE, arch).params


def test_fused_blocks_are_their_own_units_and_compose_the_network(tiny_fused_space):
    space = tiny_fused_space
    for arch in [space.min_arch(), space.max_arch(), space.sample(random.Random(2))]:
        units = arch_units(space, arch)
        blocks = [u for u in units if u.kind == "block"]
        fused = [u for u in blocks if dict(u.values).get("f") == 1]
        assert len(fused) == arch.depth[0] + arch.depth[1]  # stages 0 and 1 are fused, the rest not
        assert {u.key for u in units} <= {u.key for u in space_units(space)}
        x = torch.rand(1, 1, 28, 28)
        with torch.no_grad():
            for unit in units:
                module, shape = build_unit(unit)
                assert tuple(x.shape[1:]) == shape, unit.key
                x = module.eval()(x)
        assert x.shape == (1, 10)
    # MBConv and average-pool head keys are unchanged by the fused and gdc flags, so tables
    # measured before them stay valid.
    assert all("f" not in dict(u.values) and "g" not in dict(u.values) for u in space_units(SPACE))


@pytest.mark.parametrize(("space_fixture", "flag"), [("tiny_gdc_space", "g"), ("tiny_flatten_space", "fl")])
def test_a_positional_head_is_its_own_unit_and_composes_the_network(space_fixture, flag, request):
    space = request.getfixturevalue(space_fixture)
    arch = space.max_arch()
    units = arch_units(space, arch)
    assert dict(units[-1].values).get(flag) == 1 and len({"g", "fl"} & set(dict(units[-1].values))) == 1
    x = torch.rand(1, 1, 28, 28)
    params = 0
    with torch.no_grad():
        for unit in units:
            module, shape = build_unit(unit)
            assert tuple(x.shape[1:]) == shape, unit.key
            x = module.eval()(x)
            params += sum(p.numel() for p in module.parameters())
    assert x.shape == (1, 10) and params == complexity(space, arch).params


def test_measured_unit_latencies_roughly_add_up_to_the_whole_network():
    torch.manual_seed(0)
    arch = SPACE.max_arch()
    table = LatencyTable(batch_size=1)
    measured_units = table.measure(arch_units(SPACE, arch), warmup=1, repeats=7)
    assert measured_units == len({u.key for u in arch_units(SPACE, arch)})
    predicted = table.predict(SPACE, arch)
    inputs = torch.rand(1, 1, 28, 28)
    network, _ = fold_batchnorm(StaticAlphaNet(SPACE, arch), inputs)
    actual = measure_latency_ms(
        network, inputs, warmup=2, repeats=15, flush=CacheFlusher(table.cache_flush_mb)
    )
    # The composition itself is exact (test above); wall-clock timing on a shared 2-core host is
    # noisy, so the sum only has to land within a wide band of the measured network.
    assert 0.2 < predicted / actual < 5.0, (predicted, actual)


# ---- resuming an interrupted search ------------------------------------------------------------


class Interrupted(Exception):
    pass


def _counting(fitness, stop_after: int | None = None):
    calls = []

    def counted(arch):
        if stop_after is not None and len(calls) == stop_after:
            raise Interrupted
        calls.append(arch)
        return fitness(arch)

    return counted, calls


def test_an_interrupted_search_resumes_from_its_journal_and_ends_as_an_uninterrupted_one(tmp_path):
    identity = {"weightsSha256": "abc", "searchConfig": {"seed": 0}}
    path = tmp_path / "search.journal.jsonl"
    whole = EvolutionarySearch(SPACE, small_settings(), synthetic_fitness).run()
    fitness, calls = _counting(synthetic_fitness, stop_after=7)
    with pytest.raises(Interrupted):
        EvolutionarySearch(SPACE, small_settings(), fitness, journal=SearchJournal(path, identity)).run()
    assert len(path.read_text().splitlines()) == 1 + 7  # the identity, then one line per evaluation
    with path.open("a") as handle:
        handle.write('{"arch": {"resolution": 2')  # the line a kill cut short
    fitness, resumed_calls = _counting(synthetic_fitness)
    journal = SearchJournal(path, identity)
    assert len(journal.known) == 7
    resumed = EvolutionarySearch(SPACE, small_settings(), fitness, journal=journal).run()
    assert journal.replayed == 7 and len(resumed_calls) == len(whole.evaluated) - 7
    assert set(resumed_calls).isdisjoint(calls)  # nothing evaluated twice
    assert resumed.to_dict(targets=[14.0]) == whole.to_dict(targets=[14.0])
    assert len(SearchJournal(path, identity).known) == len(whole.evaluated)  # the cut line is gone


def test_a_journal_of_other_weights_or_settings_is_started_afresh(tmp_path):
    path = tmp_path / "search.journal.jsonl"
    first = SearchJournal(path, {"weightsSha256": "abc"})
    first.record(SPACE.min_arch(), {"top1": 0.5, "top5": 1.0, "samples": 10})
    assert SearchJournal(path, {"weightsSha256": "abc"}).lookup(SPACE.min_arch())["top1"] == 0.5
    other = SearchJournal(path, {"weightsSha256": "def"})
    assert other.known == {} and path.read_text() == '{"identity": {"weightsSha256": "def"}}\n'
    path.write_text("not json\n")
    assert SearchJournal(path, {"weightsSha256": "def"}).known == {}
    assert journal_path(tmp_path / "search.json") == tmp_path / "search.journal.jsonl"
