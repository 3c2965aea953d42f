"""`bnlab plan`: seeds and cost per claim of a study, from its stored runs or a pilot trained now."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from . import api, studies
from .config import parse_seeds
from .errors import ConfigError
from .options import Options
from .run.jobs import group_cost, plan_stacks
from .run.tuning import SLOW_UNIT_S
from .store import Store


def plan_study(
    name: str,
    *,
    effect: float | None = None,
    power: float = 0.8,
    round_seeds: int | None = None,
    pilot_seeds=3,
    train_limit: int | None = None,
    epochs: int | None = None,
    test_limit: int | None = None,
    pilot: bool = True,
    on_pilot: Callable[[str], None] = lambda line: None,
    options: Options | None = None,
    **option_fields,
) -> str:
    """`bnlab plan`: seeds and cost per claim (bnlab.planning.costs), from the study's runs in the store
    (OUT/bnlab.sqlite or `store`), or else (if `pilot`; else a ConfigError) from a pilot trained now into
    OUT/pilot: `pilot_seeds` seeds on the first `train_limit` (default 6000) training images;
    `on_pilot(line)` says what it trains and about how long, before it starts. Returns the plan as text."""
    from .planning.costs import plan_text
    from .studydata import StudyData

    opts = Options.of(options, **option_fields)
    study = studies.get(name)
    out = Path(opts.out or Path("bnlab-out") / study.name)
    store = Path(opts.store) if opts.store else out / "bnlab.sqlite"
    d = None
    if store.is_file():
        with Store(store) as st:
            d = StudyData.load(st, study.name) if st.study(study.name) else None
    if d is not None and d.configs and min(len(c.runs) for c in d.configs) >= 2:
        source = f"the {len(d.runs)} runs of {study.name} in {store}"
    elif not pilot:
        raise ConfigError(
            f"the store {store} holds too few runs of {study.name} to plan from (2 seeds per configuration "
            "needed); run the study first, or pass --pilot to train a pilot"
        )
    else:
        limit = train_limit or 6000
        pilot_opts = dataclasses.replace(opts, out=out / "pilot", store=None)
        specs = study.specs(pilot_seeds, epochs=epochs, train_limit=limit, test_limit=test_limit)
        cost = sum(group_cost(g, limit) for g in plan_stacks(specs, opts.max_stack, study.mix_none))
        secs = cost * SLOW_UNIT_S  # training time on a slow 2-core CPU (run.tuning), evaluation aside
        on_pilot(
            f"bnlab plan: no runs of {study.name} to plan from in {store}; training a pilot first: "
            f"{len(specs)} runs ({len(specs) // len(parse_seeds(pilot_seeds))} configurations × "
            f"{pilot_seeds} seeds) on the "
            f"first {limit} training images into {pilot_opts.out}, about "
            f"{f'{secs:.0f} s' if secs < 120 else f'{secs / 60:.0f} min'} of training on a slow CPU"
        )
        res = api.run_study(
            name,
            seeds=pilot_seeds,
            train_limit=limit,
            epochs=epochs,
            test_limit=test_limit,
            report=False,
            options=pilot_opts,
        )
        with Store(res.store) as st:
            d = StudyData.load(st, study.name)
        source = (
            f"a pilot of {len(d.runs)} runs ({pilot_seeds if isinstance(pilot_seeds, int) else 'given'} "
            f"seeds on the first {limit} training images, {res.counts['trained']} trained now) in "
            f"{res.out}: SDs on fewer images can differ from the full study's; rerun after a real round "
            "for better numbers"
        )
    first = len(parse_seeds(study.seeds))
    return plan_text(d, source, effect=effect, power=power, first=first, round_seeds=round_seeds)
