"""Markdown report of bench/gpu/table2_realshape.sh from its work folder.

usage: table2_report.py --work WORK --out FILE [--device NAME] [--commit C] [--limit N] [--budget S] [--args "..."]

Reads WORK/steps.tsv (setup steps), WORK/runs.tsv (one row per variant process),
WORK/cells.tsv (`bitmerge run --dry-run`: index, variant, benchmark, status, key),
WORK/results/cells/*.json (score, items, the task's own seconds; the file's mtime
is when the cell finished), WORK/results/cells/partial/* (routed groups),
WORK/logs/v<I>-<attempt>.log (stderr, each line prefixed by its epoch time),
WORK/gpu_mem.txt (epoch, MiB used on the GPU), WORK/resume.txt, WORK/table.md.
Everything reported is measured; a variant the budget did not reach is listed as
not run.
"""
import argparse
import datetime
import glob
import json
import os
import re
import tomllib


def read_tsv(p):
    if not os.path.exists(p):
        return []
    return [l.rstrip("\n").split("\t") for l in open(p) if l.strip()]


def stamped(p):
    out = []
    if os.path.exists(p):
        for l in open(p, errors="replace"):
            t, _, msg = l.rstrip("\n").partition(" ")
            try:
                out.append((float(t), msg))
            except ValueError:
                pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="")
    ap.add_argument("--commit", default="")
    ap.add_argument("--limit", default="")
    ap.add_argument("--budget", default="")
    ap.add_argument("--args", default="")
    a = ap.parse_args()
    W = a.work
    R = os.path.join(W, "results")
    with open(os.path.join(W, "table2.toml"), "rb") as f:
        exp = tomllib.load(f)
    kind = {v["name"]: v["kind"] for v in exp["variants"]}
    mk = {}
    try:
        mk = json.loads(open(os.path.join(W, "make_family.out")).read().strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        pass
    if mk.get("reused") and os.path.exists(os.path.join(W, "make_family.json")):
        mk = dict(json.load(open(os.path.join(W, "make_family.json"))), reused=True)
    cells = [r for r in read_tsv(os.path.join(W, "cells.tsv")) if len(r) >= 5]
    by_variant = {}
    for idx, var, bench, _, key in cells:
        by_variant.setdefault(var, []).append((int(idx), bench, key))
    mem = []
    if os.path.exists(os.path.join(W, "gpu_mem.txt")):
        for l in open(os.path.join(W, "gpu_mem.txt")):
            p = l.split()
            if len(p) == 2:
                try:
                    mem.append((float(p[0]), float(p[1])))
                except ValueError:
                    pass

    def peak(t0, t1):
        v = [m for t, m in mem if t0 <= t <= t1]
        return f"{max(v):,.0f}" if v else ""

    def cell_rec(key):
        p = os.path.join(R, "cells", key + ".json")
        if not os.path.exists(p):
            return None
        j = json.load(open(p))
        return {"mtime": os.stat(p).st_mtime, "score": j.get("score"), "metric": j.get("metric", ""),
                "n": j.get("n_items", 0), "sec": (j.get("extra") or {}).get("seconds"),
                "routed": (j.get("extra") or {}).get("routed_items")}

    L = []
    fam = mk.get("shape", "?")
    L.append(f"#### Table 2 end to end at real shape: {fam} x {mk.get('layers', '?')} layers, random weights "
             f"({a.device or '?'}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, binary at commit {a.commit})")
    L.append("")
    L.append(f"`bash bench/gpu/table2_realshape.sh {a.args}`: `bitmerge run` on a copy of table2.toml "
             f"(family = the generated one; a Routing variant added), `--limit {a.limit}` per benchmark, "
             f"one process per variant (`--only-variant`), budget {a.budget} s. Not the full-size grid: "
             "cells here have at most --limit items.")
    L.append("")
    # -- setup
    L.append("| step | s | notes |")
    L.append("|---|---:|---|")
    for r in read_tsv(os.path.join(W, "steps.tsv")):
        r += [""] * (3 - len(r))
        note = r[2]
        if r[0] == "make_family" and mk:
            if mk.get("reused") and "per_model" not in mk:
                note = "reused; " + note
            elif mk.get("bytes"):
                note = (("reused (made earlier: " if mk.get("reused") else "") +
                        f"{mk['bytes'] / 1e9:.1f} GB in {mk.get('seconds', 0):.1f} s, {mk.get('GBps', 0):.2f} GB/s: " +
                        "; ".join(f"{p['dir']} {p['format']} x{p['shards']} {p['dtype']} vocab {p['vocab']} {p['seconds']:.1f} s"
                                  for p in mk.get("per_model", [])) + (")" if mk.get("reused") else "") + "; " + note)
            for n in mk.get("notes", []):
                note += "; " + n
        L.append(f"| {r[0]} | {r[1]} | {note} |")
    L.append("")
    # -- per variant
    runs = read_tsv(os.path.join(W, "runs.tsv"))
    L.append("| order | variant | kind | attempt | status | cells (now) | process wall s | model ready s | peak GPU MiB | where the time went |")
    L.append("|---:|---|---|---:|---|---:|---:|---:|---:|---|")
    per_cell_rows = []
    total_wall = 0.0
    order = 0
    for r in runs:
        r += [""] * (7 - len(r))
        vi, name, att, start, end, rc, status = r[:7]
        if att == "1":
            order += 1
        k = kind.get(name, "?")
        if not start:
            L.append(f"| {order} | {name} | {k} | {att} | {status} | | | | | |")
            continue
        t0, t1 = float(start), float(end)
        total_wall += t1 - t0
        recs = [(b, key, cell_rec(key)) for _, b, key in by_variant.get(name, [])]
        mine = sorted([(c["mtime"], b, key, c) for b, key, c in recs if c and t0 <= c["mtime"] <= t1 + 1])
        n_done = sum(1 for _, _, c in recs if c)
        log = stamped(os.path.join(W, "logs", f"v{vi}-{att}.log"))
        notes = []
        ready = ""
        m = [msg for _, msg in log if re.search(r"\d+ cells, \d+ cached, \d+ to run", msg)]
        if m:
            notes.append(re.search(r"\d+ cells, \d+ cached, \d+ to run", m[0]).group(0))
        if k in ("routing", "onebit_merging"):
            tr = [t for t, msg in log if "router:" in msg and "training prompts" in msg]
            ta = [t for t, msg in log if "router: training accuracy" in msg]
            if tr and ta:
                notes.append(f"router trained in {ta[0] - tr[0]:.1f} s ({tr[0] - t0:.1f} s after start)")
            elif not tr and any("routed to" in msg for _, msg in log):
                notes.append("router loaded from cache")
            for t, msg in log:
                mb = re.search(r"routed bank holds (\d+) MiB on (.*)$", msg)
                if mb:
                    notes.append(f"bank {int(mb.group(1)):,} MiB on {mb.group(2)} (at {t - t0:.1f} s)")
                if "routed bank not used" in msg:
                    notes.append(msg.split("] ", 1)[-1][:160])
            routes = [(t, re.search(r"routed to (\S+) \((.*?)\) in ([\d.]+) ms", msg)) for t, msg in log]
            routes = [(t, x) for t, x in routes if x]
            if routes:
                ready = f"{routes[0][0] - t0:.1f}"
            parts = sorted(glob.glob(os.path.join(R, "cells", "partial", "*.json")), key=os.path.getmtime)
            seq = []
            for i, (t, x) in enumerate(routes):
                nxt = routes[i + 1][0] if i + 1 < len(routes) else t1
                groups = [p for p in parts if t <= os.path.getmtime(p) <= nxt]
                pk = peak(t, nxt)
                seq.append(f"{x.group(1)}: {'model built' if 'model built' in x.group(2) else 'switch'} "
                           f"{float(x.group(3)):.0f} ms, {len(groups)} groups evaluated in {nxt - t:.1f} s"
                           + (f", peak {pk} MiB" if pk else ""))
            if seq:
                notes.append("; ".join(seq))
        else:
            b = [t for t, msg in log if re.search(r"\] build .* (\d+)/\1 \(100%\)", msg)]
            if b:
                notes.append(f"merge/build done {b[-1] - t0:.1f} s after start")
            w = [msg for _, msg in log if "CUDA warm-up" in msg]
            if w:
                notes.append(w[0].split("] ", 1)[-1])
            if mine and mine[0][3]["sec"] is not None:
                ready = f"{mine[0][0] - mine[0][3]['sec'] - t0:.1f}"
        gen = [msg for _, msg in log if "] generate:" in msg]
        if gen:
            notes.append(f"{len(gen)} generate calls logged")
        L.append(f"| {order} | {name} | {k} | {att} | {status} | {n_done}/{len(recs)} | {t1 - t0:.1f} | {ready} | "
                 f"{peak(t0, t1)} | {'; '.join(notes)} |")
        prev = t0
        for mt, b, key, c in mine:
            routed = k in ("routing", "onebit_merging")
            wall = "" if routed else f"{mt - prev:.1f}"
            pk = "" if routed else peak(prev, mt)
            rt = ", ".join(f"{x} {n}" for x, n in (c["routed"] or {}).items())
            per_cell_rows.append(f"| {name} | {b} | {c['n']} | {c['score']:.2f} {c['metric']} | "
                                 f"{(c['sec'] or 0):.1f} | {wall} | {pk} | {rt} |")
            prev = mt
    L.append("")
    n_all = len(cells)
    n_done = sum(1 for *_, key in cells if os.path.exists(os.path.join(R, "cells", key + ".json")))
    L.append(f"Cells finished: {n_done}/{n_all}; sum of the variant processes' wall time {total_wall:.1f} s "
             "(each measured; nothing extrapolated). Model ready = process start to the model's first "
             "evaluation (load or merge, CUDA warm-up); for routed variants, to the first route. "
             "Peak GPU MiB: nvidia-smi memory.used sampled every ~0.25 s (whole GPU, the engine sizes "
             "its batches to the free memory, so this is the plan's high-water mark, not the model's size).")
    L.append("")
    # -- resume
    if os.path.exists(os.path.join(W, "resume.txt")) and os.path.getsize(os.path.join(W, "resume.txt")):
        L.append(open(os.path.join(W, "resume.txt")).read().rstrip())
    else:
        L.append("Kill-and-resume check: not run (no --kill-variant, or the variant was not reached or not killed).")
    L.append("")
    # -- per cell
    L.append("| variant | benchmark | items | score | task s | cell wall s | peak GPU MiB | routed items |")
    L.append("|---|---|---:|---|---:|---:|---:|---|")
    L += per_cell_rows
    L.append("")
    L.append("Task s: the evaluation's own time (results' `seconds`; routed cells: the sum over route groups). "
             "Cell wall: since the previous cell of the same process finished (the first includes the model build).")
    L.append("")
    if os.path.exists(os.path.join(W, "table.md")) and os.path.getsize(os.path.join(W, "table.md")):
        L.append("`bitmerge table` over the finished cells (random weights: the scores mean nothing):")
        L.append("")
        L.append(open(os.path.join(W, "table.md")).read().split("Measured \u2212 paper")[0].rstrip())
        L.append("")
    text = "\n".join(L) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
