"""Write the flag tables of docs/flags.md from the experiment scripts' own parsers.

    python tools/flags-doc.py           # rewrite the tables between the generated markers
    python tools/flags-doc.py --check   # exit 1 if they are stale (tests/test_docs.py does the same)

Only the text between `<!-- begin generated: flags -->` and `<!-- end generated: flags -->` is rewritten;
the prose around it is written by hand.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common.cli import load_script  # noqa: E402

DOC = os.path.join(ROOT, "docs", "flags.md")
BEGIN, END = "<!-- begin generated: flags -->", "<!-- end generated: flags -->"
SCRIPTS = (  # column title, script
    ("PTB", "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py"),
    ("PTB LSTM", "experiments/lstm-ptb-650-0.5-0.6/lstm-ptb.py"),
    ("PTB bias", "experiments/rnn-ptb-120-0.5-0.6-bias/rnn-ptb.py"),
    ("S-MNIST", "experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py"),
    ("S-MNIST LSTM", "experiments/lstm-smnist-800-0.5-0.6/lstm-smnist.py"),
    ("DVS", "experiments/rcnn-dvs-ges-128-0.5-0.3-0.5/rcnn-dvs-ges.py"),
    ("N-MNIST", "experiments/rcnn-nmnist-128-0.25-0.3-0.3/rcnn-nmnist.py"),
)


def cell(text):
    """Text safe inside a markdown table cell."""
    for a, b in (("\\", "\\\\"), ("|", "\\|"), ("*", "\\*"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(a, b)
    return text


def default_text(action):
    value = action.default
    if action.nargs == 0 and isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, str) and value.startswith(ROOT + os.sep):  # an absolute default inside the checkout
        value = os.path.relpath(value, ROOT) + " (from the repository root)"
    return f"`{value}`"


def flags_of(k, path):
    """{flag: (help, choices, default)} of one script, in the parser's order."""
    parser = load_script(os.path.join(ROOT, path), f"flags_doc_{k}").parser
    out = {}
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            choices = ", ".join(map(str, action.choices)) if action.choices else ""
            out[" / ".join(action.option_strings)] = (cell(action.help or ""), choices, default_text(action))
    return out


def per_script(scripts, name, field):
    """One value of a flag's field, or each distinct value with the scripts that have it."""
    values = {}
    for title, flags in scripts:
        if name in flags:
            values.setdefault(flags[name][field], []).append(title)
    if len(values) == 1:
        return next(iter(values))
    return "; ".join(f"{', '.join(titles)}: {value}" for value, titles in values.items())


def described(scripts, name):
    text, choices = per_script(scripts, name, 0), per_script(scripts, name, 1)
    return text + (f" (choices: {choices})" if choices else "")


def tables():
    scripts = [(title, flags_of(k, path)) for k, (title, path) in enumerate(SCRIPTS)]
    names = list(dict.fromkeys(name for _, flags in scripts for name in flags))
    same = [n for n in names if all(n in flags for _, flags in scripts) and len({flags[n] for _, flags in scripts}) == 1]
    differ = [n for n in names if n not in same]
    lines = ["**Every script, same default.**", "", "| flag | default | what it does |", "|---|---|---|"]
    lines += [f"| `{n}` | {scripts[0][1][n][2]} | {described(scripts, n)} |" for n in same]
    lines += ["", "**Flags whose default differs by script, or that only some scripts have** (—: the script has "
              "no such flag).", "", "| flag | " + " | ".join(title for title, _ in scripts) + " |",
              "|---" * (len(scripts) + 1) + "|"]
    lines += [f"| `{n}` | " + " | ".join(flags[n][2] if n in flags else "—" for _, flags in scripts) + " |"
              for n in differ]
    lines += ["", "| flag | what it does |", "|---|---|"]
    lines += [f"| `{n}` | {described(scripts, n)} |" for n in differ]
    lines += ["", "Scripts: " + ", ".join(f"{title} = `{path}`" for title, path in SCRIPTS) + "."]
    return "\n".join(lines)


def rewritten(text):
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + tables() + "\n" + text[end:]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report whether docs/flags.md is up to date")
    args = p.parse_args()
    text = open(DOC).read()
    new = rewritten(text)
    if args.check:
        print("docs/flags.md is up to date" if new == text else "docs/flags.md is stale: run python tools/flags-doc.py")
        sys.exit(0 if new == text else 1)
    with open(DOC, "w") as f:
        f.write(new)
    print("wrote the flag tables of docs/flags.md")
