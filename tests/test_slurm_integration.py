"""A real single-node Slurm (Debian's slurmctld, slurmd, munge) runs a tiny two-stage sweep through the
launcher's Slurm backend. Opt-in, as root:  HSTNN_SLURM_TEST=1 python -m pytest tests/test_slurm_integration.py

Installs the packages if they are missing, writes its own slurm.conf (ports 16817/16818, state in a
temporary folder) and stops every daemon it started by PID.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(os.environ.get("HSTNN_SLURM_TEST") != "1", reason="opt-in: HSTNN_SLURM_TEST=1"),
              pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")]

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]

SLURM_CONF = """ClusterName=hstnntest
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
ReturnToService=2
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def ensure_packages():
    if all(shutil.which(p) for p in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + PACKAGES):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def munge_works():
    encoded = subprocess.run(["munge", "-n"], capture_output=True)
    return encoded.returncode == 0 and subprocess.run(["unmunge"], input=encoded.stdout,
                                                      capture_output=True).returncode == 0


def wait_for(check, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def stop(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def slurm_cluster(tmp_path, monkeypatch):
    ensure_packages()
    daemons, munge_pid = [], None
    d = tmp_path / "slurm"
    for sub in ("state", "spool"):
        (d / sub).mkdir(parents=True)
    conf = d / "slurm.conf"
    conf.write_text(SLURM_CONF.format(d=d, cpus=os.cpu_count() or 1))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    try:
        if not munge_works():
            os.makedirs("/run/munge", exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["munged"], user="munge", group="munge", check=True)  # daemonises itself
            wait_for(lambda: os.path.exists("/run/munge/munged.pid") and munge_works(), 20, "munged")
            munge_pid = int(open("/run/munge/munged.pid").read())
        for cmd in (["slurmctld", "-D", "-f", str(conf)], ["slurmd", "-D", "-N", "localhost", "-f", str(conf)]):
            daemons.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout,
                 60, f"an idle node in sinfo (logs in {d})")
        yield d
    finally:
        for p in reversed(daemons):
            stop(p.pid)
            p.wait()
        if munge_pid:
            stop(munge_pid)


def test_sweep_through_a_real_slurm(slurm_cluster, tmp_path):
    from test_launcher import FAKE_JOB
    from common.launch import launcher as L
    exp = tmp_path / "rnn-ptb-10-0.5-0.6"
    exp.mkdir()
    (exp / "job.py").write_text(FAKE_JOB)
    ln = L.Launcher(script="job.py", dataset="ptb", base_dir=str(exp), argv=[], backend="slurm",
                    gpus_per_job=0, cpus_per_job=1, mem_gb=0.2, time_min=5, array_parallelism=2, slurm_poll_s=1,
                    profile_csv=str(tmp_path / "profile.csv"), progress_every_s=1000)
    stage1 = ln.multi_task(".", dict(mode="train1", sleep=1, seed=[1, 2, 3], ratio=[0], model=["hybrid"]))
    assert [r.status for r in stage1] == ["ok"] * 3, [r.message for r in stage1]
    stage2 = ln.multi_task(".", dict(mode="train2", seed=[1, 2], ratio=[0.5], model=["hybrid"]))
    assert [r.status for r in stage2] == ["ok"] * 2, [r.message for r in stage2]
    for seed in (1, 2, 3):
        assert f"output of ptb_hybrid_{seed}" in (exp / "log" / "launcher" / f"train1_ptb_hybrid_{seed}.out").read_text()
    assert (tmp_path / "profile.csv").read_text().count(",slurm,") == 5
    assert [r.status for r in ln.multi_task(".", dict(mode="train1", seed=[1], ratio=[0], model=["hybrid"]))] == ["skipped"]
