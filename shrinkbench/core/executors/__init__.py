"""Executors: who runs a sweep's runs. All of them call `shrinkbench.core.sweep.run_one` (through
`shrinkbench.core.executors.base.work`), and the store is the only coordination, so every
executor gives the same run ids and the same records, finished runs are skipped, and
executors racing on one store neither duplicate nor lose a run.

- `local`: one after another in this process (progress bar, ETA).
- `pool`: N worker processes on this machine.
- `ray`: one Ray task per run, on a running Ray cluster or a local one (`pip install
  shrinkbench[ray]`).
- `slurm`: a Slurm job array through submitit, or submitit's local processes
  (`pip install shrinkbench[slurm]`).

`ray` and `submitit` are imported only when their executor runs.
"""
from __future__ import annotations

import argparse

from shrinkbench.core.executors.base import EXECUTORS, Executor, Runtime, get_executor  # noqa: F401
from shrinkbench.core.executors import local, ray_cluster, slurm  # noqa: F401  (register the executors)

__all__ = ["EXECUTORS", "Executor", "Runtime", "add_arguments", "executor_from_args", "get_executor",
           "runtime_from_args"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The executor flags of `shrinkbench run`."""
    p.add_argument("--executor", default="local",
                   help=f"who runs the runs: {', '.join(EXECUTORS.names())} (default: local)")
    p.add_argument("--workers", type=int, default=None,
                   help="pool: worker processes; ray (local cluster) and slurm (local): runs at once "
                        "(default: one per core)")
    p.add_argument("--loader-workers", type=int, default=0,
                   help="DataLoader worker processes per run for datasets on disk (default 0)")
    g = p.add_argument_group("ray executor")
    g.add_argument("--ray-address", default=None,
                   help="address of a running Ray cluster (default: RAY_ADDRESS, else start a local one)")
    g.add_argument("--gpus-per-run", type=float, default=None,
                   help="GPUs per Ray task, fractions share a GPU (default: 1 on cuda, else 0)")
    g.add_argument("--cpus-per-run", type=int, default=None, help="CPUs per Ray task (default 1)")
    g = p.add_argument_group("slurm executor (submitit)")
    g.add_argument("--slurm-cluster", default="auto", choices=slurm.CLUSTERS,
                   help="slurm, local (subprocesses here), debug (this process), auto (default: slurm)")
    g.add_argument("--slurm-partition", default=None, help="Slurm partition to submit to (default: the cluster's)")
    g.add_argument("--slurm-time", default=None, help="time limit per job: minutes, H:MM:SS or D-HH:MM:SS "
                                                      "(default 24 hours)")
    g.add_argument("--slurm-gpus-per-node", type=int, default=None, help="default: 1 on cuda, else 0")
    g.add_argument("--slurm-cpus-per-task", type=int, default=None, help="default 1 (also the torch threads)")
    g.add_argument("--slurm-mem", type=float, default=None, help="memory per job in GB")
    g.add_argument("--slurm-array-parallelism", type=int, default=None, help="most array jobs running at once")
    g.add_argument("--runs-per-job", type=int, default=None,
                   help="runs per Slurm job (default: 1 on Slurm, runs / workers on local)")


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor named by `--executor`, built from its own flags."""
    name = EXECUTORS.canonical(getattr(args, "executor", "local"))
    options = {}
    if name == "ray":
        options = {"address": args.ray_address, "gpus_per_run": args.gpus_per_run,
                   "cpus_per_run": args.cpus_per_run}
    elif name == "slurm":
        options = {"cluster": args.slurm_cluster, "partition": args.slurm_partition, "time_limit": args.slurm_time,
                   "gpus_per_node": args.slurm_gpus_per_node, "cpus_per_task": args.slurm_cpus_per_task,
                   "mem_gb": args.slurm_mem, "array_parallelism": args.slurm_array_parallelism,
                   "runs_per_job": args.runs_per_job}
    return get_executor(name, **options)


def runtime_from_args(args: argparse.Namespace) -> Runtime:
    """Device, threads per worker, loader workers and retrying, from the command line."""
    from shrinkbench.core.device import check_device_name
    from shrinkbench.core.errors import ConfigError

    workers, loader = getattr(args, "workers", None), getattr(args, "loader_workers", 0)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if loader < 0:
        raise ConfigError(f"--loader-workers must be >= 0, got {loader}")
    return Runtime(device=check_device_name(args.device), threads=args.threads, loader_workers=loader,
                   retry_failed=getattr(args, "retry_failed", False),
                   save_pruned=getattr(args, "save_pruned", False))
