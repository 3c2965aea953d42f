"""A study read back from the store: runs grouped into configurations, in grid order.

`StudyData.load` is what findings, figures and the report share: per-run metric
arrays (EPOCH_COLS over epochs, plus step evaluations), configurations (equal
specs but the seed) and the fields that vary across them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import stats
from .config import RunSpec
from .errors import ConfigError
from .records import EPOCH_COLS, STEP_NAMES
from .store import Store

THRESHOLD = {
    "mnist": 0.97,
    "fashion-mnist": 0.85,
}  # "converged": first evaluation at or above this test accuracy


@dataclass
class Run:
    """One stored model: its spec and per-epoch metrics (EPOCH_COLS → array over epochs)."""

    run_id: str
    spec: RunSpec
    diverged_epoch: int | None
    device: str
    versions: dict
    m: dict[str, np.ndarray]
    evals: dict[str, np.ndarray]  # step, test_acc, wall_s at extra evaluations (RunSpec.eval_every)
    probes: dict[str, float] = dataclasses.field(
        default_factory=dict
    )  # final probes (bnlab.core.final_probes): name → value
    traces: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    # probes during training (bnlab.core.probes): (name, layer) → (steps, values)

    def final(self, col: str) -> float:
        """The last epoch's value; NaN for a diverged run."""
        v = self.m[col]
        return float(v[-1]) if len(v) and self.diverged_epoch is None else math.nan

    def to_threshold(self, thr: float) -> tuple[float, float]:
        """(steps, training seconds) at the first evaluation with test accuracy ≥ thr; NaN if never."""
        steps = np.concatenate([self.m["steps"], self.evals["step"]])
        order = np.argsort(steps, kind="stable")
        acc = np.concatenate([self.m["test_acc"], self.evals["test_acc"]])[order]
        wall = np.concatenate([self.m["wall_s"], self.evals["wall_s"]])[order]
        s = stats.steps_to_threshold(steps[order], acc, thr)[0] if len(steps) else math.nan
        return (float(s), float(wall[np.argmax(acc >= thr)])) if np.isfinite(s) else (math.nan, math.nan)

    def roughness(self) -> float:
        """Mean |Δ test accuracy| between consecutive epochs among epochs 2..T (NaN if T < 3 or diverged)."""
        a = self.m["test_acc"][1:]
        return float(np.mean(np.abs(np.diff(a)))) if len(a) >= 2 and self.diverged_epoch is None else math.nan


@dataclass
class Config:
    """The runs of one configuration (equal specs but the seed), ordered by seed."""

    spec: RunSpec
    label: str
    runs: list[Run]

    def finals(self, col: str = "test_acc") -> np.ndarray:
        return np.array([r.final(col) for r in self.runs])

    def gaps(self, train: str = "eval") -> np.ndarray:
        """Train minus test accuracy at the last epoch. train "eval": the trained network in eval mode on the
        training set (train_acc_eval), as it is tested, where stored, else the running mean; "running":
        Keras's running training-mode mean over the last epoch (train_acc), which batch statistics pull down
        for BN."""
        run = self.finals("train_acc")
        tr = (
            run if train == "running" else np.where(np.isfinite(ev := self.finals("train_acc_eval")), ev, run)
        )
        return tr - self.finals("test_acc")

    def loss_noise(self) -> np.ndarray:
        """Per run: log10 of the mean over epochs of the per-step training loss's noise around its trend
        (train_loss_noise); NaN where not stored or diverged."""
        out = []
        for r in self.runs:
            v = r.m.get("train_loss_noise", np.array([]))
            v = v[np.isfinite(v) & (v > 0)]
            out.append(float(np.log10(v.mean())) if len(v) and r.diverged_epoch is None else math.nan)
        return np.array(out)

    def curve(self, col: str) -> np.ndarray:
        """[runs, epochs] with NaN after a run stopped."""
        out = np.full((len(self.runs), self.spec.epochs), np.nan)
        for i, r in enumerate(self.runs):
            v = r.m[col][: self.spec.epochs]
            out[i, : len(v)] = v
        return out

    def to_threshold(self, thr: float) -> tuple[np.ndarray, np.ndarray]:
        st = np.array([r.to_threshold(thr) for r in self.runs]).reshape(-1, 2)
        return st[:, 0], st[:, 1]

    def sec_per_epoch(self) -> np.ndarray:
        return np.array(
            [r.m["wall_s"][-1] / len(r.m["wall_s"]) if len(r.m["wall_s"]) else np.nan for r in self.runs]
        )

    @property
    def n_diverged(self) -> int:
        return sum(r.diverged_epoch is not None for r in self.runs)


