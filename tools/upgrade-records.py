"""Upgrade the run records of an earlier version (format 1) to format 2 (docs/records.md), by recomputing the
new bindings from the files they name, never by retraining.

    python tools/upgrade-records.py                      # experiments/*/ studies/*/runs/*/ results/studies/
    python tools/upgrade-records.py experiments/rnn-ptb-650-0.5-0.6 [--no-data]

For every record log/<train|test>_<name>.json of format 1 under the folders: its identity (name, kind, mode,
dataset, model, seed, ratio) from its file name and command line; config: the experiment script's parser applied
to its command line (the script is loaded, never run); data: the digest of the data its command line names,
loaded through the script's load_data in a child process, when that data is on this machine (else
{"sha256": null, "why": ...}); parent: train2 the seed's Adaptation record, test1/test2 the checkpoint it tested;
then "upgraded" says when, how and which bindings could not be recomputed, and the digest is recomputed. A record
is upgraded only when it still matches its log (same bytes, same final number); a copied record (paths made
relative, so its old digest cannot match) is checked the same way. A record of format 2 is left byte for byte;
running the tool again changes nothing. A linked record is not written through its link (its target is upgraded
in its own folder). One line per record: upgraded, already format 2, or cannot upgrade: why.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common import runs  # noqa: E402

DEFAULT_FOLDERS = ("experiments/*/", "studies/*/runs/*/", "results/studies/")

# run in a child process, once per experiment script and folder: the script's parser applied to each command
# line, and with --data the digest of the data its load_data reads
CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import torch
from common import cli, datadigest
job = json.load(sys.stdin)
module = cli.load_script(job["script"], "upgraded_script")
out, loaded = [], {}
for argv in job["argvs"]:
    item = {}
    try:
        args = module.parser.parse_args(argv)
        module.check_flags(args)
        item["config"] = {k: (v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
                          for k, v in sorted(vars(args).items())}
    except SystemExit:
        item["why_config"] = "its command line does not parse with the script of this version"
    except Exception as e:
        item["why_config"] = f"its command line is refused by the script of this version ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    if job["data"] and "config" in item:
        folder = item["config"].get("data")
        if folder is not None and not os.path.exists(folder):
            item["why_data"] = f"its data {folder} is not on this machine"
        else:
            key = json.dumps({k: v for k, v in item["config"].items() if k not in ("mode", "model", "ratio")}, sort_keys=True)
            if key not in loaded:
                try:
                    datadigest.reset()
                    module.load_data(args, torch.device("cpu"))
                    loaded[key] = (datadigest.current(), None)
                except Exception as e:
                    loaded[key] = (None, f"its data could not be read ({type(e).__name__})")
            digest, why = loaded[key]
            if why:
                item["why_data"] = why
            elif digest["sha256"] is None:
                item["why_data"] = "the readers of this version note no data"
            else:
                item["data"] = digest
    out.append(item)
print("\n" + json.dumps(out))
"""


def record_files(folder):
    """Every <train|test>_<name>.json under folder (links included, not followed into linked folders)."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in ("checkpoint", "traces", "data", "__pycache__"))
        found += [os.path.join(top, f) for f in sorted(files)
                  if f.endswith(".json") and runs.LOG_NAME.match(f[:-len(".json")] + ".log")]
    return found


def find_script(argv0, cwd):
    """The experiment script a record's command line ran, relative to where it ran or to the repository (a
    committed copy's paths start at experiments/ or studies/)."""
    if not argv0:
        return None
    candidates = [argv0, os.path.join(cwd, argv0), os.path.join(ROOT, argv0)]
    for group in ("experiments", "studies"):
        if f"{group}/" in argv0:
            candidates.append(os.path.join(ROOT, group, argv0.split(f"{group}/", 1)[1]))
    return next((os.path.abspath(c) for c in candidates if os.path.isfile(c)), None)


