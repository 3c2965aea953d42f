"""run.tuning: one stack at a time or side by side, from a measurement (faked here, but for one real
probe)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from bnlab.config import RunSpec
from bnlab.run import tuning
from bnlab.run.local import flushed_each


def _groups(n_groups, K=16, bs=32, epochs=10):
    return [
        [RunSpec(norm="batch", batch_size=bs, epochs=epochs, seed=g * K + s) for s in range(K)]
        for g in range(n_groups)
    ]


def _choose(groups, threads=2, cpus_per_group=None):
    return tuning.choose(
        groups,
        {"mnist": 60000},
        {"mnist": 784},
        {"mnist": 10},
        threads,
        cpus_per_group,
        in_threads=flushed_each,
    )


@pytest.fixture
def fake(monkeypatch):
    calls = []

    def measure(
        group, in_dim, n_classes, threads, workers, cpus, steps=150, side=True, *, in_threads, retune
    ):
        calls.append(side)
        return tuning.Probe(fake.serial, fake.side if side else None, "2026-01-02T03:04:05Z", fake.kept)

    monkeypatch.setattr(tuning, "measure", measure)
    fake.calls, fake.kept = calls, False
    return fake


def test_side_by_side_when_measured_faster(fake):
    fake.serial, fake.side = 0.004, 0.006  # 2 stacks at 0.006 s/step each: 1.33× one stack at 0.004
    plan = _choose(_groups(4))
    assert (plan.workers, plan.cpus) == (2, 1) and plan.side_gain == pytest.approx(4 / 3)
    assert plan.why.startswith("side by side")


def test_one_stack_when_side_by_side_is_slower(fake):
    fake.serial, fake.side = 0.004, 0.009  # hyper-threads: two stacks at once gain nothing
    plan = _choose(_groups(4))
    assert (plan.workers, plan.cpus) == (1, 2) and plan.side_gain < 1 and plan.why.startswith("one stack")


def test_small_jobs_are_not_measured(fake):
    fake.serial, fake.side = 0.004, 0.004
    plan = _choose(_groups(2, K=1, epochs=1))
    assert plan.workers == 1 and fake.calls == [] and "too small" in plan.why


def test_start_up_counts(fake):
    """A job of ~6 s serial (measured) gains 3 s at best from two workers: not more than their start-up."""
    fake.serial, fake.side = 0.0015, 0.0015
    plan = _choose(_groups(2, K=16, bs=128, epochs=2))
    assert plan.workers == 1 and fake.calls == [False]


def test_given_cpus_per_group_and_trivial_cases(fake):
    assert _choose(_groups(4), cpus_per_group=1).workers == 2
    assert _choose(_groups(4), cpus_per_group=2).workers == 1  # one group's worth of threads
    assert _choose(_groups(4), threads=1).workers == 1
    assert _choose(_groups(1)).workers == 1
    assert fake.calls == []


def test_a_kept_measurement_says_so_in_the_plan(fake):
    fake.serial, fake.side, fake.kept = 0.004, 0.006, True
    plan = _choose(_groups(4))
    assert plan.workers == 2
    assert plan.why.endswith("(kept from 2026-01-02T03:04:05Z; --retune measures again)")


def test_a_real_measurement_is_kept_for_another_process_and_restores_threads(tmp_path, monkeypatch):
    """A child process measures and keeps; this process, its in-process cache empty, reads the same
    numbers from the file without measuring."""
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(tmp_path / "tuning.json"))
    child = (
        "import json, torch; from bnlab.run import tuning; from bnlab.run.local import flushed_each; "
        "from bnlab.config import RunSpec; "
        "g = [RunSpec(norm='batch', batch_size=16, epochs=10, seed=s) for s in range(2)]; "
        "p = tuning.measure(g, 784, 10, torch.get_num_threads(), 2, 1, steps=20, in_threads=flushed_each); "
        "print(json.dumps([p.serial_s, p.side_s, p.kept, torch.get_num_threads()]))"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    serial, side, kept, child_threads = json.loads(out.stdout)
    assert serial > 0 and side > 0 and not kept
    threads = torch.get_num_threads()
    assert child_threads == threads  # the child's probe threads restored its count
    monkeypatch.setattr(tuning, "_CACHE", {})
    monkeypatch.setattr(tuning, "_stepper", lambda *a: pytest.fail("measured again"))
    group = _groups(1, K=2, bs=16)[0]
    p = tuning.measure(group, 784, 10, threads, 2, 1, steps=20, in_threads=flushed_each)
    assert (p.serial_s, p.side_s, p.kept) == (serial, side, True)


def _fake_steps(monkeypatch, seconds):
    """Probes that take no time: each stepper reports `seconds[0]` per step and counts itself."""
    calls = []

    def stepper(group, data, threads, steps):
        calls.append(threads)
        return lambda tick: seconds[0]

    monkeypatch.setattr(tuning, "_stepper", stepper)
    monkeypatch.setattr(tuning, "_CACHE", {})
    monkeypatch.setattr(tuning, "_SAID", set())
    return calls


def _measure(retune=False):
    return tuning.measure(_groups(1, K=2)[0], 784, 10, 2, 2, 1, steps=5, in_threads=_in_order, retune=retune)


def _in_order(fns):
    return [f(None) for f in fns]


def test_retune_measures_again_and_replaces_the_kept_one(tmp_path, monkeypatch):
    path = tmp_path / "tuning.json"
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(path))
    seconds = [0.004]
    calls = _fake_steps(monkeypatch, seconds)
    assert (_measure().serial_s, len(calls)) == (0.004, 2)  # serial, then side by side
    monkeypatch.setattr(tuning, "_CACHE", {})
    seconds[0] = 0.002
    assert (_measure().serial_s, len(calls)) == (0.004, 2)  # kept
    monkeypatch.setattr(tuning, "_CACHE", {})
    assert (_measure(retune=True).serial_s, len(calls)) == (0.002, 4)
    monkeypatch.setattr(tuning, "_CACHE", {})
    p = _measure()
    assert (p.serial_s, p.kept, len(calls)) == (0.002, True, 4)
    (entry,) = json.loads(path.read_text())["machines"][tuning.machine()].values()
    assert entry["serial_s"] == 0.002 and entry["side_s"] == 0.002


def test_another_machine_s_measurement_is_not_used_and_both_are_kept(tmp_path, monkeypatch):
    path = tmp_path / "tuning.json"
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(path))
    calls = _fake_steps(monkeypatch, [0.004])
    _measure()
    monkeypatch.setattr(tuning, "_CACHE", {})
    monkeypatch.setattr(tuning, "machine", lambda: "Other CPU | 64 CPUs | torch 9 | bnlab.core 0")
    assert not _measure().kept and len(calls) == 4
    assert len(json.loads(path.read_text())["machines"]) == 2
    assert tuning.CACHE_MACHINES >= 2


def test_the_file_keeps_the_newest_machines_only(tmp_path, monkeypatch):
    path = tmp_path / "tuning.json"
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(path))
    _fake_steps(monkeypatch, [0.004])
    for i in range(tuning.CACHE_MACHINES + 3):
        monkeypatch.setattr(tuning, "_CACHE", {})
        monkeypatch.setattr(tuning, "machine", lambda i=i: f"cpu {i}")
        _measure()
    kept = list(json.loads(path.read_text())["machines"])
    assert kept == [f"cpu {i}" for i in reversed(range(3, tuning.CACHE_MACHINES + 3))]


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", '{"format": 99, "machines": {}}', '{"format": 1}', '{"format": 1, "machines": 3}'],
)
def test_an_unreadable_file_is_said_once_and_measured_over(tmp_path, monkeypatch, capsys, text):
    path = tmp_path / "tuning.json"
    path.write_text(text)
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(path))
    calls = _fake_steps(monkeypatch, [0.004])
    assert not _measure().kept and len(calls) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"bnlab: tuning cache {path} is unreadable (")
    assert err[0].endswith("); measuring again over it")
    assert json.loads(path.read_text())["format"] == tuning.CACHE_FORMAT
    monkeypatch.setattr(tuning, "_CACHE", {})
    assert _measure().kept and capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "entry",
    [
        {"serial_s": "fast"},
        {"serial_s": 0.004, "side_s": "slow", "measured": "x"},
        {"serial_s": 0.0, "side_s": 0.004, "measured": "x"},
        {"serial_s": 0.004, "side_s": -1, "measured": "x"},
        {"serial_s": 0.004, "side_s": float("nan"), "measured": "x"},
        {"serial_s": True, "side_s": 0.004, "measured": "x"},
        {"serial_s": 0.004, "side_s": 0.004},
        "0.004",
    ],
)
def test_a_bad_entry_is_measured_over(tmp_path, monkeypatch, entry):
    path = tmp_path / "tuning.json"
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(path))
    calls = _fake_steps(monkeypatch, [0.004])
    _measure()
    data = json.loads(path.read_text())
    (shape,) = data["machines"][tuning.machine()]
    data["machines"][tuning.machine()][shape] = entry
    path.write_text(json.dumps(data))
    monkeypatch.setattr(tuning, "_CACHE", {})
    assert not _measure().kept and len(calls) == 4


def test_an_unwritable_file_is_said_once_and_the_measurement_still_used(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("BNLAB_TUNING_CACHE", str(tmp_path / "a-file" / "tuning.json"))
    _fake_steps(monkeypatch, [0.004])
    assert _measure().serial_s == 0.004
    monkeypatch.setattr(tuning, "_CACHE", {})
    assert _measure().serial_s == 0.004
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"bnlab: tuning cache {tmp_path}/a-file/tuning.json is not")
    assert err[0].endswith("; this process keeps its measurements")
    assert list(tmp_path.iterdir()) == [tmp_path / "a-file"]  # no temporary file left


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLAB_TUNING_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    calls = _fake_steps(monkeypatch, [0.004])
    _measure()
    monkeypatch.setattr(tuning, "_CACHE", {})
    assert not _measure().kept and len(calls) == 4
    assert list(tmp_path.iterdir()) == []


def test_the_default_file_is_under_home_s_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("BNLAB_TUNING_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    _fake_steps(monkeypatch, [0.004])
    _measure()
    assert (tmp_path / ".cache" / "bnlab" / "tuning.json").is_file()


def test_the_machine_key_names_the_cpu_count_and_torch():
    key = tuning.machine()
    assert f"| {len(os.sched_getaffinity(0))} CPUs |" in key and f"| torch {torch.__version__} |" in key
    assert key.split(" | bnlab.core ")[1].isalnum()