def _probes(rows: list[dict]) -> tuple[dict, dict]:
    """Final probes (name → value) and training-time traces ((name, layer) → (steps, values))."""
    final: dict[str, float] = {}
    traces: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for p in rows:
        if p["name"] in STEP_NAMES:
            traces.setdefault((p["name"], int(p["layer"])), []).append((p["step"], p["value"]))
        elif p["layer"] == -1:
            final[p["name"]] = p["value"]
    return final, {k: tuple(np.array(c, float) for c in zip(*sorted(v))) for k, v in traces.items()}


def _threshold(configs: list[Config]) -> float:
    """The convergence threshold of the configurations' (first) dataset."""
    return THRESHOLD.get(configs[0].spec.dataset, 0.97) if configs else 0.97


def _label(spec: RunSpec, fields) -> str:
    names = {"batch_size": "bs", "lr": "lr"}
    parts = [
        str(getattr(spec, f)) if f == "norm" else f"{names.get(f, f)} {getattr(spec, f)}" for f in fields
    ]
    return ", ".join(parts) or "all runs"


@dataclass
class StudyData:
    """A study read from the store: configurations in grid order and the fields that vary."""

    name: str
    meta: dict
    configs: list[Config]
    varying: list[str]
    threshold: float = 0.97

    @classmethod
    def load(cls, store: Store, study: str) -> StudyData:
        meta = store.study(study) or dict(
            name=study, question="", spec={}, command="", created=None, updated=None
        )
        eps, evs, prb = store.epochs(study), store.evals(study), store.probes(study)

        def cols(rows, names):
            return {c: np.array([r[c] for r in rows], float) for c in names}

        groups: dict[str, list[Run]] = {}
        for r in store.runs(study):
            run = Run(
                r["run_id"],
                r["spec"],
                r["diverged_epoch"],
                r["device"],
                r["versions"],
                cols(eps.get(r["run_id"], []), EPOCH_COLS),
                cols(evs.get(r["run_id"], []), ("step", "test_acc", "wall_s")),
                *_probes(prb.get(r["run_id"], [])),
            )
            groups.setdefault(run.spec.config_hash(), []).append(run)
        axes = (meta.get("spec") or {}).get("axes") or {}
        check_one_dataset(study, axes, {g[0].spec.dataset for g in groups.values()}, store.path)
        specs = [g[0].spec.config_dict() for g in groups.values()]
        fields = [f.name for f in dataclasses.fields(RunSpec) if f.name != "seed"]
        varying = [
            f
            for f in dict.fromkeys(["norm", "batch_size", *axes, *fields])
            if f in fields and len({repr(s.get(f)) for s in specs}) > 1
        ]

        def order(runs):  # grid order with norms side by side: the other fields first, then norm
            key = []
            for f in sorted(varying, key=lambda f: f == "norm"):
                v = getattr(runs[0].spec, f)
                v = list(v) if isinstance(v, tuple) else v
                vals = list(axes.get(f, ()))
                key.append(
                    (vals.index(v), 0, "")
                    if v in vals
                    else (math.inf, 0, v)
                    if isinstance(v, (int, float))
                    else (math.inf, 1, repr(v))
                )
            return key

        configs = [
            Config(
                g[0].spec,
                _label(g[0].spec, varying or ("norm", "batch_size")),
                sorted(g, key=lambda r: r.spec.seed),
            )
            for g in sorted(groups.values(), key=order)
        ]
        return cls(study, meta, configs, varying, _threshold(configs))

    def subset(self, **fields) -> StudyData:
        """The configurations with these field values as a study of their own: its varying fields, labels
        and threshold recomputed (e.g. `subset(dataset="mnist")` of a study with a dataset axis)."""
        configs = [c for c in self.configs if all(getattr(c.spec, k) == v for k, v in fields.items())]
        varying = [f for f in self.varying if len({repr(getattr(c.spec, f)) for c in configs}) > 1]
        configs = [
            dataclasses.replace(c, label=_label(c.spec, varying or ("norm", "batch_size"))) for c in configs
        ]
        return StudyData(self.name, self.meta, configs, varying, _threshold(configs))

    def find(self, **fields) -> Config | None:
        return next(
            (c for c in self.configs if all(getattr(c.spec, k) == v for k, v in fields.items())), None
        )

    def values(self, f: str) -> list:
        return list(dict.fromkeys(getattr(c.spec, f) for c in self.configs))

    def label(self, c: Config, exclude=()) -> str:
        return _label(c.spec, [f for f in self.varying if f not in exclude])

    @property
    def shared_timing(self) -> bool:
        """True when members without a norm shared stacks with normed ones (the study's mix_none): then
        they shared its time per step too, so their seconds cannot show what a norm costs."""
        norms = {c.spec.norm for c in self.configs}
        return (self.meta.get("spec") or {}).get("mix_none", True) and "none" in norms and len(norms) > 1

    @property
    def epochs(self) -> str:
        es = sorted({c.spec.epochs for c in self.configs})
        return "/".join(map(str, es)) + (" epoch" if es == [1] else " epochs")

    @property
    def runs(self) -> list[Run]:
        return [r for c in self.configs for r in c.runs]


