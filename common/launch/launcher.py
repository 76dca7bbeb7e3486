"""Run the parameter dicts of an mprun-*.py file as a queue of jobs.

    launcher = Launcher(gpus="auto", slots_per_gpu=1)      # command-line flags override these settings
    launcher.multi_task("./", PTB_XNN_Parameter)           # waits for its jobs, so calls run in order
    launcher.finish()                                      # summary; exit code 1 if a job failed

multi_task expands a dict as the authors' mprun did (ratio, then seed, then model; every other key becomes
`--key value`, keys containing "ratio", "seed" or "model" excepted) and runs the jobs on a local queue
(slots per GPU, GPUs round-robin, CUDA_VISIBLE_DEVICES per job; a bounded number of CPU jobs without GPU)
or as one Slurm job array through submitit (common/launch/slurm.py). A job whose record verifies (finished, or
diverged, with the same flags) is skipped; an interrupted one is simply run again, and the script resumes it; a
stale one (its parent changed after it) runs again; one whose record predates format 2 waits for
tools/upgrade-records.py (job_state).

Before any job of a real launch, the whole file runs as a dry run: every key must be a flag of the script, every
model one of its models, every seed and ratio a value the scripts take (they are part of file names). A job runs
through common/launch/profiled.py, ends with the launcher however that ends, and a run that another process
holds is reported as busy. GPUs asked for but not visible are replaced by CPU jobs, with a note.
"""
import difflib
import json
import math
import numbers
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import fields

from common import runs
from common.launch.jobs import ROOT, Interrupted, Job, Result, cpu_cores, link_problem, slurm_folder
from common.launch.local import run_local
from common.launch.settings import (DICT_KEY_FLAGS, MODES, LauncherError, Settings, check_settings, job_gpus,
                                    parse_command_line)
from common.launch.summary import Progress, append_profile, say, summary_text
from common.report.logs import DATASET_IN_FOLDER


# -- the jobs of a parameter dict -------------------------------------------------------------------
def as_list(value):
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


NAME_PART = re.compile(r"[A-Za-z0-9]+\Z")  # a model or dataset name: part of every file name of its runs


def whole_seed(value):
    """A seed as the scripts take it (a whole number in [0, 2**32)), as text; None when it is not one."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        seed = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        seed = int(value)
    else:
        return None
    return str(seed) if 0 <= seed < 2 ** 32 else None


def ratio_value(value):
    """A ratio as a finite float; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        return None
    try:
        ratio = float(value)
    except ValueError:
        return None
    return ratio if math.isfinite(ratio) else None


def check_values(params):
    """The values that make file names (model, seed, ratio) are safe and as the scripts take them, checked
    before any job starts: a model is letters and digits, a seed a whole number in [0, 2**32), a ratio a
    number, strictly between 0 and 1 where it is part of the run (ffs, and hybrid in train2/test2)."""
    for m in as_list(params["model"]):
        if not isinstance(m, str) or not NAME_PART.match(m):
            raise LauncherError(f"the key 'model' holds {m!r}: a model name is letters and digits only")
    for v in as_list(params["seed"]):
        if whole_seed(v) is None:
            raise LauncherError(f"the key 'seed' holds {v!r}: a seed is a whole number in [0, 2**32)")
    for v in as_list(params["ratio"]):
        r = ratio_value(v)
        if r is None:
            raise LauncherError(f"the key 'ratio' holds {v!r}: a ratio is a number")
        restored = params["mode"] in ("train2", "test2")
        if (restored or "ffs" in as_list(params["model"])) and not 0 < r < 1:
            need = f"mode {params['mode']}" if restored else "model ffs"
            raise LauncherError(f"the key 'ratio' holds {v!r}: {need} needs a ratio strictly between 0 and 1")


