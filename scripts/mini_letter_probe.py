"""Does a mini model bind an MMLU-format answer to its letter, or answer one letter whatever the question?

The mini families' MMLU is multiple choice with letter answers (" A" .. " D" after "Answer:"). A model
that always answers the same letter scores that letter's share of the test set, which can be above 25%
without any skill. This probe scores, with `bitmerge score`, each model of a family on
  - train-pretrain: MMLU-format practice items from the base's own pretraining corpus (train facts),
  - train-chat:     MMLU-format items from the chat expert's fine-tuning set (train facts),
  - test:           the family's MMLU test items (held out),
and prints accuracy and the histogram of the letters it picks (argmax of the four log-likelihoods, as
lm-eval's acc). A model that binds letters fits its own training items far above 25% and spreads its
picks over the letters; a letter prior shows as one letter picked almost always.

    .venv/bin/python scripts/mini_letter_probe.py [FAMILY_DIR=mini-nano] [--items 200] [--bin build/bitmerge]
"""
import argparse
import csv
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

LETTERS = "ABCD"
PREFIX = "The following are multiple choice questions (with answers) about "


def fail(msg):
    sys.exit(f"mini_letter_probe.py: {msg}")


def read_jsonl(path):
    if not os.path.isfile(path):
        fail(f"{path} not found: a family directory written by `bitmerge mini build` (data/corpus/) is needed")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def items(family, n, bin_, seed=0):
    """(kind, context ending in 'Answer:', answer index) triples. The test contexts are the engine's own
    (`bitmerge requests --tasks mmlu`, lm-eval's template); their gold letters come from the test CSVs,
    which the engine reads in the same order (checked: each question is in its context)."""
    rng = random.Random(seed)
    out = []
    pre = [d.get("text", "") for d in read_jsonl(os.path.join(family, "data/corpus/pretrain.jsonl"))]
    pre = [t for t in pre if t.startswith(PREFIX) and "\nA. " in t and "Answer:" in t]
    rng.shuffle(pre)
    for t in pre[:n]:
        ctx, ans = t.rsplit("Answer:", 1)
        out.append(("train-pretrain", ctx + "Answer:", LETTERS.index(ans.strip()[0])))
    chat = read_jsonl(os.path.join(family, "data/corpus/chat.jsonl"))
    chat = [d for d in chat if d.get("prompt", "").startswith(PREFIX) and "\nA. " in d["prompt"]]
    rng.shuffle(chat)
    for d in chat[:n]:
        out.append(("train-chat", d["prompt"], LETTERS.index(d["completion"].strip()[0])))
    tests = sorted(glob.glob(os.path.join(family, "data/mmlu/test/*_test.csv")))
    if not tests:
        fail(f"no MMLU test files in {family}/data/mmlu/test")
    gold = []
    for f in tests:
        with open(f, newline="") as fh:
            gold += [(row["question"], int(row["answer"])) for row in csv.DictReader(fh)]
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "mmlu.jsonl")
        r = subprocess.run([bin_, "requests", "--tasks", "mmlu", "--data-dir", os.path.join(family, "data"),
                            "--output", dump], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"bitmerge requests failed on {family}/data: {(r.stderr.strip().splitlines() or [r.returncode])[-1]}")
        ctxs = [d["context"] for d in read_jsonl(dump)][::4]  # four letter continuations per item
    if len(ctxs) != len(gold) or any(q not in c for (q, _), c in zip(gold, ctxs)):
        fail(f"{family}/data/mmlu/test: the engine's MMLU items do not line up with the test CSVs")
    out += [("test", c, a) for c, (_, a) in zip(ctxs, gold)]
    return out


def probe(model_dir, its, bin_):
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(inp, "w") as f:
            for _, ctx, _ in its:
                for c in LETTERS:
                    f.write(json.dumps({"context": ctx, "continuation": " " + c}) + "\n")
        r = subprocess.run([bin_, "score", "--model", model_dir, "--input", inp, "--output", outp, "--no-add-bos"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"bitmerge score failed on {model_dir}: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
        lp = [json.loads(line)["logprob"] for line in open(outp)]
    res = {}
    for i, (kind, _, ans) in enumerate(its):
        s = lp[4 * i: 4 * i + 4]
        pick = s.index(max(s))
        r = res.setdefault(kind, {"n": 0, "correct": 0, "picks": [0] * 4, "answers": [0] * 4})
        r["n"] += 1
        r["correct"] += pick == ans
        r["picks"][pick] += 1
        r["answers"][ans] += 1
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family", nargs="?", default="mini-nano")
    ap.add_argument("--items", type=int, default=200, help="train items of each kind (default 200)")
    ap.add_argument("--bin", default=os.environ.get("BITMERGE_BIN", "build/bitmerge"))
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        fail(f"--bin {a.bin}: no bitmerge binary there (build it, or pass --bin)")
    its = items(a.family, a.items, a.bin)
    models = sorted(d for d in glob.glob(os.path.join(a.family, "models", "*")) if os.path.isdir(d))
    if not models:
        fail(f"no models in {a.family}/models")
    print(f"MMLU-format letter probe, family {a.family}: accuracy % (n) and the letters picked A/B/C/D "
          "(the answers' letters in brackets)\n")
    print("| model | train-pretrain | train-chat | test |")
    print("|---|---|---|---|")
    for m in models:
        res = probe(m, its, a.bin)
        cells = []
        for kind in ("train-pretrain", "train-chat", "test"):
            r = res.get(kind)
            cells.append("—" if not r else f"{100 * r['correct'] / r['n']:.1f} ({r['n']}); picks "
                         f"{'/'.join(map(str, r['picks']))} [{'/'.join(map(str, r['answers']))}]")
        print(f"| {os.path.basename(m)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