def check_one_dataset(study: str, axes: dict, datasets: set[str], store_path) -> None:
    """A study's runs in one store are on one dataset unless dataset is one of its axes: its claims compare
    configurations, and two datasets' runs of one configuration would be mixed in them (ConfigError)."""
    if len(datasets) > 1 and "dataset" not in axes:
        raise ConfigError(
            f"study {study!r} in the store {store_path} spans the datasets {', '.join(sorted(datasets))}, "
            "but dataset is not one of its axes, so its report would compare runs on different data; give "
            f"each dataset its own output folder (--out; by default bnlab-out-DATASET/{study}), or put "
            "dataset in the study's [grid]"
        )


def chance(c: Config) -> float:
    """Accuracy of a uniform guess on the configuration's dataset."""
    return 1.0 / 10 if c.spec.dataset in ("mnist", "fashion-mnist") else math.nan


def acc_or_chance(c: Config | None) -> np.ndarray:
    """Final test accuracy per seed, a diverged run counted as chance."""
    if c is None:
        return np.array([])
    return np.array([chance(c) if r.diverged_epoch is not None else r.final("test_acc") for r in c.runs])


def per_step_ms(c: Config | None) -> np.ndarray:
    """Training milliseconds per optimizer step, per run (NaN for a run without epochs)."""
    if c is None:
        return np.array([])
    return np.array(
        [1e3 * r.m["wall_s"][-1] / r.m["steps"][-1] if len(r.m["steps"]) else np.nan for r in c.runs]
    )


def final_probe(c: Config | None, name: str) -> np.ndarray:
    """A final probe's value per run (NaN where missing)."""
    return np.array([r.probes.get(name, math.nan) for r in c.runs]) if c else np.array([])


def ci_text(s: stats.Summary, digits: int) -> str:
    """'mean [95% CI]' with `digits` decimals; '—' without values."""
    if s.n == 0:
        return "—"
    m = f"{s.mean:.{digits}f}"
    return m if not np.isfinite(s.ci_low) else f"{m} [{s.ci_low:.{digits}f}, {s.ci_high:.{digits}f}]"
