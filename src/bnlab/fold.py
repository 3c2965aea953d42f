"""`bnlab fold`: a stored BN run, BN folded into its Linear layers, exported as a plain MLP."""

from __future__ import annotations

from pathlib import Path

from . import data
from .errors import ConfigError
from .outputs import check_target, write_with
from .store import Store


def fold_run(store: str | Path, run_id: str | None, out: str | Path, data_dir=None) -> dict:
    """Export a stored BN run folded into a plain MLP (Linear/ReLU only) as a torch file holding
    `state_dict` (for nn.Sequential(Linear, ReLU, ..., Linear)), `dims`, `run_id`, `spec` and the
    largest |folded − unfolded| logit on the test set. Runs keep parameters with final probe 'inference'."""
    import torch

    from .config import PROFILE
    from .core import final_probes as fp

    store = _existing_store(store)  # before anything is created
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the folder of --out {out} ({e.strerror}); pass another --out"
        ) from None
    check_target(out, "--out")
    with Store(store) as st:
        if run_id is None or st.model(run_id) is None:
            have = st.models()
            what = f"run {run_id!r} has no stored parameters" if run_id else "give a RUN_ID"
            raise ConfigError(
                f"{what}; runs with parameters: {', '.join(have[:5]) or 'none'}"
                f"{' …' if len(have) > 5 else ''} (bnlab study overhead keeps them)"
            )
        spec, m = st.model(run_id)
    eps = PROFILE[spec.profile].bn_eps
    x = torch.tensor(data.load(spec.dataset, data_dir).x_test[: spec.test_limit])
    plain, folded = (
        fp.to_module(m, spec.placement, eps),
        fp.to_module(fp.fold(m, spec.placement, eps), spec.placement, eps),
    )
    with torch.inference_mode():
        err = float((plain(x) - folded(x)).abs().max())
    dims = [m["W0"].shape[0]] + [m[f"W{i}"].shape[1] for i in range(sum(k.startswith("W") for k in m))]
    blob = dict(
        state_dict=folded.state_dict(), dims=dims, run_id=run_id, spec=spec.to_json(), max_abs_err=err
    )
    write_with(out, lambda tmp: torch.save(blob, tmp))
    return dict(path=out, max_abs_err=err, dims=dims, spec=spec)


def _existing_store(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no store at {p}; run a study first or pass --store")
    return p