def expand_jobs(path, params, script, dataset):
    """The jobs of one parameter dict, ratio outer, then seed, then model (as the authors' mprun)."""
    if not isinstance(params, dict):
        raise LauncherError(f"a parameter dict is expected, got {type(params).__name__}")
    for key in ("ratio", "seed", "model", "mode"):
        if key not in params:
            raise LauncherError(f"the parameter dict has no {key!r} key (keys: {', '.join(params)})")
    if params["mode"] not in MODES:
        raise LauncherError(f"mode must be one of {', '.join(MODES)}, got {params['mode']!r}")
    if "gpu" in params:
        raise LauncherError("choose GPUs with the launcher's gpus setting (or --gpus), not a 'gpu' key in the dict")
    check_values(params)
    flags = []
    for k, v in params.items():
        if "ratio" in k or "seed" in k or "model" in k or v is None or v is False:
            continue
        flag = f"--{DICT_KEY_FLAGS.get(k, k)}"
        flags += [flag] if v is True else [flag, str(v)]
    jobs, seen = [], set()
    for r in as_list(params["ratio"]):
        for s in map(whole_seed, as_list(params["seed"])):
            for m in as_list(params["model"]):
                if params["mode"] in ("train2", "test2") and m != "hybrid":
                    raise LauncherError(f"mode {params['mode']} is for model hybrid only, got model {m!r}")
                argv = [script, "--ratio", str(r), "--seed", s, "--model", m] + flags
                job = Job(path, argv, dataset, m, s, str(r), params["mode"])
                if job.key not in seen:  # e.g. rnn listed with several ratios: one run
                    seen.add(job.key)
                    jobs.append(job)
    return jobs


def job_state(job):
    """(state, detail) of a job from its record (common.runs.verify):
    run        it has to run (no record, unfinished, failed, changed since it finished)
    done       finished with the same flags
    flags      finished with other flags (detail: how they differ)
    diverged   diverged (detail: where); with other flags it runs again
    stale      its parent changed after it (detail: which); it runs again
    old        its record predates format 2: upgrade it first (tools/upgrade-records.py)"""
    try:
        _, record, problem = runs.verify(job.log_path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):  # a garbled record
        return "run", ""
    if problem is None:
        changed = runs.changed_flags(record, job.argv)
        return ("flags", changed) if changed else ("done", "")
    if record is None:
        return "run", problem
    if record.get("status") == "diverged":
        changed = runs.changed_flags(record, job.argv)
        return ("run", f"diverged with other flags ({changed})") if changed else ("diverged", problem)
    if problem.startswith("stale"):
        return "stale", problem
    if record.get("format") != runs.FORMAT and record.get("status") == "finished":
        return "old", problem
    return "run", problem


def missing_input(job):
    """Why the checkpoint this job loads is not a finished run's, or None. A train2 job given --allow-unfinished
    needs only the file."""
    needed = {"test1": job.name, "train2": runs.run_name(job.dataset, "hybrid", job.seed), "test2": job.name}.get(job.mode)
    if needed is None:
        return None
    if not os.path.exists(job.checkpoint(needed)):
        return f"checkpoint/{needed}.t7 does not exist (its training stage has not run)"
    if os.path.exists(job.resume_file(needed)):
        return f"checkpoint/{needed}.t7 is unfinished (checkpoint/{needed}.resume.t7 exists)"
    if job.mode == "train2" and {"--allow-unfinished", "--allow_unfinished"} & set(job.argv):
        return None
    try:
        _, _, problem = runs.verify(runs.log_path(needed, "train", job.cwd), check_log=False)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        problem = "its completion record is garbled"
    if problem is None:
        return None
    return f"checkpoint/{needed}.t7 is not a finished run's: {problem}" + \
        ("; the dict key allow_unfinished=True selects from it anyway" if job.mode == "train2" else "")


# -- the mprun interface ----------------------------------------------------------------------------
def main_file():
    main = sys.modules.get("__main__")
    return os.path.abspath(main.__file__) if main is not None and getattr(main, "__file__", None) else None


def script_for(mprun_file):
    base = os.path.basename(mprun_file or "")
    if not base.startswith("mprun-"):
        raise LauncherError("cannot tell the training script from this file's name; pass script='xxx.py' to Launcher")
    return base[len("mprun-"):]


def dataset_for(script):
    name = script.lower()
    for key, ds in DATASET_IN_FOLDER:
        if key in name:
            return ds
    raise LauncherError(f"cannot tell the dataset of {script!r}; pass dataset='ptb' (or mnist, dvsGesture, nmnist)")


