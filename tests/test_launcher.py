"""The launcher's queue, skip/resume rules, summaries, profile records and Slurm backend, with tiny fake jobs."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common.launch import launcher as L
from common.launch.local import Slots  # noqa: E402

# A stand-in for a training script: same flags, same file names, same final test block and completion
# record; no torch.
FAKE_JOB = r'''
import argparse, json, os, sys, time
p = argparse.ArgumentParser()
for flag in ("--ratio", "--seed", "--mode", "--gpu"):
    p.add_argument(flag)
p.add_argument("--model", choices=("rnn", "snn", "ffs", "hybrid"))
p.add_argument("--busy_for", default="")
p.add_argument("--stage1_epochs", type=int, default=0)
p.add_argument("--sleep", type=float, default=0)
p.add_argument("--exit_code", type=int, default=0)
p.add_argument("--fail_for", default="")
p.add_argument("--crash_once", action="store_true")
p.add_argument("--overwrite", action="store_true")
p.add_argument("--allow_unfinished", action="store_true")
a = p.parse_args()
name = f"ptb_{a.model}_{a.seed}" + (f"_{float(a.ratio)}" if a.model == "ffs" or a.mode in ("train2", "test2") else "")
kind = "train" if a.mode.startswith("train") else "test"
os.makedirs("log", exist_ok=True)
os.makedirs("checkpoint", exist_ok=True)
def event(**kw):
    with open("events.txt", "a") as f:
        f.write(json.dumps(dict(kw, name=name, mode=a.mode, t=time.time())) + "\n")
event(what="start", gpu=os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_flag=a.gpu, epochs=a.stage1_epochs,
      overwrite=a.overwrite, pid=os.getpid(), threads=os.environ.get("OMP_NUM_THREADS"), argv=sys.argv)
if a.seed in a.busy_for.split(","):
    print(f"error: run {name} is in use by process 4242", file=sys.stderr)
    sys.exit(75)
resume = f"checkpoint/{name}.resume.t7"
resumed = os.path.exists(resume)
log = open(f"log/{kind}_{name}.log", "a")
if kind == "train":
    open(resume, "w").close()
    log.write("| end of epoch   1 | time: 1.50s | valid loss  5.00 | valid ppl   150.00\n")
    log.flush()
    if a.crash_once and not resumed:
        os.kill(os.getpid(), 9)
time.sleep(a.sleep)
print("output of", name, flush=True)
if a.exit_code and a.seed in a.fail_for.split(","):
    print("boom: something went wrong", file=sys.stderr)
    sys.exit(a.exit_code)
if kind == "train":
    open(f"checkpoint/{name}.t7", "w").write(("resumed" if resumed else "fresh") + (f" {time.time()}" if a.overwrite else ""))
line = "| Performance on Test Set | test loss  4.60 | test ppl   100.00"
log.write("=" * 89 + "\n" + line + "\n" + "=" * 89 + "\n")
log.close()
from common import runs  # the completion record, as the scripts write it (the launcher puts the kit on PYTHONPATH)
runs._final["line"] = line
runs.finish_run(a, name)
event(what="end")
'''


@pytest.fixture(autouse=True)
def three_gpus(monkeypatch):
    """GPUs 0, 1 and 2 are visible to the launcher (it hands them out; the fake jobs never use them)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")


@pytest.fixture
def exp(tmp_path):
    folder = tmp_path / "rnn-ptb-10-0.5-0.6"
    folder.mkdir()
    (folder / "job.py").write_text(FAKE_JOB)
    return folder


def launcher(exp, *argv, **settings):
    settings.setdefault("progress_every_s", 1000)
    settings.setdefault("profile_csv", str(exp.parent / "results" / "profile.csv"))
    return L.Launcher(script="job.py", dataset="ptb", base_dir=str(exp), argv=list(argv), **settings)


