"""`make mutate`'s summary: the score per module and every surviving mutant, from mutmut's results.

mutmut (3.x) writes, beside each mutated module in mutants/, a `.meta` file with the test
run's exit code for every mutant, and the module itself holds the original function
(`x_NAME__mutmut_orig`) and each mutant (`x_NAME__mutmut_N`). A mutant is killed when a
test failed (exit 1 or 3) or the tests ran past the time limit; it survived when they all
passed; "no tests" means no selected test reached the function (also a survivor here).

A survivor that changes nothing a user or a figure can see (an equivalent mutant) is
listed in tests/mutation_survivors.txt with the reason: a block of the function name,
the removed and added lines of the mutant, and `why:`. Listed survivors still count
against the score; the exit code is 1 when a module scores under the target or a
survivor is neither killed nor listed.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from tools import REPO_ROOT

KILLED = {1, 3, 24, -24, 36, 152, 255}      # a failing test, or the tests ran out of time
TARGET = 90.0
EXPLAINED = REPO_ROOT / "tests" / "mutation_survivors.txt"
_NAME = re.compile(r"^x_?(?P<cls>\w*?)ǁ?(?P<name>\w+)__mutmut_(?P<n>\d+|orig)$")


def _functions(source: Path) -> dict[str, str]:
    """Source text of every top-level function in a mutated module, by name."""
    text = source.read_text(encoding="utf-8")
    tree = ast.parse(text)
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name:
            found[node.name] = ast.get_source_segment(text, node) or ""
    return found


def _change(original: str, mutant: str) -> tuple[list[str], list[str]]:
    """The removed and added lines (stripped) of a mutant against its original."""
    removed, added = [], []
    same_name = re.sub(r"__mutmut_\d+\(", "__mutmut_orig(", mutant, count=1)
    for line in difflib.unified_diff(original.splitlines(), same_name.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        text = re.sub(r"\bx_(\w+?)__mutmut_orig\b", r"\1", line[1:].strip())
        (removed if line.startswith("-") else added).append(text)
    return removed, added


def _explained(path: Path) -> dict[tuple[str, tuple[str, ...], tuple[str, ...]], str]:
    """(function, removed, added) -> why, from the survivors file."""
    known = {}
    if not path.exists():
        return known
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        lines = [line for line in block.splitlines() if line.strip() and not line.startswith("# ")]
        if not lines or not lines[0].startswith("## "):
            continue
        function = lines[0][3:].strip()
        removed = tuple(line[2:].strip() for line in lines if line.startswith("- "))
        added = tuple(line[2:].strip() for line in lines if line.startswith("+ "))
        why = " ".join(line[4:].strip() for line in lines if line.startswith("why:"))
        known[(function, removed, added)] = why
    return known


def collect(mutants_dir: Path) -> dict[str, list[dict]]:
    """Every mutant of every mutated module: {module path: [{name, function, status, removed, added}]}."""
    modules: dict[str, list[dict]] = defaultdict(list)
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        source = meta.with_suffix("")
        module = source.relative_to(mutants_dir).as_posix()
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        functions = _functions(source)
        for key, code in codes.items():
            short = key.rsplit(".", 1)[1]
            match = _NAME.match(short)
            function = match["name"] if match else short
            original = functions.get(short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
            removed, added = _change(original, functions.get(short, ""))
            status = ("killed" if code in KILLED else "survived" if code == 0
                      else "no tests" if code in (5, 33) else "not run" if code is None else f"exit {code}")
            modules[module].append({"name": key, "function": f"{Path(module).stem}.{function}",
                                    "status": status, "removed": removed, "added": added})
    return modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=REPO_ROOT / "mutants")
    parser.add_argument("--target", type=float, default=TARGET)
    args = parser.parse_args(argv)
    modules = collect(args.mutants)
    if not modules:
        print(f"no mutmut results under {args.mutants}: run `make mutate`", file=sys.stderr)
        return 1
    known = _explained(EXPLAINED)
    used: set = set()
    failed = False
    rows = []
    unexplained: list[dict] = []
    for module, mutants in sorted(modules.items()):
        killed = sum(m["status"] == "killed" for m in mutants)
        survivors = [m for m in mutants if m["status"] != "killed"]
        listed = 0
        for m in survivors:
            key = (m["function"], tuple(m["removed"]), tuple(m["added"]))
            if key in known:
                listed += 1
                used.add(key)
            else:
                unexplained.append({**m, "module": module})
        score = 100.0 * killed / len(mutants)
        failed |= score < args.target
        rows.append((module, len(mutants), killed, len(survivors), listed, score))
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'listed':>7} {'score':>7}")
    for module, total, killed, survived, listed, score in rows:
        mark = "" if score >= args.target else f"  < {args.target:.0f}%"
        print(f"{module:28} {total:8d} {killed:7d} {survived:9d} {listed:7d} {score:6.1f}%{mark}")
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutants neither killed nor listed in "
              f"{EXPLAINED.relative_to(REPO_ROOT)}:")
        for m in unexplained:
            print(f"\n## {m['function']}    [{m['name']} {m['status']}]")
            for line in m["removed"]:
                print(f"- {line}")
            for line in m["added"]:
                print(f"+ {line}")
    stale = [key for key in known if key not in used]
    if stale:
        print(f"\n{len(stale)} listed survivors no longer survive (remove them from the list):")
        for function, removed, added in stale:
            print(f"  {function}: {' / '.join(removed)} -> {' / '.join(added)}")
    return 1 if failed or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