# Runs a training script in a fresh interpreter up to its parse_args call and prints what its parser takes:
# its flags, the choices of --model and the defaults (JSON; a default JSON cannot hold becomes null).
FLAGS_PROBE = """
import argparse, json, runpy, sys
class Parsed(BaseException):
    pass
def plain(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else None
def parsed(self, *args, **kwargs):
    model = [a for a in self._actions if "--model" in a.option_strings]
    print(json.dumps({"flags": [flag for action in self._actions for flag in action.option_strings],
                      "models": list(model[0].choices) if model and model[0].choices else None,
                      "defaults": {a.dest: plain(a.default) for a in self._actions}}))
    raise Parsed
argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = parsed
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Parsed:
    sys.exit(0)
sys.exit("it ended without reading its command line")
"""
_probed = {}  # script -> what its parser takes (script_info)


def script_info(script):
    """{"flags", "models", "defaults"} of a training script's parser; nothing is trained. Read once per script."""
    if script in _probed:
        return _probed[script]
    env = {k: v for k, v in os.environ.items() if k != "HSTNN_PROFILE_FILE"}
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-c", FLAGS_PROBE, script], cwd=os.path.dirname(script), env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise LauncherError(f"cannot read the flags of {script}: {why}")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        info = dict(flags=[str(f) for f in info["flags"]], models=info["models"], defaults=dict(info["defaults"]))
    except (IndexError, ValueError, KeyError, TypeError, RecursionError):
        raise LauncherError(f"cannot read the flags of {script}: its parser printed no list of flags")
    _probed[script] = info
    return info


def script_flags(script):
    """The flags (--name) that a training script's parser accepts; nothing is trained."""
    return set(script_info(script)["flags"])


def flag_value(argv, flag):
    """The value given to flag in argv (--flag value or --flag=value; the last one counts), or None."""
    value = None
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(flag + "="):
            value = word[len(flag) + 1:]
    return value


def unknown_keys(params, flags):
    """'key (did you mean ...?)' for each key of a parameter dict that is not a flag of the script."""
    names = sorted(f[2:] for f in flags if f.startswith("--"))
    unknown = []
    for key in params:
        if f"--{DICT_KEY_FLAGS.get(key, key)}" not in flags:
            close = difflib.get_close_matches(key, names, n=1)
            unknown.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return unknown