def params(mode="train1", model=("rnn",), seed=(1,), ratio=(0,), **flags):
    return dict(flags, mode=mode, model=list(model), seed=list(seed), ratio=list(ratio))


def events(exp, what="start"):
    path = exp / "events.txt"
    if not path.exists():
        return []
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["what"] == what]


def max_overlap(intervals):
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, d in points:
        now += d
        best = max(best, now)
    return best


def intervals(exp, key=lambda e: True):
    ends = {(e["name"], e["mode"]): e["t"] for e in events(exp, "end")}
    return [(e["t"], ends[(e["name"], e["mode"])]) for e in events(exp) if key(e)]


# -- pure parts -------------------------------------------------------------------------------------
def test_expand_jobs_like_the_original_mprun(tmp_path):
    p = {"stage1_epoch": 200, "data": "../x", "mode": "train1", "model_note": "skipped", "overwrite": True,
         "quiet": False, "seed": [1111, 2222], "ratio": [0.1, 0.5], "model": ["ffs", "hybrid"]}
    jobs = L.expand_jobs(str(tmp_path), p, "rnn-ptb.py", "ptb")
    assert [(j.ratio, j.seed, j.model) for j in jobs] == [
        ("0.1", "1111", "ffs"), ("0.1", "1111", "hybrid"), ("0.1", "2222", "ffs"), ("0.1", "2222", "hybrid"),
        ("0.5", "1111", "ffs"), ("0.5", "2222", "ffs")]  # hybrid train1 has no ratio: run once per seed
    assert jobs[0].argv == ["rnn-ptb.py", "--ratio", "0.1", "--seed", "1111", "--model", "ffs",
                            "--stage1_epochs", "200", "--data", "../x", "--mode", "train1", "--overwrite"]  # DICT_KEY_FLAGS
    assert jobs[0].log_path == os.path.join(str(tmp_path), "log", "train_ptb_ffs_1111_0.1.log")
    assert jobs[1].name == "ptb_hybrid_1111"
    test2 = L.expand_jobs(str(tmp_path), params("test2", ["hybrid"], [3], [0.50]), "s.py", "ptb")[0]
    assert test2.log_path.endswith(os.path.join("log", "test_ptb_hybrid_3_0.5.log"))
    assert "--gpu" in test2.command(1) and test2.command(1).startswith(f"cd {tmp_path} && CUDA_VISIBLE_DEVICES=1 ")


@pytest.mark.parametrize("bad, message", [
    (dict(mode="train1", seed=[1], ratio=[0]), "no 'model' key"),
    (dict(mode="fit", seed=[1], ratio=[0], model=["rnn"]), "mode must be one of"),
    (dict(mode="train2", seed=[1], ratio=[0.5], model=["rnn"]), "hybrid only"),
    (dict(mode="train1", seed=[1], ratio=[0], model=["rnn"], gpu=0), "gpus setting"),
])
def test_bad_dicts_are_clear_errors(tmp_path, bad, message):
    with pytest.raises(L.LauncherError, match=message):
        L.expand_jobs(str(tmp_path), bad, "s.py", "ptb")


def test_slots_round_robin():
    slots = Slots([0, 1, 2], 2)
    assert [slots.take() for _ in range(6)] == [0, 1, 2, 0, 1, 2] and not slots.free()
    slots.give_back(1)
    assert slots.take() == 1
    slots.give_back(0), slots.give_back(2)
    assert [slots.take(), slots.take()] == [2, 0]  # round-robin continues after the last GPU handed out


def test_command_line_overrides_file_settings(exp, capsys):
    ln = launcher(exp, "--dry-run", "--gpus", "0,1", "--slots", "2", "--rerun", "--stages", "2",
                  gpus=[], slots_per_gpu=1, backend="local")
    s = ln.settings
    assert (s.dry_run, s.gpus, s.slots_per_gpu, s.rerun, s.stages) == (True, [0, 1], 2, True, [2])
    assert ln.multi_task(".", params()) == []
    ln.multi_task(".", params(seed=[1, 2, 3]))
    out = capsys.readouterr().out
    assert "stage 1: not selected" in out
    assert "CUDA_VISIBLE_DEVICES=0 " in out and "--gpu 1" in out and out.count("job.py --ratio") == 3
    assert not (exp / "events.txt").exists() and not (exp / "log").exists()


