"""Executors on real tiny sweeps (LeNet-300-100 on digits): the pool, a real local Ray
cluster and submitit's local executor give the local executor's store record for record;
killed workers lose only their run, which a re-run completes; two executors racing on one
store neither duplicate nor lose a run; failing runs are recorded. GPU paths at the end."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from shrinkbench.core import store as store_module
from shrinkbench.cli import main
from shrinkbench.core.device import (autocast, check_device_name, deterministic_algorithms, precision, resolve_device,
                                slot_gpu, worker_device)
from shrinkbench.core.errors import ConfigError
from shrinkbench.core.executors import Runtime, get_executor
from shrinkbench.core.executors.slurm import parse_time
from shrinkbench.vision.runner import execute
from shrinkbench.core.store import Store
from shrinkbench.core.suite import load_suite
from shrinkbench.core.sweep import pin_threads
from shrinkbench.vision.validate import validate_config

from runner_helpers import metric, tiny_config, write_suite

COST = ("latency", "throughput", "peak_memory", "measured_speedup")
ARGS = ("--workers", "2", "--threads", "1", "--device", "cpu", "--quiet")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

STRATEGIES = '''
import os, time
from pathlib import Path

import torch
from shrinkbench.vision.pruning import Strategy


class Blocker(Strategy):
    """Global magnitude, after writing started-<pid> and waiting (at most 2 min) for `release`."""
    scope = "global"

    def score(self, ctx):
        if ctx.dry_run:  # the check before the sweep: no blocking there
            return {name: w.detach().abs() for name, w in ctx.weights.items()}
        here = Path(__file__).parent
        (here / f"started-{os.getpid()}").write_text("")
        deadline = time.time() + 120
        while not (here / "release").exists() and time.time() < deadline:
            time.sleep(0.02)
        return {name: w.detach().abs() for name, w in ctx.weights.items()}


class Hog(Strategy):
    """Asks the allocator for 2**50 bytes (1 PiB) on the weights' device: out of memory."""
    scope = "global"

    def score(self, ctx):
        device = next(iter(ctx.weights.values())).device
        torch.empty(2**50, dtype=torch.uint8, device=device)
        return {}
