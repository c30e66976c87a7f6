#!/usr/bin/env python3
"""List pairs of modules (files) of a crate that import each other.

Usage: scripts/import-cycles.py [--parents] [CRATE_DIR ...]   (default: every workspace crate)

For every Rust source file under each crate's src/ (and tests/, benches/, examples/ as their own
roots) it collects the module paths the file names: `use crate::a::b`, `use super::x`, grouped
`use crate::{a, b::c}` and paths written in code (`crate::a::f()`), resolves each to the file of the
longest matching module, and reports every pair of files that name each other. A child naming its
parent (`use super::*` in a `tests.rs`) is the usual Rust shape and is only listed with --parents.
Exit status 1 when a pair is found, so it can guard CI.
"""
import os
import re
import sys

ROOTS = ("src", "tests", "benches", "examples")


def strip_comments(text):
    """Drop comments, string and char literals (so `crate::x` in a message does not count)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'":
            m = re.match(r"'(?:\\.|\\u\{[0-9a-fA-F]+\}|[^'\\])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """Expand `a::{b, c::{d, e}}` into ["a::b", "a::c::d", "a::c::e"]."""
    tree = tree.strip()
    m = re.match(r"^([\w:]*?)(::)?\{(.*)\}$", tree, flags=re.S)
    if not m:
        return [re.sub(r"\s+as\s+\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(3)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        for e in expand_use(p):
            out.append(prefix + "::" + e if prefix and e != "self" else (prefix or e))
    return out


def module_files(root_dir):
    """Map module path (tuple) -> file, for one crate root directory (src/, tests/it/, ...)."""
    mods = {}
    for dirpath, _, files in os.walk(root_dir):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root_dir)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = path
    return mods


def refs(path, modpath, mods):
    text = strip_comments(open(path, encoding="utf-8").read())
    names = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        names.extend(expand_use(m.group(1)))
    names.extend(re.findall(r"\b((?:crate|super)(?:::\w+)+)", text))
    # a parent naming its own child modules without `self::` (`state::Params`)
    for n in re.findall(r"(?<![\w:])(\w+(?:::\w+)+)", text):
        if tuple(modpath) + (n.split("::")[0],) in mods:
            names.append("self::" + n)
    # inline `mod x { ... }` blocks (tests) resolve `super` to this file: handled as self edges
    out = set()
    for n in names:
        segs = [s for s in n.replace(" ", "").split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] == "super":
            base = list(modpath)
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
        elif segs[0] == "self":
            base, segs = list(modpath), segs[1:]
        else:
            continue
        full = base + segs
        for k in range(len(full), -1, -1):
            target = mods.get(tuple(full[:k]))
            if target:
                if target != path:
                    out.add(target)
                break
    return out


def crate_dirs(ws):
    for entry in sorted(os.listdir(ws)):
        d = os.path.join(ws, entry)
        if os.path.isfile(os.path.join(d, "Cargo.toml")) and entry not in ("target",):
            yield d
    ex = os.path.join(ws, "examples")
    if os.path.isdir(ex):
        for entry in sorted(os.listdir(ex)):
            d = os.path.join(ex, entry)
            if os.path.isfile(os.path.join(d, "Cargo.toml")):
                yield d


def main(argv):
    parents = "--parents" in argv
    args = [a for a in argv if a != "--parents"]
    ws = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = args or list(crate_dirs(ws))
    found = 0
    files = 0
    for c in crates:
        roots = []
        for r in ROOTS:
            d = os.path.join(c, r)
            if not os.path.isdir(d):
                continue
            if r == "src":
                roots.append(d)
            else:  # each integration-test / bench / example binary is its own crate root
                for e in sorted(os.listdir(d)):
                    p = os.path.join(d, e)
                    if os.path.isdir(p) or e.endswith(".rs"):
                        roots.append(p)
        for root in roots:
            if os.path.isfile(root):
                files += 1
                continue
            mods = module_files(root)
            inv = {v: k for k, v in mods.items()}
            edges = {f: refs(f, inv[f], mods) for f in mods.values()}
            files += len(edges)
            for a, targets in sorted(edges.items()):
                for b in sorted(targets):
                    if a < b and a in edges.get(b, ()):
                        ma, mb = inv[a], inv[b]
                        related = ma[: len(mb)] == mb or mb[: len(ma)] == ma
                        if related and not parents:
                            continue
                        kind = "parent/child" if related else "siblings"
                        print(f"{os.path.relpath(a, ws)} <-> {os.path.relpath(b, ws)} ({kind})")
                        found += 1
    print(f"{found} pair(s) of files that import each other ({files} files read)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