def run_folder(path):
    """Where the run ran: the folder above log/ (a run folder), else the repository (a copied logs folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.dirname(folder) if os.path.basename(folder) == "log" else ROOT


def check(path, record):
    """Why a format-1 record cannot be upgraded, or None: it must name itself, say finished and still match
    its log (same bytes, same final number). Its old digest must match unless it is a copy (relative paths)."""
    name = os.path.basename(path)[:-len(".json")].split("_", 1)[1]
    if record.get("name") != name:
        return f"it names another run ({record.get('name')})"
    if record.get("status") != "finished":
        return f"it says {record.get('status')!r}, not finished"
    log = path[:-len(".json")] + ".log"
    copied = os.path.basename(os.path.dirname(os.path.abspath(path))) != "log"  # results/studies/*/logs/
    if record.get("digest") != runs.record_digest(record) and not copied:
        return "it is damaged (its digest does not match)"
    if not runs.same_file(record.get("log"), log):
        return f"its log {os.path.basename(log)} is missing or changed since the run finished"
    raw, problem = runs.final_metric(log)
    if problem or raw != record.get("metric"):
        return f"its log's final number ({problem or raw}) is not its record's ({record.get('metric')})"
    return None


def identity(path, record):
    kind, name = os.path.basename(path)[:-len(".json")].split("_", 1)
    dataset, model, seed = name.split("_")[:3]
    ratio = float(name.split("_")[3]) if name.count("_") == 3 else None
    mode = record.get("mode") or f"{kind}1"
    return {"name": name, "kind": kind, "mode": mode, "dataset": dataset, "model": record.get("model") or model,
            "seed": int(seed), "ratio": ratio}


def file_sha(path):
    return runs.file_facts(path)["sha256"] if os.path.isfile(path) else None


def parent_of(path, record, ident):
    """(parent, why not recomputed or None): train2 its seed's Adaptation record's checkpoint (unless the
    Adaptation finished after it: retrained since), test1/test2 the checkpoint it tested."""
    folder = os.path.dirname(path)
    if ident["mode"] == "train1":
        return None, None
    if ident["mode"] == "train2":
        name = runs.run_name(ident["dataset"], "hybrid", ident["seed"])
        rec_path = adaptation_record(folder, name)
        parent = {"role": "adaptation", "name": name, "checkpoint": None, "record_sha256": file_sha(rec_path)}
        try:
            with open(rec_path) as f:
                adaptation = json.load(f)
            facts = adaptation["checkpoint"]
            if adaptation.get("status") != "finished" or not isinstance(facts, dict):
                raise ValueError
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return parent, "parent (no finished Adaptation record beside it)"
        if str(adaptation.get("finished_at", "")) > str(record.get("finished_at", "")):
            return parent, "parent (its Adaptation finished after it: retrained since)"
        parent["checkpoint"] = {k: facts.get(k) for k in ("path", "size", "sha256")}
        return parent, None
    name = ident["name"]
    facts = record.get("checkpoint")
    parent = {"role": "trained", "name": name, "checkpoint": facts if isinstance(facts, dict) else None,
              "record_sha256": file_sha(os.path.join(folder, f"train_{name}.json"))}
    return parent, None if parent["checkpoint"] else "parent (the record names no checkpoint)"


def adaptation_record(folder, name):
    """The Adaptation record beside a record or, for copied logs whose Adaptation was linked from the folder of
    the same name less its last -suffixes (logs/w60-hessian from logs/w60), there."""
    path = os.path.join(folder, f"train_{name}.json")
    parts = os.path.basename(folder).split("-")
    for i in range(len(parts) - 1, 0, -1):
        if os.path.lexists(path):
            break
        path = os.path.join(os.path.dirname(folder), "-".join(parts[:i]), f"train_{name}.json")
    return path if os.path.lexists(path) else os.path.join(folder, f"train_{name}.json")


def recompute(jobs, with_data):
    """{(script, cwd, argv tuple): child result} for every job, one child process per script and folder."""
    results = {}
    groups = {}
    for script, cwd, argv in jobs:
        groups.setdefault((script, cwd), []).append(argv)
    for (script, cwd), argvs in groups.items():
        job = json.dumps({"script": script, "argvs": argvs, "data": with_data})
        out = subprocess.run([sys.executable, "-c", CHILD, ROOT], input=job, cwd=cwd, capture_output=True, text=True)
        try:
            items = json.loads(out.stdout.strip().split("\n")[-1])
        except (ValueError, IndexError):
            why = (out.stderr.strip().splitlines() or ["no output"])[-1]
            items = [{"why_config": f"the script could not be loaded ({why})"}] * len(argvs)
        for argv, item in zip(argvs, items):
            results[(script, cwd, tuple(argv))] = item
    return results


def upgraded_record(path, record, item, with_data):
    ident = identity(path, record)
    not_recomputed = []
    new = dict(record)
    new.update(format=2, **ident)
    if "config" in item:
        new["config"] = item["config"]
    else:
        new["config"] = None
        not_recomputed.append(f"config ({item.get('why_config', 'no script')})")
    if "data" in item:
        new["data"] = item["data"]
    else:
        why = item.get("why_data") or ("not asked (--no-data)" if not with_data else "no configuration to read it with")
        new["data"] = {"sha256": None, "parts": {}, "why": why}
        not_recomputed.append(f"data ({why})")
    new["parent"], why = parent_of(path, record, ident)
    if why:
        not_recomputed.append(why)
    copied = record.get("digest") != runs.record_digest(record)
    how = "tools/upgrade-records.py: identity from the file name and command line, config from the script's parser" \
          + ("; a copied record (paths made relative): checked against its log's bytes and final number, its checkpoint"
             " not at hand" if copied else "")
    new["upgraded"] = {"from_format": 1, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "how": how,
                       "not_recomputed": not_recomputed}
    new.pop("digest", None)
    new["digest"] = runs.record_digest(new)
    return new, not_recomputed


def write(path, record):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="*", help="experiment, study-run or copied-logs folders "
                                              f"(default: {' '.join(DEFAULT_FOLDERS)} under the repository)")
    p.add_argument("--no-data", action="store_true", help="do not load the data to recompute its digest")
    args = p.parse_args(argv)
    folders = args.folders or sorted(f for pattern in DEFAULT_FOLDERS for f in glob.glob(os.path.join(ROOT, pattern)))
    missing = [f for f in args.folders if not os.path.isdir(f)]
    if missing:
        print(f"error: no folder {missing[0]}", file=sys.stderr)
        return 2
    todo, counts = [], {"upgraded": 0, "already format 2": 0, "cannot upgrade": 0}

    def say(path, what):
        counts["cannot upgrade" if what.startswith("cannot") else what.split(" (")[0].split(":")[0]] += 1
        print(f"{os.path.relpath(path)}: {what}")

    for path in sorted({os.path.abspath(f) for folder in folders for f in record_files(folder)}):
        if os.path.islink(path):
            say(path, f"cannot upgrade: it links to {os.path.realpath(path)} (upgrade it in its own folder)")
            continue
        try:
            with open(path) as f:
                record = json.load(f)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, RecursionError, UnicodeDecodeError) as e:
            say(path, f"cannot upgrade: unreadable ({type(e).__name__})")
            continue
        if record.get("format") == 2:
            say(path, "already format 2")
            continue
        if record.get("format") is not None:
            say(path, f"cannot upgrade: unknown format {record.get('format')!r}")
            continue
        problem = check(path, record)
        argv = record.get("argv")
        if problem is None and not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            problem = "it has no command line"
        if problem:
            say(path, f"cannot upgrade: {problem}")
            continue
        todo.append((path, record, find_script(argv[0], run_folder(path)), run_folder(path)))
    jobs = [(script, cwd, list(rec["argv"][1:])) for _, rec, script, cwd in todo if script]
    results = recompute(jobs, not args.no_data) if jobs else {}
    for path, record, script, cwd in todo:
        item = results.get((script, cwd, tuple(record["argv"][1:])),
                           {"why_config": f"its script {record['argv'][0]} is not on this machine"})
        new, not_recomputed = upgraded_record(path, record, item, not args.no_data)
        write(path, new)
        say(path, "upgraded" + (f" (not recomputed: {'; '.join(not_recomputed)})" if not_recomputed else ""))
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