def fail(message, code=2):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class Launcher:
    """Holds the settings (command-line flags override the keyword arguments) and the results so far."""

    def __init__(self, script=None, dataset=None, base_dir=None, argv=None, **settings):
        unknown = set(settings) - {f.name for f in fields(Settings)}
        if unknown:
            fail(f"unknown launcher setting(s) {', '.join(sorted(unknown))}; "
                 f"known: {', '.join(f.name for f in fields(Settings))}")
        try:
            defaults = Settings(**settings)
            check_settings(defaults)
            self.argv = sys.argv[1:] if argv is None else list(argv)
            self.settings = parse_command_line(defaults, self.argv)
            mprun = main_file()
            self.base_dir = base_dir or (os.path.dirname(mprun) if mprun else os.getcwd())
            self.script = script or script_for(mprun)
            self.dataset = dataset or dataset_for(self.script)
            if not isinstance(self.dataset, str) or not NAME_PART.match(self.dataset):
                raise LauncherError(f"dataset must be letters and digits (it starts every file name), "
                                    f"got {self.dataset!r}")
        except LauncherError as e:
            fail(str(e))
        self.results, self.stage, self.start = [], 0, time.time()
        self.flags, self.file_checked = {}, None  # script -> its flags; whether a dry run checked every dict
        self.gpu_note = None  # the note on GPUs asked for but not visible, shown once

    def jobs_for(self, path, params):
        cwd = os.path.normpath(os.path.join(self.base_dir, path))
        if not os.path.isdir(cwd):
            raise LauncherError(f"experiment folder {cwd} does not exist")
        if not os.path.exists(os.path.join(cwd, self.script)) and not self.settings.dry_run:
            raise LauncherError(f"training script {os.path.join(cwd, self.script)} does not exist")
        return expand_jobs(cwd, params, self.script, self.dataset)

    def multi_task(self, path, params):
        """Run one parameter dict's jobs and wait for them. Returns their Results."""
        self.stage += 1
        label = f"stage {self.stage}"
        s = self.settings
        if s.stages and self.stage not in s.stages:
            print(f"== {label}: not selected (--stages {','.join(map(str, s.stages))})", flush=True)
            return []
        try:
            jobs = self.jobs_for(path, params)
            self.check_keys(jobs, params)
        except LauncherError as e:
            fail(f"{label}: {e}")
        state = {j.key: job_state(j) for j in jobs}
        done = {key for key, (st, _) in state.items() if st in ("done", "flags", "diverged")}
        again = {key for key, (st, detail) in state.items() if st == "stale" or detail.startswith("diverged with")}
        for j in jobs:
            st, detail = state[j.key]
            if st in ("flags", "diverged"):
                what = f"done with other flags ({detail})" if st == "flags" else f"{detail}: its cell reads div"
                print(f"== {label}: {j.key} {what}; "
                      + ("running it again (--rerun)" if s.rerun else "skipped; --rerun runs it again"), flush=True)
            elif j.key in again:
                print(f"== {label}: {j.key} {detail}: running it again", flush=True)
        todo = [j for j in jobs if state[j.key][0] != "old" and (s.rerun or j.key not in done)]
        for j in todo:
            if (j.key in done or j.key in again) and j.mode.startswith("train"):
                j.argv.append("--overwrite")  # the scripts keep the old checkpoint aside
        if s.dry_run:
            return self.dry_run(label, jobs, todo)
        results = [Result(j, "skipped") for j in jobs if j.key in done and not s.rerun]
        if results:
            print(f"== {label}: {len(results)} of {len(jobs)} jobs already done (finished records), skipped; "
                  f"--rerun runs them again", flush=True)
        results += [Result(j, "blocked", message=f"{state[j.key][1]}; nothing is run for it until then")
                    for j in jobs if state[j.key][0] == "old"]
        runnable = []
        for j in todo:
            why = missing_input(j) if s.check_inputs else None
            if why:
                results.append(Result(j, "blocked", message=why + "; --no-input-check starts it anyway"))
            elif link_problem(j):
                results.append(Result(j, "blocked", message=link_problem(j)))
            else:
                runnable.append(j)
        gpus = self.gpus() if s.backend == "local" and runnable else []
        where = "" if s.backend == "slurm" else "; GPU " + ",".join(map(str, gpus)) if gpus else \
            f"; CPU, {s.cpu_jobs} at a time"
        print(f"== {label}: {len(runnable)} jobs to run ({s.backend}{where})", flush=True)
        progress = Progress(label, len(runnable), s.progress_every_s, totals=self.epochs_total)
        try:
            if runnable and s.backend == "slurm":
                from common.launch.slurm import run_slurm
                results += run_slurm(runnable, s, label, progress)
            elif runnable:
                results += run_local(runnable, s, progress, gpus)
        except Interrupted as stop:
            self.record(in_order(jobs, results + stop.results))
            say(summary_text("interrupted; so far", self.results, time.time() - self.start))
            sys.exit(130)
        results = in_order(jobs, results)
        self.record(results)
        print(summary_text(label, results, time.time() - progress.start, details=False), flush=True)
        return results

    def gpus(self):
        """The GPUs of the local queue; the first time GPUs asked for are not visible, a note says so."""
        gpus, note = job_gpus(self.settings.gpus)
        if note and note != self.gpu_note:
            self.gpu_note = note
            threads = max(1, cpu_cores() // self.settings.cpu_jobs)
            print(note + ("" if gpus else f", {self.settings.cpu_jobs} jobs at a time, "
                          f"{threads} thread{'s' if threads > 1 else ''} each"), flush=True)
        return gpus

    def epochs_total(self, job):
        """The epochs of a training job's stage: its flag, else the script's default; None when not known. ffs on
        HSTNN's schedule (--ffs_schedule hstnn) trains stage 1's epochs and then stage 2's."""
        stages = {"train1": ["stage1_epochs"], "train2": ["stage2_epochs"]}.get(job.mode)
        if stages is None:
            return None
        if job.mode == "train1" and flag_value(job.argv, "--ffs_schedule") == "hstnn":
            stages.append("stage2_epochs")
        total = 0
        for dest in stages:
            value = flag_value(job.argv, f"--{dest}")
            if value is None:
                try:
                    value = script_info(os.path.join(job.cwd, self.script))["defaults"].get(dest)
                except LauncherError:
                    return None
            try:
                total += int(value)
            except (TypeError, ValueError):
                return None
        return total if total > 0 else None

    def check_keys(self, jobs, params):
        """Every key of the dict must be a flag of the script (DICT_KEY_FLAGS maps the original abbreviations).
        A real launch of an mprun file first runs the whole file as a dry run, which checks every dict, so that
        a bad key in a later dict stops the launch before any job."""
        if not self.settings.dry_run and self.file_checked is None:
            self.file_checked = self.check_whole_file()
        if self.file_checked or not jobs:
            return
        script = os.path.join(jobs[0].cwd, self.script)
        if not os.path.exists(script):  # a dry run only (jobs_for)
            print(f"# keys not checked: {script} does not exist", flush=True)
            return
        if script not in self.flags:
            self.flags[script] = script_flags(script)
        unknown = unknown_keys(params, self.flags[script])
        mprun = main_file()
        where = os.path.basename(mprun) if mprun and os.path.basename(mprun).startswith("mprun-") else "this file"
        if unknown:
            raise LauncherError(f"the parameter dict in {where} has {'keys' if len(unknown) > 1 else 'a key'} that "
                                f"{self.script} does not take: {', '.join(unknown)}")
        models = (_probed.get(script) or {}).get("models")
        for m in as_list(params["model"]):
            if models and m not in models:
                raise LauncherError(f"the key 'model' in {where} holds {m!r}, which {self.script} does not take "
                                    f"(its models: {', '.join(map(str, models))})")

    def check_whole_file(self):
        """The mprun file that is running, with the same flags plus --dry-run, in a fresh interpreter: True when
        it passes; on an error its message is shown and the launch stops. False when no mprun file runs."""
        mprun = main_file()
        if not mprun or not os.path.basename(mprun).startswith("mprun-"):
            return False
        proc = subprocess.run([sys.executable, mprun, *self.argv, "--dry-run"], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            sys.exit(proc.returncode)
        return True

    def record(self, results):
        self.results += results
        append_profile(self.settings.profile_csv, results, self.settings.backend)

    def dry_run(self, label, jobs, todo):
        s = self.settings
        gpus = self.gpus() if s.backend == "local" else []
        print(f"== {label}: {len(todo)} of {len(jobs)} jobs would run "
              f"({s.backend}; {'GPUs ' + ','.join(map(str, gpus)) if gpus else 'CPU'})")
        keys, n = {j.key for j in todo}, 0
        for j in jobs:
            if j.key not in keys:
                print(f"# done, skipped: {j.key}")
            elif s.backend == "slurm":
                print(j.command())
            else:
                print(j.command(gpus[n % len(gpus)] if gpus else None, cpu_only=not gpus))
                n += 1
        if s.backend == "slurm" and todo:
            from common.launch.slurm import sbatch_text
            print(f"# sbatch script of the job array:\n{sbatch_text(s, len(todo), slurm_folder(todo[0]), label)}")
        results = [Result(j, "dry-run") for j in jobs]
        self.results += results
        return results

    def finish(self):
        """Print the summary of every stage, each failed job in full, and exit: 0 if every job is done."""
        ran = [r for r in self.results if r.status != "dry-run"]
        if ran:
            print(summary_text("all stages", ran, time.time() - self.start), flush=True)
        done = {r.job.cwd for r in ran if r.status in ("ok", "skipped")}
        if done:
            print(f"next, the tables: {tables_command(done)}", flush=True)
        sys.exit(1 if any(r.bad for r in self.results) else 0)


def tables_command(folders):
    """The command that builds the tables of these experiment folders, from the current folder."""
    def short(path):  # relative within the kit when the current folder is in it too
        inside = all(os.path.commonpath([p, ROOT]) == ROOT for p in (path, os.getcwd()))
        return os.path.relpath(path) if inside else path

    words = ["python", short(os.path.join(ROOT, "latex-code-gen.py"))]
    for folder in sorted(folders):
        parent, name = os.path.split(os.path.normpath(folder))
        known = parent in (os.path.join(ROOT, "experiments"), os.path.join(ROOT, "studies"))
        words += ["--experiment", name if known else short(folder)]
    return shlex.join(words)


def in_order(jobs, results):
    order = {j.key: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.job.key])