@pytest.mark.parametrize("argv, settings, message", [
    (["--gpus", "x"], {}, "comma-separated integers"),
    ([], {"gpus": "all"}, "gpus must be"),
    ([], {"slots_per_gpu": 0}, "slots_per_gpu must be a positive integer"),
    ([], {"nonsense": 1}, "unknown launcher setting"),
])
def test_bad_settings_exit_with_a_message(exp, capsys, argv, settings, message):
    with pytest.raises(SystemExit) as e:
        launcher(exp, *argv, **settings)
    assert e.value.code == 2 and message in capsys.readouterr().err


# -- the local queue --------------------------------------------------------------------------------
def test_slots_per_gpu_and_cpu_jobs_are_honoured(exp):
    ln = launcher(exp, gpus=[0, 1], slots_per_gpu=1)
    results = ln.multi_task(".", params(seed=range(6), sleep=0.25, stage1_epoch=7))
    assert [r.status for r in results] == ["ok"] * 6
    starts = events(exp)
    gpu_of = {e["name"]: e["gpu"] for e in starts}
    assert all(e["gpu"] == e["gpu_flag"] for e in starts) and (gpu_of["ptb_rnn_0"], gpu_of["ptb_rnn_1"]) == ("0", "1")
    assert all(e["epochs"] == 7 for e in starts)  # stage1_epoch reaches --stage1_epochs (argparse prefix)
    for g in ("0", "1"):
        assert max_overlap(intervals(exp, lambda e: e["gpu"] == g)) == 1
    assert max_overlap(intervals(exp)) == 2

    (exp / "events.txt").unlink()
    ln = launcher(exp, gpus=[], cpu_jobs=3)
    ln.multi_task(".", params(model=["snn"], seed=range(6), sleep=0.25))
    assert all(e["gpu"] == "" and e["gpu_flag"] is None for e in events(exp))
    assert max_overlap(intervals(exp)) == 3


def test_stages_in_order_skip_done_and_rerun(exp, capsys):
    ln = launcher(exp, gpus=[], cpu_jobs=2)
    ln.multi_task(".", params("train1", ["hybrid"], [1, 2], sleep=0.2))
    ln.multi_task(".", params("train2", ["hybrid"], [1, 2], [0.5]))
    first = events(exp)
    stage1_end = max(e["t"] for e in events(exp, "end") if e["mode"] == "train1")
    assert all(e["t"] >= stage1_end for e in first if e["mode"] == "train2") and len(first) == 4
    with pytest.raises(SystemExit) as e:
        ln.finish()
    assert e.value.code == 0

    ln = launcher(exp, gpus=[], cpu_jobs=2)
    results = ln.multi_task(".", params("train1", ["hybrid"], [1, 2]))
    assert [r.status for r in results] == ["skipped", "skipped"] and len(events(exp)) == 4
    assert "2 of 2 jobs already done" in capsys.readouterr().out

    ln = launcher(exp, "--rerun", gpus=[], cpu_jobs=2)
    ln.multi_task(".", params("train1", ["hybrid"], [1]))
    assert events(exp)[-1]["overwrite"] is True  # retraining over a finished checkpoint needs --overwrite