'''


# ------------------------------------------------------------------ helpers and fixtures

def records(store: Path) -> dict[str, dict]:
    out = {}
    for path in (store / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        out[record["run_id"]] = record
    return out


def comparable(record: dict) -> dict:
    """Everything a record says about the numbers: config, base model, metrics except
    measured time and memory, the training log without timings."""
    return {"status": record["status"], "config": record["config"], "base": record["base"],
            "metrics": {(m["stage"], m["split"], m["metric"]): m["value"] for m in record["metrics"]
                        if not m["metric"].startswith(COST)},
            "epochs": [{k: v for k, v in e.items() if k != "seconds"} for e in record["epochs"]],
            "layers": record.get("layers")}


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite") / "tiny.toml")


@pytest.fixture(scope="module")
def reference(suite, tmp_path_factory) -> dict[str, dict]:
    """The local executor's store: the reference every other executor must reproduce."""
    store = tmp_path_factory.mktemp("local")
    configs = pin_threads(load_suite(str(suite)).configs, 1)  # as the command line's --threads 1 pins them
    report = get_executor("local").run(configs, Store(store), Runtime("cpu", threads=1), progress=False)
    assert report.count("ok") == 5
    return records(store)


@pytest.fixture(scope="module")
def ray_cluster():
    """One real local Ray cluster (2 CPUs) for the module: Ray takes seconds to start."""
    ray = pytest.importorskip("ray", reason="the ray executor tests need ray (pip install shrinkbench[test])")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


def executor_args(name: str) -> list[str]:
    if name == "slurm":
        pytest.importorskip("submitit", reason="the slurm executor tests need submitit (pip install shrinkbench[test])")
        return ["--executor", "slurm", "--slurm-cluster", "local"]
    return ["--executor", name]


@pytest.fixture
def needs(request):
    """Start the Ray cluster only for the Ray cases of a parametrised test."""
    def get(name: str) -> None:
        if name == "ray":
            request.getfixturevalue("ray_cluster")
    return get


def strategy_suite(tmp_path: Path, strategies: tuple[str, ...], compressions="[1, 2]") -> Path:
    (tmp_path / "strategies.py").write_text(textwrap.dedent(STRATEGIES))
    names = tuple(f'"{tmp_path / "strategies.py"}:{s}"' if s[0].isupper() else f'"{s}"' for s in strategies)
    return write_suite(tmp_path / "suite.toml", strategies=names, compressions=compressions)


# ------------------------------------------------------------------ same store, whichever executor

@pytest.mark.parametrize("name", ["pool", "ray", "slurm"])
def test_executor_gives_the_local_executors_records(name, suite, reference, needs, tmp_path, capsys):
    needs(name)
    store = tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), *executor_args(name), *ARGS]) == 0
    got = records(store)
    assert sorted(got) == sorted(reference), "the same run ids"
    for run_id, record in reference.items():
        assert comparable(got[run_id]) == comparable(record), f"{name}: run {run_id} differs"
    assert len(list((store / "bases").glob("*.pt"))) == 1, "the shared base model was made once"
    assert not list((store / "claims").glob("*.claim"))
    capsys.readouterr()
    assert main(["run", str(suite), "--store", str(store), *executor_args(name), *ARGS]) == 0
    assert "5 already stored, 0 run now" in capsys.readouterr().err
    assert records(store) == got, "a re-run changes nothing"


# ------------------------------------------------------------------ failures

@pytest.mark.parametrize("name", ["pool", "ray", "slurm"])
def test_worker_killed_mid_run_loses_only_that_run_and_a_rerun_completes_it(name, needs, tmp_path):
    needs(name)
    if name == "slurm":
        pytest.importorskip("submitit", reason="the slurm executor tests need submitit")
    suite = strategy_suite(tmp_path, ("global_magnitude", "Blocker"), compressions="[2]")
    configs = load_suite(str(suite)).configs
    blocked = next(c for c in configs if c.strategy.endswith(":Blocker"))
    store = Store(tmp_path / "store")
    options = {"cluster": "local"} if name == "slurm" else {}
    result = {}
    sweep = threading.Thread(target=lambda: result.update(report=get_executor(name, **options).run(
        configs, store, Runtime("cpu", threads=1), workers=2, progress=False)))
    sweep.start()
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("started-*")):
        time.sleep(0.02)
    (marker,) = tmp_path.glob("started-*")
    os.kill(int(marker.name.split("-")[1]), signal.SIGKILL)  # the worker running the blocked run
    sweep.join(timeout=180)
    report = result["report"]
    assert report.count("lost") == 1 and report.count("ok") == 1, report.outcomes
    (lost,) = [o for o in report.outcomes if o.status == "lost"]
    assert lost.run_id == blocked.run_id and "no record" in lost.error
    assert "1 lost" in report.summary()
    assert store.state(blocked.run_id).status == "missing", "no partial record"
    assert not list(store.claims.glob("*.claim")), "the dead worker's claim is cleaned up with the sweep"

    (tmp_path / "release").write_text("")
    again = get_executor("local").run(configs, store, Runtime("cpu", threads=1), progress=False)
    assert [o.run_id for o in again.outcomes if o.status == "ok"] == [blocked.run_id]
    ids = [json.loads(p.read_text())["run_id"] for p in store.runs.glob("*.json")]
    assert sorted(ids) == sorted(c.run_id for c in configs), "nothing lost, nothing duplicated"
    assert not list(store.claims.glob("*.claim"))


def test_two_executors_racing_on_one_store_duplicate_and_lose_nothing(tmp_path):
    """`shrinkbench run --executor ray` starting its own local cluster (another process)
    against the Slurm executor's local jobs (this process), on one store at once."""
    pytest.importorskip("ray", reason="needs ray")
    pytest.importorskip("submitit", reason="needs submitit")
    suite = write_suite(tmp_path / "s.toml", seeds="[0, 1]", base_seeds="[0]", seeding="product")
    configs = pin_threads(load_suite(str(suite)).configs, 1)  # the ray sweep's --threads 1 pins them so
    store = tmp_path / "store"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    ray_sweep = subprocess.Popen([sys.executable, "-m", "shrinkbench.cli", "run", str(suite), "--store", str(store),
                                  "--executor", "ray", *ARGS], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    report = get_executor("slurm", cluster="local").run(configs, Store(store), Runtime("cpu", threads=1),
                                                        workers=2, progress=False)
    _, err = ray_sweep.communicate(timeout=300)
    assert ray_sweep.returncode == 0, err
    ids = [json.loads(p.read_text())["run_id"] for p in (store / "runs").glob("*.json")]
    assert Counter(ids).most_common(1)[0][1] == 1 and set(ids) == {c.run_id for c in configs}
    ray_ran = int(err.rsplit(" run now", 1)[0].rsplit(", ", 1)[1])
    assert ray_ran + report.count("ok") == len(configs), "every run was executed exactly once"
    assert report.count("lost") == report.count("failed") == 0
    assert len(list((store / "bases").glob("*.pt"))) == 1, "the shared base model was made once"


def test_out_of_memory_is_a_failed_record_with_the_reason_and_the_others_run(tmp_path):
    suite = strategy_suite(tmp_path, ("global_magnitude", "Hog"))
    configs = load_suite(str(suite)).configs
    store = Store(tmp_path / "store")
    report = get_executor("local").run(configs, store, Runtime("cpu", threads=1), progress=False)
    assert report.count("ok") == 2 and report.count("failed") == 1, "the sweep went on after it"
    (hog,) = [c for c in configs if c.strategy.endswith(":Hog")]
    record = store.read(hog.run_id)
    assert record["status"] == "failed" and record["metrics"] == []
    assert record["error"].startswith("out of memory: RuntimeError:") and "allocate" in record["error"]
    assert "\n" not in record["error"]


def test_user_error_in_a_worker_stops_the_sweep(tmp_path):
    """A checkpoint that vanishes after the suite was checked: every run would fail alike."""
    checkpoint = tmp_path / "weights.pt"
    from shrinkbench.vision.models import create_model

    torch.save(create_model("lenet_300_100", seed=0).state_dict(), checkpoint)
    suite = write_suite(tmp_path / "s.toml", extra=f'[base]\ncheckpoint = "{checkpoint}"\n')
    configs = load_suite(str(suite)).configs
    checkpoint.write_bytes(b"not a checkpoint")
    from shrinkbench.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a readable torch weights file"):
        get_executor("pool").run(configs, Store(tmp_path / "store"), Runtime("cpu", threads=1), workers=2,
                                 progress=False)


@pytest.mark.parametrize("name,extra", [("ray", "ray"), ("slurm", "slurm")])
def test_missing_package_is_a_one_line_error_saying_what_to_install(name, extra, suite, tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setitem(sys.modules, "ray" if name == "ray" else "submitit", None)  # import fails
    store = tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--executor", name, "--slurm-cluster", "local",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"pip install 'shrinkbench[{extra}]'" in err and err.count("\n") == 1
    assert not store.exists()


@pytest.mark.parametrize("args,message", [
    (["--executor", "rey"], "ray"),
    (["--device", "gpu"], "device must be auto, cpu, cuda or cuda:N"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--executor", "slurm", "--slurm-time", "soon"], "--slurm-time must be minutes"),
    (["--executor", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be >= 0"),
])
def test_bad_executor_flags_are_one_line_errors(args, message, suite, tmp_path, capsys):
    assert main(["run", str(suite), "--store", str(tmp_path / "store"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "store").exists()


def test_slurm_without_slurm_says_how_to_run_locally(suite, tmp_path, capsys, monkeypatch):
    pytest.importorskip("submitit", reason="needs submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    assert main(["run", str(suite), "--store", str(tmp_path / "store"), "--executor", "slurm", "--quiet"]) == 2
    assert "--slurm-cluster local" in capsys.readouterr().err


@pytest.mark.parametrize("text,minutes", [("90", 90), (90, 90), ("1:30:00", 90), ("0:00:30", 1),
                                          ("2-00:00:00", 2880), ("1-12", 2160), (None, None)])
def test_slurm_time_in_minutes(text, minutes):
    assert parse_time(text) == minutes


# ------------------------------------------------------------------ claims: heartbeat and takeover

def write_claim(store: Store, key: str, host: str, pid: int, age_s: float, pidns: str = "") -> Path:
    store.claims.mkdir(parents=True, exist_ok=True)
    path = store.claims / f"{key}.claim"
    path.write_text(json.dumps({"pid": pid, "host": host, "pidns": pidns, "time": time.time() - age_s}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_claim_of_another_machine_is_taken_over_only_when_its_heartbeat_stopped(tmp_path):
    store = Store(tmp_path)
    write_claim(store, "a", "elsewhere", 1, age_s=store_module.CLAIM_STALE_S - 30)
    assert not store.claim("a"), "its owner touched it recently: still working"
    write_claim(store, "b", "elsewhere", 1, age_s=store_module.CLAIM_STALE_S + 30)
    assert store.claim("b"), "not touched for longer than CLAIM_STALE_S: its owner is gone"
    assert json.loads((store.claims / "b.claim").read_text())["pid"] == os.getpid()
    store.release("b")
    assert not (store.claims / "b.claim").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux's /proc to make and see a zombie")
def test_claim_on_this_machine_is_judged_by_its_process(tmp_path):
    import socket

    store = Store(tmp_path)
    ns = os.readlink("/proc/self/ns/pid") if os.path.exists("/proc/self/ns/pid") else ""
    zombie = subprocess.Popen(["true"])  # exits at once; not reaped until wait(): a zombie
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    with subprocess.Popen(["sleep", "30"]) as alive:
        for key, pid in (("live", alive.pid), ("dead", _dead_pid()), ("zombie", zombie.pid)):
            write_claim(store, key, socket.gethostname(), pid, age_s=0, pidns=ns)
        assert not store.claim("live")
        assert store.claim("dead")
        assert store.claim("zombie"), "a killed worker its parent has not reaped yet is dead"
        alive.kill()
    zombie.wait()
    store.release("live")  # not ours: left alone
    assert (store.claims / "live.claim").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_heartbeat_touches_held_claims_until_released(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CLAIM_HEARTBEAT_S", 0.05)
    path = tmp_path / "x.claim"
    path.write_text("{}")
    old = time.time() - 1000
    os.utime(path, (old, old))
    beat = store_module._Heartbeat()
    beat.add(path)
    deadline = time.time() + 10
    while time.time() < deadline and path.stat().st_mtime < old + 500:
        time.sleep(0.02)
    assert path.stat().st_mtime > old + 500, "the heartbeat refreshed the claim"
    beat.remove(path)
    time.sleep(0.2)
    os.utime(path, (old, old))
    time.sleep(0.3)
    assert path.stat().st_mtime == old, "a released claim is no longer touched"


def test_takeover_never_removes_a_claim_that_was_renewed_meanwhile(tmp_path):
    path = tmp_path / "k.claim"
    path.write_text("fresh claim of another process")
    store_module._take_over(path, seen="the stale claim we judged")
    assert path.read_text() == "fresh claim of another process"
    store_module._take_over(path, seen="fresh claim of another process")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ devices (CPU)

def test_device_names_and_worker_mapping():
    assert check_device_name(None) == "auto" and check_device_name("cuda:3") == "cuda:3"
    for bad in ("gpu", "cuda:x", "cuda:", "tpu"):
        with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
            check_device_name(bad)
    assert worker_device("cuda:3", assigned_gpus=1) == "cuda" and worker_device("cuda:3", 0) == "cuda:3"
    assert worker_device("auto", 1) == "auto" and worker_device("cpu", 1) == "cpu"
    assert [slot_gpu("cuda", i, 4) for i in range(6)] == ["0", "1", "2", "3", "0", "1"]
    assert slot_gpu("cuda:1", 0, 4) is None and slot_gpu("cpu", 0, 4) is None and slot_gpu("auto", 1, 1) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_cuda_is_a_one_line_error():
    with pytest.raises(ConfigError, match="no usable CUDA device; use --device cpu or auto"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_deterministic_mode_names_nondeterministic_ops_and_restores_settings():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with deterministic_algorithms(True) as ops:
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        # put_ without accumulate has no deterministic kernel (torch's documented list)
        torch.zeros(3).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
    assert ops == {"put_"}
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    with deterministic_algorithms(False):
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()


def test_amp_is_float16_autocast_on_cuda_only_and_recorded():
    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32
    assert precision(True, cpu) == "float32" and precision(True, torch.device("cuda")) == "float16-mixed"
    a, b = tiny_config(), tiny_config(amp=True)
    assert a.run_id != b.run_id and a.base_id != b.base_id
    assert a.run_id != tiny_config(deterministic=False).run_id


def test_record_says_precision_determinism_and_loader_workers(reference):
    record = next(iter(reference.values()))
    assert record["config"]["deterministic"] is True and record["config"]["amp"] is False
    prov = record["provenance"]
    assert prov["precision"] == "float32" and prov["nondeterministic_ops"] == [] and prov["loader_workers"] == 0


# ------------------------------------------------------------------ GPU paths (need CUDA)

@pytest.mark.gpu
@needs_cuda
def test_cuda_run_is_repeatable_bit_for_bit_with_deterministic_kernels(tmp_path):
    cfg = validate_config(tiny_config(compression=4.0))
    first = execute(cfg, Store(tmp_path / "a"), "cuda")
    second = execute(cfg, Store(tmp_path / "b"), "cuda")
    assert first["status"] == "ok" and first["provenance"]["device"].startswith("cuda:")
    assert comparable(first) == comparable(second)


@pytest.mark.gpu
@needs_cuda
def test_cuda_mixed_precision_runs_and_is_recorded(tmp_path):
    record = execute(validate_config(tiny_config(compression=4.0, amp=True)), Store(tmp_path), "cuda")
    assert record["status"] == "ok" and record["config"]["amp"] is True
    assert record["provenance"]["precision"] == "float16-mixed"
    assert 0 <= metric(record, "post", "test", "top1") <= 100
    with autocast(torch.device("cuda"), True):
        assert torch.nn.Linear(4, 4).cuda()(torch.randn(2, 4, device="cuda")).dtype == torch.float16


@pytest.mark.gpu
@needs_cuda
def test_cuda_latency_waits_for_the_kernels():
    """Timed with synchronisation, a forward pass takes at least as long as its kernels
    (CUDA events); without it, Python would only see the launch."""
    from shrinkbench.core.metrics.cost import time_forward

    model = torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(8)]).cuda().eval()
    x = torch.randn(512, 4096, device="cuda")
    times = time_forward(model, x, warmup=2, repeats=5)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.inference_mode():
        start.record()
        model(x)
        end.record()
    torch.cuda.synchronize()
    assert min(times) >= 0.8 * start.elapsed_time(end) / 1000


@pytest.mark.gpu
@needs_cuda
def test_cuda_out_of_memory_is_recorded_and_the_next_run_gets_its_memory_back(tmp_path):
    suite = strategy_suite(tmp_path, ("global_magnitude", "Hog"))
    configs = load_suite(str(suite)).configs
    store = Store(tmp_path / "store")
    report = get_executor("local").run(configs, store, Runtime("cuda"), progress=False)
    assert report.count("failed") == 1 and report.count("ok") == 2
    (hog,) = [c for c in configs if c.strategy.endswith(":Hog")]
    assert store.read(hog.run_id)["error"].startswith("out of memory: OutOfMemoryError")
    assert torch.cuda.memory_allocated() < 64 * 2**20


@pytest.mark.gpu
@needs_cuda
def test_pool_on_cuda_gives_the_same_records_as_local_on_cuda(suite, tmp_path):
    configs = load_suite(str(suite)).configs
    local = get_executor("local").run(configs, Store(tmp_path / "l"), Runtime("cuda", 1), progress=False)
    pool = get_executor("pool").run(configs, Store(tmp_path / "p"), Runtime("cuda", 1), workers=2, progress=False)
    assert local.count("ok") == pool.count("ok") == 5
    a, b = records(tmp_path / "l"), records(tmp_path / "p")
    assert {k: comparable(v) for k, v in a.items()} == {k: comparable(v) for k, v in b.items()}
    assert all(r["provenance"]["device"].startswith("cuda:") for r in b.values())
