"""Seeds until decided: train a study in rounds and stop each claim once a valid sequential test decides it.

Round 1 trains the study's seeds (or --seeds); every later round adds `round` seeds (default: as many as the
first) to each configuration that a claim still undecided uses (planning.rounds.needs), up to max_seeds per
configuration (default 4 × the first round). After each round every undecided claim is re-tested with a
group-sequential design (bnlab.stats.sequential: Lan–DeMets O'Brien–Fleming-type spending, Holm across the
claims); the study stops when every claim is supported, contradicted, equivalent or futile (its conditional
power at max_seeds below the plan's threshold: stats.futility), or at max_seeds.

Resuming: the rounds are prefixes of one seed list fixed by the plan, and the store keys runs by
(config_hash, seed); rerunning the same command replays the finished rounds from the store (no training),
trains what the interrupted round lacks, and reaches the same decisions. The plan is stored with the study's
spec, so `bnlab report` shows the rounds again later.

This module sits between api (which hands it a `train` function) and report (which replays the rounds); it
imports neither api nor run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from ..config import RunSpec, parse_seeds
from ..errors import ConfigError
from ..stats import FUTILITY
from ..store import Store
from ..study import Study
from ..studydata import StudyData
from .rounds import SPEC_KEY, History, Plan, history, needs

MAX_SEEDS_FACTOR = 4  # default max_seeds: this many times the first round's seeds


class Trained(Protocol):
    """What a round's `train` returns (api's StudyResult): the store's path and the counts."""

    @property
    def store(self) -> str | Path: ...

    @property
    def counts(self) -> dict: ...


R = TypeVar("R", bound=Trained)


def make_plan(
    study: Study,
    seeds=None,
    max_seeds: int | None = None,
    round_seeds: int | None = None,
    futility: float | None = None,
) -> Plan:
    """The plan of a sequential study: first round `seeds` (default the study's), `round_seeds` more per round
    (default as many as the first round), at most `max_seeds` per configuration (default 4 × the first), a
    claim stopped once its conditional power is below `futility` (default stats.FUTILITY; 0: never)."""
    first = parse_seeds(study.seeds if seeds is None else seeds)
    return Plan(
        first,
        len(first) if round_seeds is None else round_seeds,
        MAX_SEEDS_FACTOR * len(first) if max_seeds is None else max_seeds,
        futility=FUTILITY if futility is None else futility,
    )


def spec_json(study: Study, plan: Plan) -> dict:
    """The study's stored spec, with its plan (what `bnlab report` replays)."""
    return {**study.to_json(), SPEC_KEY: plan.to_json()}


def run_rounds(
    study: Study,
    plan: Plan,
    *,
    specs_for: Callable[[tuple[int, ...]], list[RunSpec]],
    train: Callable[[list[RunSpec], bool], R],
    on_round: Callable[[int, History], None] | None = None,
) -> tuple[R, History]:
    """Train round after round until every claim is decided or the last round is done; returns the final
    `train(specs, report=True)` result and the history. `specs_for(seeds)`: the study's specs for those seeds;
    `train(specs, report)` trains what the store lacks of `specs` (the study's whole membership so far) and
    returns an object with `.store` (the store's path) and `.counts`."""
    union: dict[tuple, RunSpec] = {}
    seed_list, h, d = plan.seed_list(), None, None
    trained, wall = 0, 0.0
    for k, n in enumerate(plan.sizes()):
        specs = specs_for(seed_list[:n])
        if h is not None and d is not None:
            keys = h.undecided()
            specs = [s for s in specs if needs(d, keys, s)]
        union.update(((s.config_hash(), s.seed), s) for s in specs)
        res = train(list(union.values()), False)
        trained, wall = trained + res.counts.get("trained", 0), wall + res.counts.get("wall_s", 0.0)
        with Store(res.store) as st:
            d = StudyData.load(st, study.name)
        h = history(d, plan, looks=k + 1)
        if h is None or len(h.rounds) != k + 1:
            raise ConfigError(
                f"round {k + 1} of {study.name} could not be evaluated: the store lacks some of its "
                f"runs ({res.store}); rerun the command"
            )
        if on_round:
            on_round(k, h)
        if h.finished:
            break
    assert h is not None  # plan.sizes() has at least one round, and each round sets h or raises
    res = train(list(union.values()), True)
    res.counts.update(
        trained=trained,
        skipped=len(union) - trained,
        total=len(union),
        wall_s=wall + res.counts.get("wall_s", 0.0),
    )
    return res, h


def round_line(k: int, h: History, elapsed_s: float | None = None) -> str:
    """One line after round k: its seeds, configurations and every claim's state."""
    r = h.rounds[k]
    states = ", ".join(
        f"({f.key}) {x.verdict if x.verdict != 'undecided' or h.finished else '…'}"
        for f, x in zip(r.findings, h.decisions)
    )
    took = f" [{elapsed_s:.0f} s]" if elapsed_s is not None else ""
    return f"round {k + 1}: {r.n} seeds × {len(r.configs)} configurations — {states}{took}"


def verdict_lines(h: History) -> str:
    """Per claim: its sequential verdict, where it was decided, in words."""
    from .rounds import verdict_text

    return "\n".join(f"({f.key}) {f.title}: {verdict_text(h, i)}" for i, f in enumerate(h.rounds[0].findings))
