"""The Local backend in this process: training runs flushed and gives train_stack's numbers."""

import torch

from bnlab.config import RunSpec
from bnlab.core.train import train_stack
from bnlab.run.jobs import Progress, plan_stacks
from bnlab.run.local import Local
from helpers import in_thread, learnable_data


def test_results_and_versions_from_the_local_backend():
    """In this process, training runs flushed and gives the numbers train_stack gives in a flushing thread;
    the versions' thread count is the training thread's."""
    data = learnable_data(200, 100)
    specs = [
        RunSpec(norm=n, epochs=2, batch_size=50, seed=s, train_limit=200, test_limit=100)
        for n in ("none", "batch")
        for s in range(2)
    ]

    def ref():
        torch.set_flush_denormal(True)
        return train_stack(specs, data)

    expected = in_thread(ref)

    class DS:  # a Dataset's fields, what Local needs
        name, n_classes = "mnist", 10
        x_train, y_train, x_test, y_test = (
            t.numpy() for t in (data.x_train, data.y_train, data.x_test, data.y_test)
        )

    with Local("cpu") as local:
        [(results, vers)] = list(local.run(plan_stacks(specs, 16), {"mnist": DS}, Progress()))

    def strip(rs):
        return [[{k: v for k, v in e.items() if k != "wall_s"} for e in r.epochs] for r in rs]

    assert strip(results) == strip(expected)  # bit for bit
    assert vers["threads"] == torch.get_num_threads()
    assert local.plan.workers == 1