def test_failures_are_reported_and_set_the_exit_code(exp, capsys):
    ln = launcher(exp, gpus=[], cpu_jobs=2)
    results = ln.multi_task(".", params("train1", ["hybrid"], [1, 2], exit_code=3, fail_for="2"))
    assert [(r.job.seed, r.status, r.exit_code) for r in results] == [("1", "ok", 0), ("2", "failed", 3)]
    results = ln.multi_task(".", params("train2", ["hybrid"], [1, 2], [0.5]))
    assert {r.job.seed: r.status for r in results} == {"1": "ok", "2": "blocked"}
    stages = capsys.readouterr().out
    assert "  FAILED train1_ptb_hybrid_2 (exit code 3)" in stages and "  BLOCKED train2_ptb_hybrid_2_0.5" in stages
    with pytest.raises(SystemExit) as e:
        ln.finish()
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert "== all stages: 4 jobs: 1 blocked, 1 failed, 2 ok" in out
    assert "FAILED train1_ptb_hybrid_2: exit code 3" in out
    assert "job.py --ratio 0 --seed 2 --model hybrid" in out and "train_ptb_hybrid_2.log" in out
    assert "boom: something went wrong" in out and "train1_ptb_hybrid_2.out, last lines" in out
    assert "BLOCKED train2_ptb_hybrid_2_0.5" in out and "checkpoint/ptb_hybrid_2.t7 does not exist" in out


def test_a_test_of_a_since_retrained_checkpoint_is_not_done(exp):
    ln = launcher(exp, gpus=2)
    assert ln.settings.gpus == [0, 1]  # the original's "gpus = 2"
    ln.multi_task(".", params("train1"))
    [res] = ln.multi_task(".", params("test1"))
    assert res.status == "ok"
    assert launcher(exp).multi_task(".", params("test1"))[0].status == "skipped"
    assert launcher(exp, "--rerun").multi_task(".", params("train1"))[0].status == "ok"  # retrained since the test
    assert launcher(exp, gpus=[0]).multi_task(".", params("test1"))[0].status == "ok"


def test_done_with_other_flags_is_reported_and_rerun_only_with_rerun(exp, capsys):
    launcher(exp, gpus=[]).multi_task(".", params(stage1_epochs=2))
    [res] = launcher(exp, gpus=[0]).multi_task(".", params(stage1_epochs=3))  # another GPU is not another flag
    assert res.status == "skipped" and len(events(exp)) == 1
    out = capsys.readouterr().out
    assert "train1_ptb_rnn_1 done with other flags (ran with --stage1_epochs 2; now --stage1_epochs 3); skipped; " \
           "--rerun runs it again" in out
    assert launcher(exp, gpus=[0]).multi_task(".", params(stage1_epochs=2))[0].status == "skipped"
    assert "other flags" not in capsys.readouterr().out
    [res] = launcher(exp, "--rerun", gpus=[]).multi_task(".", params(stage1_epochs=3))
    assert res.status == "ok" and events(exp)[-1]["epochs"] == 3 and events(exp)[-1]["overwrite"] is True


def test_only_a_matching_completion_record_counts_as_done(exp):
    launcher(exp, gpus=[]).multi_task(".", params("train1", ["hybrid"], [1, 2, 3]))
    os.remove(exp / "log" / "train_ptb_hybrid_1.json")                         # e.g. killed before its record
    with open(exp / "log" / "train_ptb_hybrid_2.log", "a") as f:               # appended to since
        f.write("=" * 89 + "\n| Performance on Test Set | test loss  9.99 | test ppl  9999.00\n" + "=" * 89 + "\n")
    (exp / "checkpoint" / "ptb_hybrid_3.t7").write_text("replaced")              # replaced since
    results = launcher(exp, gpus=[]).multi_task(".", params("train2", ["hybrid"], [1, 2, 3], [0.5]))
    assert [r.status for r in results] == ["blocked", "ok", "blocked"]
    assert "no completion record" in results[0].message and "replaced or changed" in results[2].message
    results = launcher(exp, gpus=[]).multi_task(".", params("train2", ["hybrid"], [1], [0.5], allow_unfinished=True))
    assert results[0].status == "ok"  # the user's choice, passed on to the script
    again = launcher(exp, gpus=[]).multi_task(".", params("train1", ["hybrid"], [1, 2, 3]))
    assert [r.status for r in again] == ["ok", "ok", "ok"] and len(events(exp)) == 8  # none counted as done


