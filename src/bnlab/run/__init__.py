"""Running RunSpecs: plan stacks (jobs), train them (worker) on this machine (local_backend) or a
Ray cluster (ray_backend), and commit each finished run to the store (driver)."""
