"""The launcher's jobs end with it however it ends, a run held by another process is reported as busy, the
values that make file names are checked before any job, log/launcher/ is never written through a link,
and what it reads (profiles, records) may be garbled without stopping it."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_launcher import FAKE_JOB, ROOT, events, exp, launcher, params, three_gpus  # noqa: F401 (fixtures)
from common.launch import jobs as J
from common.launch import launcher as L


def alive(pid):
    """True while the process runs (a zombie that nobody reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def mprun(exp, body, name="mprun-fake.py"):
    (exp / name).write_text(
        f"import sys\nsys.path.insert(0, {ROOT!r})\nfrom common.launch.launcher import Launcher\n"
        f"ln = Launcher(script='job.py', dataset='ptb', gpus=[], cpu_jobs=2, profile_csv='profile.csv')\n"
        f"{body}\nln.finish()\n")
    return name


def started_jobs(exp, n, timeout=60):
    deadline = time.time() + timeout
    while len(events(exp)) < n and time.time() < deadline:
        time.sleep(0.05)
    return [e["pid"] for e in events(exp)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_jobs_end_with_their_launcher(exp, sig):
    name = mprun(exp, "ln.multi_task('.', dict(mode='train1', sleep=120, seed=[1, 2], ratio=[0], model=['rnn']))")
    proc = subprocess.Popen([sys.executable, name], cwd=exp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))  # not nohup's
    pids = started_jobs(exp, 2)
    assert len(pids) == 2 and all(alive(p) for p in pids)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    deadline = time.time() + 20
    while any(alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), out
    if sig == signal.SIGHUP:  # stopped in order, as Ctrl-C: summary and exit code 130
        assert proc.returncode == 130 and "Interrupted (SIGHUP (terminal closed)): stopping 2 running job(s)" in out
        assert "INTERRUPTED train1_ptb_rnn_1" in out
    else:
        assert proc.returncode == -signal.SIGKILL


def test_a_launcher_under_nohup_keeps_running_after_a_hangup(exp):
    name = mprun(exp, "ln.multi_task('.', dict(mode='train1', sleep=3, seed=[1], ratio=[0], model=['rnn']))")
    proc = subprocess.Popen([sys.executable, name], cwd=exp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    started_jobs(exp, 1)
    proc.send_signal(signal.SIGHUP)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "1 ok" in out and "Interrupted" not in out


def test_a_run_held_by_another_process_is_busy(exp, capsys):
    ln = launcher(exp, gpus=[])
    results = ln.multi_task(".", params(seed=[1, 2], busy_for="2"))
    assert [(r.status, r.exit_code) for r in results] == [("ok", 0), ("busy", 75)]
    assert results[1].message == "run ptb_rnn_2 is in use by process 4242; not run twice"
    with pytest.raises(SystemExit) as e:
        ln.finish()
    out = capsys.readouterr().out
    assert e.value.code == 1 and "1 busy, 1 ok" in out and "BUSY train1_ptb_rnn_2: exit code 75" in out
    assert "BUSY   train1_ptb_rnn_2" in out and "FAILED" not in out


def test_one_launcher_never_runs_one_run_twice_at_once():
    job, twin, other = (L.Job("/x", ["s.py"], "ptb", model, "1", "0", "train1") for model in ("rnn", "rnn", "snn"))
    from collections import deque
    from common.launch.local import next_job
    pending = deque([twin, other])
    assert next_job(pending, {1: dict(job=job)}) is other and list(pending) == [twin]
    assert next_job(pending, {1: dict(job=job)}) is None and next_job(pending, {}) is twin


@pytest.mark.parametrize("bad, message", [
    (params(model=["../x"]), "the key 'model' holds '../x': a model name is letters and digits only"),
    (params(seed=[-1]), "the key 'seed' holds -1: a seed is a whole number in [0, 2**32)"),
    (params(seed=[2 ** 32]), "the key 'seed' holds 4294967296"),
    (params(seed=[1.5]), "the key 'seed' holds 1.5"),
    (params(seed=["1/2"]), "the key 'seed' holds '1/2'"),
    (params(ratio=["../0.5"]), "the key 'ratio' holds '../0.5': a ratio is a number"),
    (params(ratio=[float("nan")]), "the key 'ratio' holds nan: a ratio is a number"),
    (params(model=["ffs"], ratio=[1.5]), "the key 'ratio' holds 1.5: model ffs needs a ratio strictly between 0 and 1"),
    (params("train2", ["hybrid"], ratio=[0]), "the key 'ratio' holds 0: mode train2 needs a ratio strictly between"),
])
def test_values_that_make_file_names_are_checked(tmp_path, bad, message):
    with pytest.raises(L.LauncherError) as e:
        L.expand_jobs(str(tmp_path), bad, "s.py", "ptb")
    assert str(e.value).startswith(message)


def test_seeds_as_the_scripts_read_them(tmp_path):
    jobs = L.expand_jobs(str(tmp_path), params(seed=["0011", 7], ratio=[0]), "s.py", "ptb")
    assert [(j.seed, j.name, j.argv[4]) for j in jobs] == [("11", "ptb_rnn_11", "11"), ("7", "ptb_rnn_7", "7")]


def test_a_bad_value_in_a_later_dict_stops_the_launch_before_any_job(exp):
    name = mprun(exp, "ln.multi_task('.', dict(mode='train1', seed=[1], ratio=[0], model=['rnn']))\n"
                      "ratio_list = [1.5]\n"
                      "ln.multi_task('.', dict(mode='train1', seed=[1], ratio=ratio_list, model=['ffs']))")
    out = subprocess.run([sys.executable, name], cwd=exp, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and not events(exp)
    assert out.stderr.splitlines() == ["error: stage 2: the key 'ratio' holds 1.5: model ffs needs a ratio strictly "
                                       "between 0 and 1"]


def test_a_model_the_script_does_not_take_is_refused(exp, capsys):
    with pytest.raises(SystemExit) as e:
        launcher(exp, "--dry-run").multi_task(".", params(model=["rnn", "lstm"]))
    assert e.value.code == 2 and capsys.readouterr().err.splitlines() == [
        "error: stage 1: the key 'model' in this file holds 'lstm', which job.py does not take "
        "(its models: rnn, snn, ffs, hybrid)"]


@pytest.mark.parametrize("planted", ["log/launcher/train1_ptb_rnn_1.out", "log/launcher/train1_ptb_rnn_1.profile.json",
                                     "log/launcher"])
def test_launcher_files_are_never_written_through_a_link(exp, tmp_path, planted):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "train1_ptb_rnn_1.out").write_text("someone else's file\n")
    (exp / "log" / "launcher").mkdir(parents=True)
    link = exp / planted
    if link.is_dir():
        link.rmdir()
    os.symlink(target if planted == "log/launcher" else target / "train1_ptb_rnn_1.out", link)
    [res] = launcher(exp, gpus=[]).multi_task(".", params())
    assert res.status == "blocked" and res.message == f"{planted} is a symbolic link; the launcher never writes " \
                                                      "through one (remove the link)"
    assert (target / "train1_ptb_rnn_1.out").read_text() == "someone else's file\n" and not events(exp)
    job = L.expand_jobs(str(exp), params(), "job.py", "ptb")[0]
    if planted.endswith(".profile.json"):  # the start removes an old profile, a link is removed, not followed
        J.open_out(job).close()
        assert not os.path.lexists(job.profile_path)
    else:
        with pytest.raises(OSError):  # and if a link appears between the check and the start
            J.open_out(job)
    assert (target / "train1_ptb_rnn_1.out").read_text() == "someone else's file\n"


def test_garbled_profiles_and_records_do_not_stop_the_launcher(exp):
    job = L.expand_jobs(str(exp), params(), "job.py", "ptb")[0]
    os.makedirs(os.path.dirname(job.profile_path))
    for text in ("[" * 100000, '{"device": ["x"], "peak_gpu_mem_bytes": "12"}', '{"peak_gpu_mem_bytes": 1e999}',
                 "x" * 70000):
        open(job.profile_path, "w").write(text)
        assert J.read_profile(job) == ("", None), text
    open(job.profile_path, "w").write('{"device": "Fake", "peak_gpu_mem_bytes": 2097152}')
    assert J.read_profile(job) == ("Fake", 2.0)
    os.makedirs(exp / "log", exist_ok=True)
    (exp / "log" / "train_ptb_rnn_1.json").write_text("[" * 100000)  # a garbled completion record
    [res] = launcher(exp, gpus=[]).multi_task(".", params())
    assert res.status == "ok" and res.device  # run again: the record did not say finished


def test_the_wrapper_runs_a_script_as_python_would(tmp_path):
    (tmp_path / "show.py").write_text(
        "import json, os, sys\nprint(json.dumps([sys.argv, __name__, sys.path[0], os.path.abspath(__file__)]))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, HSTNN_PROFILE_FILE=str(tmp_path / "p.json"), CUDA_VISIBLE_DEVICES="")
    plain = subprocess.run([sys.executable, "show.py", "--seed", "1"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert not (tmp_path / "p.json").exists()  # a script run directly writes no profile: it knows no launcher
    wrapped = subprocess.run([sys.executable, "-m", J.PROFILED, "show.py", "--seed", "1"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout
    assert json.loads(plain) == json.loads(wrapped) == [["show.py", "--seed", "1"], "__main__", str(tmp_path),
                                                        str(tmp_path / "show.py")]
    profile = json.loads((tmp_path / "p.json").read_text())
    assert profile["peak_gpu_mem_bytes"] is None and isinstance(profile["device"], str) and profile["device"]
    (tmp_path / "fail.py").write_text("import sys\nsys.exit(3)\n")
    assert subprocess.run([sys.executable, "-m", J.PROFILED, "fail.py"], cwd=tmp_path, env=env).returncode == 3
    os.remove(tmp_path / "p.json")
    os.symlink(tmp_path / "target.json", tmp_path / "p.json")  # the profile is never written through a link
    subprocess.run([sys.executable, "-m", J.PROFILED, "show.py"], cwd=tmp_path, env=env, check=True)
    assert not (tmp_path / "target.json").exists()


def test_the_training_code_does_not_know_the_launcher():
    source = open(os.path.join(ROOT, "common", "training.py")).read()
    assert "common.launch" not in source and "HSTNN_PROFILE_FILE" not in source
