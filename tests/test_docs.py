"""The documentation holds together: every relative link of README.md and docs/*.md leads to a file (and to a
heading, where it names one), every docs page is linked from the README, the flag tables of docs/flags.md
are those of the scripts' parsers, and every option of the launcher, the aggregator and evaluate.py is
described on its page."""
import contextlib
import glob
import io
import os
import re
import runpy

import pytest

from conftest import ROOT

PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def text_of(path):
    return open(path, encoding="utf-8").read()


def anchors(path):
    """GitHub's anchors of a markdown file's headings."""
    out = set()
    for line in CODE.sub("", text_of(path)).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def links(path):
    return [m.group(1) for m in LINK.finditer(CODE.sub("", text_of(path)))]


@pytest.mark.parametrize("path", [os.path.join(ROOT, "README.md")] + PAGES, ids=os.path.basename)
def test_every_relative_link_resolves(path):
    for link in links(path):
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto
        target, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
        assert os.path.exists(target), f"{os.path.relpath(path, ROOT)}: broken link {link}"
        if anchor and target.endswith(".md"):
            assert anchor in anchors(target), f"{os.path.relpath(path, ROOT)}: no heading for {link}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {os.path.normpath(os.path.join(ROOT, l.partition("#")[0])) for l in links(os.path.join(ROOT, "README.md"))}
    missing = [os.path.relpath(p, ROOT) for p in PAGES if p not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"
    assert len(text_of(os.path.join(ROOT, "README.md")).splitlines()) <= 400


def test_no_path_of_this_checkout_in_the_docs():
    for path in [os.path.join(ROOT, "README.md")] + PAGES:
        assert ROOT not in text_of(path), path


def test_flag_tables_match_the_parsers():
    tool = runpy.run_path(os.path.join(ROOT, "tools", "flags-doc.py"), run_name="flags_doc")
    text = text_of(tool["DOC"])
    assert tool["rewritten"](text) == text, "docs/flags.md is stale: run python tools/flags-doc.py"


def help_options(main, *args):
    """The options a command's --help lists (every --name at the start of a line of its option list)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(*args)
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][\w-]*)", out.getvalue(), re.M)) - {"--help"}


def test_launcher_aggregator_and_evaluate_options_are_documented():
    from common.launch.settings import Settings, parse_command_line
    launcher = help_options(parse_command_line, Settings(), ["--help"])
    aggregator = help_options(runpy.run_path(os.path.join(ROOT, "latex-code-gen.py"))["main"], ["--help"])
    evaluate = help_options(runpy.run_path(os.path.join(ROOT, "evaluate.py"))["main"], ["--help"])
    assert {"--dry-run", "--gpus", "--array-parallelism"} <= launcher and "--legacy-logs" in aggregator
    assert {"--convention", "--weight_noise"} <= evaluate
    for options, page in ((launcher, "launcher.md"), (aggregator | evaluate, "aggregator.md")):
        text = text_of(os.path.join(ROOT, "docs", page))
        missing = sorted(o for o in options if not re.search(re.escape(o) + r"(?![\w-])", text))
        assert not missing, f"docs/{page} does not describe {missing}"