def test_killed_job_is_resumed_on_the_next_run(exp):
    ln = launcher(exp, gpus=[0])
    [res] = ln.multi_task(".", params(crash_once=True))
    assert res.status == "failed" and res.exit_code == -signal.SIGKILL
    assert (exp / "checkpoint" / "ptb_rnn_1.resume.t7").exists()
    [res] = launcher(exp, gpus=[0]).multi_task(".", params(crash_once=True))
    assert res.status == "ok" and (exp / "checkpoint" / "ptb_rnn_1.t7").read_text() == "resumed"
    [res] = launcher(exp, gpus=[0]).multi_task(".", params(crash_once=True))
    assert res.status == "skipped"


def test_outputs_are_separate_and_profiles_recorded(exp):
    ln = launcher(exp, gpus=[0], slots_per_gpu=3)
    ln.multi_task(".", params(model=["rnn", "snn", "hybrid"], sleep=0.1))
    for name in ("rnn", "snn", "hybrid"):
        out = (exp / "log" / "launcher" / f"train1_ptb_{name}_1.out").read_text()
        assert f"output of ptb_{name}_1" in out and out.count("output of") == 1 and "job.py" in out
    import csv
    rows = list(csv.DictReader(open(exp.parent / "results" / "profile.csv")))
    assert len(rows) == 3 and {r["experiment"] for r in rows} == {exp.name}
    assert all(float(r["wall_s"]) > 0.1 and float(r["peak_rss_mb"]) > 1 for r in rows)
    import platform  # the profile written at exit by common.launch.profiled: no CUDA used, the CPU named
    cpu = platform.processor() or platform.machine() or "cpu"
    assert {(r["peak_gpu_mb"], r["device"], r["gpu"], r["status"]) for r in rows} == {("", cpu, "0", "ok")}


