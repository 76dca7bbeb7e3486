"""A write-up whose tables are regenerated from the logs, and a check of the numbers quoted in its prose.

A table that a script owns sits between two markers and is replaced whole by fill():

    <!-- begin generated: criteria-q2 -->
    | ratio | ... |
    <!-- end generated: criteria-q2 -->

Everything outside the markers is prose. unsupported_intervals() lists every "mean [low, high]" quoted in
the prose that no generated table or results file holds (at the precision quoted), and unsupported_numbers()
every number with a decimal point that none of the sources holds, so a write-up cannot keep a number its logs
(or its configuration) no longer give.
"""
import re

BLOCK = re.compile(r"<!-- begin generated: (?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- end generated: (?P=name) -->", re.S)
NUMBER = r"[+\-−]?\d+(?:\.\d+)?"
INTERVAL = re.compile(rf"(?<![\w.])({NUMBER}) \[({NUMBER}), ({NUMBER})\]")


def blocks(text):
    """name -> the text between its markers."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def fill(path, tables, only_shown=False):
    """Replace the generated tables of the write-up at `path` (name -> text); returns the names that changed.
    Every name must have its markers in the write-up (a table nobody shows is a mistake, not a
    no-op), unless only_shown: then the tables without markers are left out."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    shown = blocks(text)
    if only_shown:
        tables = {name: table for name, table in tables.items() if name in shown}
    missing = sorted(set(tables) - set(shown))
    if missing:
        raise ValueError(f"{path} has no markers for the generated tables {missing}: add "
                         + ", ".join(f"'<!-- begin generated: {n} -->' ... '<!-- end generated: {n} -->'" for n in missing))
    body = lambda name: tables[name].rstrip("\n") + "\n" if tables[name].strip() else ""  # empty: no rows (yet)
    changed = [name for name, old in shown.items() if name in tables and old != body(name)]
    text = BLOCK.sub(lambda m: m.group(0) if m["name"] not in tables else
                     f"<!-- begin generated: {m['name']} -->\n{body(m['name'])}<!-- end generated: {m['name']} -->", text)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return changed


def summary(path, changed):
    """The line a script prints after fill()."""
    return f"\n{path}: " + (f"tables {', '.join(changed)} regenerated" if changed else "tables unchanged")


def prose(text):
    return BLOCK.sub("", text)


def _value(s):
    return float(s.replace("−", "-"))


def _decimals(s):
    return len(s.split(".")[1]) if "." in s else 0


def intervals(text):
    """Every 'mean [low, high]' in text: (the quoted strings, the values)."""
    return [(m.group(0), tuple(map(_value, m.groups())), min(map(_decimals, m.groups()))) for m in INTERVAL.finditer(text)]


def unsupported_intervals(writeup_text, sources):
    """The intervals quoted in the prose of writeup_text that none of the texts in `sources` (generated tables,
    results files) holds: a quoted interval matches a source's when its three numbers equal the source's rounded
    to the quoted precision (half a unit of it, plus the source's own rounding to two decimals)."""
    known = [values for text in sources for _, values, _ in intervals(text)]
    missing = []
    for quoted, values, decimals in intervals(prose(writeup_text)):
        tolerance = 0.5 * 10 ** -decimals + 0.0051
        if not any(all(abs(a - b) <= tolerance for a, b in zip(values, ref)) for ref in known):
            missing.append(quoted)
    return missing


DECIMAL = re.compile(rf"(?<![\w.])({NUMBER})(?![\w.]*\d)")


def unsupported_numbers(writeup_text, sources):
    """The numbers with a decimal point in the prose of writeup_text that none of `sources` holds at the quoted
    precision (sources: the generated blocks, and the configuration files a method sentence may quote)."""
    known = {}
    for text in sources:
        for m in re.finditer(NUMBER, text):
            if "." in m.group(0):
                v = abs(_value(m.group(0)))
                for d in range(0, _decimals(m.group(0)) + 1):
                    known.setdefault(d, set()).add(round(v, d))
    missing = []
    for m in DECIMAL.finditer(prose(writeup_text)):
        s = m.group(1)
        if "." in s and round(abs(_value(s)), _decimals(s)) not in known.get(_decimals(s), set()):
            missing.append(s)
    return missing
