"""Running RunSpecs: plan stacks (jobs), train them on this machine (local, with pool_data and tuning)
or on a Ray cluster (ray_backend); bnlab.api commits each finished run to the store."""