def test_ctrl_c_stops_the_queue_and_terminates_jobs(exp):
    (exp / "mprun-fake.py").write_text(
        f"import sys\nsys.path.insert(0, {ROOT!r})\nfrom common.launch.launcher import Launcher\n"
        f"ln = Launcher(script='job.py', dataset='ptb', gpus=[], cpu_jobs=2, profile_csv='profile.csv')\n"
        f"ln.multi_task('.', dict(mode='train1', sleep=60, seed=[1, 2, 3], ratio=[0], model=['rnn']))\n"
        f"ln.finish()\n")
    # Ctrl-C's default action even when the suite itself runs in the background (which ignores SIGINT)
    proc = subprocess.Popen([sys.executable, "mprun-fake.py"], cwd=exp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 20
    while len(events(exp)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    pids = [e["pid"] for e in events(exp)]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130, out
    assert len(pids) == 2 and "Interrupted (Ctrl-C): stopping 2 running job(s); 1 not started" in out
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "INTERRUPTED train1_ptb_rnn_1" in out and "NOT STARTED train1_ptb_rnn_3" in out


def test_profiling_writes_json_at_exit(tmp_path):
    path = tmp_path / "profile.json"
    subprocess.run([sys.executable, "-c", "from common.launch.profiling import write_profile_at_exit as w; w()"],
                   cwd=ROOT, env=dict(os.environ, HSTNN_PROFILE_FILE=str(path), CUDA_VISIBLE_DEVICES=""), check=True)
    profile = json.loads(path.read_text())
    assert profile["peak_gpu_mem_bytes"] is None and isinstance(profile["device"], str) and profile["device"]


# -- Slurm backend ----------------------------------------------------------------------------------
def test_slurm_backend_with_submitits_debug_executor(exp):
    ln = launcher(exp, backend="slurm", slurm_cluster="debug", slurm_poll_s=0.01)
    results = ln.multi_task(".", params(seed=[1, 2], exit_code=4, fail_for="2"))
    assert [(r.status, r.exit_code) for r in results] == [("ok", 0), ("failed", 4)]
    assert "output of ptb_rnn_1" in (exp / "log" / "launcher" / "train1_ptb_rnn_1.out").read_text()
    assert (exp.parent / "results" / "profile.csv").read_text().count(",slurm,") == 2
    [res] = launcher(exp, backend="slurm", slurm_cluster="debug").multi_task(".", params(seed=[1]))
    assert res.status == "skipped"


def test_sbatch_text_of_a_job_array(exp):
    from common.launch.slurm import sbatch_text
    s = launcher(exp, "--partition", "gpu", "--time-min", "120", "--mem-gb", "12", "--cpus-per-job", "4",
                 "--array-parallelism", "3", backend="slurm").settings
    text = sbatch_text(s, 10, os.path.join(str(exp), "log", "slurm", "%j"), "stage 2")
    for line in ("#SBATCH --array=0-9%3", "#SBATCH --partition=gpu", "#SBATCH --time=120", "#SBATCH --mem=12GB",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --gpus-per-node=1",
                 f"#SBATCH --job-name=hstnn-{exp.name}-stage2", f"export PYTHONPATH={ROOT}"):
        assert line in text, line
    assert "-m submitit.core._submit" in text


# -- what the launcher says while jobs run ----------------------------------------------------------
def test_progress_of_running_jobs_from_their_logs(tmp_path, capsys):
    from common.launch.summary import Progress
    train, test = (L.expand_jobs(str(tmp_path), params(mode), "job.py", "ptb")[0] for mode in ("train1", "test1"))
    os.makedirs(tmp_path / "log")
    log = tmp_path / "log" / "train_ptb_rnn_1.log"
    log.write_text("| end of epoch 150 | time: 99.00s | an earlier run of the same name\n")

    def add(*lines):
        with open(log, "a") as f:
            f.write("".join(line + "\n" for line in lines))

    def heartbeat(n_pending=0):
        progress.last_print = 0
        progress.tick(n_pending)
        return capsys.readouterr().out.splitlines()

    progress = Progress("stage 1", 3, every_s=60, capacity=2, totals=lambda job: 200)
    progress.started(train, None)
    progress.started(test, None)
    assert capsys.readouterr().out.splitlines()[1] == "[stage 1 0:00:00] start test1_ptb_rnn_1 on CPU"
    lines = heartbeat(1)
    assert lines[0].endswith("done 0/3, running 2, failed 0 | ETA unknown")
    assert lines[1:] == ["  train1_ptb_rnn_1: setting up, no epoch yet", "  test1_ptb_rnn_1: testing, 0:00:00"]
    add("| epoch   1 |   200/  414 batches | 10.00 ms/batch | loss  5.00 | ppl   148.41")
    assert heartbeat()[1] == "  train1_ptb_rnn_1: 0/200 epochs, epoch 1 at batch 200/414, time left unknown"
    add("-" * 89, "| end of epoch   1 | time: 10.00s | valid loss  5.00 | valid ppl   148.41", "-" * 89,
        "| epoch   2 |   207/  414 batches | 10.00 ms/batch | loss  5.00 | ppl   148.41")
    assert heartbeat()[1] == "  train1_ptb_rnn_1: 1/200 epochs, epoch 2 at batch 207/414, 0:33:05 left"  # 198.5 * 10 s
    progress.running.pop(test.key)
    assert heartbeat()[0].endswith("| ETA 0:33:05")
    add(*[f"| end of epoch {e:3d} | time: 10.00s | valid loss  5.00 | valid ppl   148.41" for e in range(2, 201)])
    lines = heartbeat()
    assert lines[0].endswith("| ETA: final tests") and lines[1] == "  train1_ptb_rnn_1: 200/200 epochs, final test"


def test_progress_of_a_resumed_run_and_of_iterations():
    from common.launch.watch import LogWatch
    from common.launch.summary import hms
    watch = LogWatch("/nonexistent", total=200)
    for line in ("resuming from checkpoint/ptb_rnn_1.resume.t7 after epoch 5",
                 "| end of epoch   6 | time: 20.00s | valid loss  5.00 | valid ppl   148.41"):
        watch.feed(line)
    assert watch.seconds_left() == 194 * 20 and watch.text(hms) == "6/200 epochs, 1:04:40 left"
    watch = LogWatch("/nonexistent", total=None)  # DVS Gesture: an "epoch" is an iteration, logged every 20
    for line in ("resuming from checkpoint/x.resume.t7 after iteration 40",
                 "| end of epoch  60 | time:  5.00s | train loss 0.04 | test acc 50.0%"):
        watch.feed(line)
    assert watch.text(hms) == "60/? epochs, time left unknown" and watch.seconds_left() is None
    watch.total = 3600
    assert watch.seconds_left() == (3600 - 60) * 5 / 20


def test_epochs_of_a_stage_from_the_flags_or_the_script(exp):
    (exp / "job.py").write_text(FAKE_JOB.replace('a = p.parse_args()', 'p.set_defaults(stage1_epochs=150)\na = p.parse_args()'))
    ln = launcher(exp)
    [given] = L.expand_jobs(str(exp), params(stage1_epochs=7), "job.py", "ptb")
    [default] = L.expand_jobs(str(exp), params(), "job.py", "ptb")
    [restored] = L.expand_jobs(str(exp), params("train2", ["hybrid"], ratio=[0.5]), "job.py", "ptb")
    assert (ln.epochs_total(given), ln.epochs_total(default), ln.epochs_total(restored)) == (7, 150, None)
    [both] = L.expand_jobs(str(exp), params(model=["ffs"], ratio=[0.5], stage1_epochs=1, stage2_epochs=3,
                                            ffs_schedule="hstnn"), "job.py", "ptb")
    assert ln.epochs_total(both) == 4  # ffs on HSTNN's schedule: stage 1's epochs, then stage 2's


def test_gpus_asked_for_but_not_visible_run_as_cpu_jobs(exp, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    ln = launcher(exp, gpus=2, cpu_jobs=2)
    ln.multi_task(".", params(seed=[1]))
    ln.multi_task(".", params(seed=[2]))
    threads = max(1, L.cpu_cores() // 2)
    assert [(e["gpu"], e["gpu_flag"], e["threads"]) for e in events(exp)] == [("", None, str(threads))] * 2
    out = capsys.readouterr().out
    assert out.count("note: no GPU is visible (gpus asks for 0,1): running on the CPU, 2 jobs at a time, "
                     f"{threads} thread{'s' if threads > 1 else ''} each\n") == 1
    assert "on GPU" not in out and "start train1_ptb_rnn_1 on CPU" in out
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    ln = launcher(exp, "--rerun", gpus=2)
    [res] = ln.multi_task(".", params(seed=[1]))
    assert res.gpu == "1" and "note: GPU 0 not visible (visible: 1): using GPU 1" in capsys.readouterr().out


def test_the_end_names_the_command_that_builds_the_tables(exp, capsys, monkeypatch):
    ln = launcher(exp, gpus=[])
    ln.multi_task(".", params())
    monkeypatch.chdir(exp)
    with pytest.raises(SystemExit):
        ln.finish()
    assert capsys.readouterr().out.splitlines()[-1] == \
        f"next, the tables: python {os.path.join(ROOT, 'latex-code-gen.py')} --experiment {exp}"
    monkeypatch.chdir(os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6"))
    assert L.tables_command([os.getcwd()]) == "python ../../latex-code-gen.py --experiment rnn-ptb-650-0.5-0.6"
