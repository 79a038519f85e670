"""Roofline ("physical limit") of the seven-benchmark zero-shot suite on one GPU, per task and in total.

usage: suite_limit.py --shape llama7b|llama13b|mistral7b [--mem-gb 80] [--bw 3.35e12] [--flops 790e12]
                      [--reserve-gb 3] [--measured mmlu=106.1,gsm8k=38.7,...] [--data-dir DIR]
                      [--tokenizer DIR] [--cache-dir /tmp/suite_limit] [--bin build/bitmerge]
                      [--max-rows N]   (what-if: cap generation rows per wave, e.g. the engine's 97 on 13B GSM8K)
       suite_limit.py --self-test

Shapes: from the program (`bitmerge inspect --shape`, through make_random_model.py's SHAPES /
program_shape, the presets the benchmark models are made from). Workload: exactly the engine's
requests, `bitmerge requests --tasks all --tokenizer <llama2 | mistral-7b-v0.1>` (lm-eval templates,
the engine's token ids and lm-eval's context/continuation split), dumped once into --cache-dir
(not the repo) and summarised there (requests_<tok>.jsonl, .log, .summary.json).

Model of the limit (every number is a lower bound on time under these assumptions):
  * Device: HBM bandwidth --bw B/s, dense bf16 --flops FLOP/s (defaults: H100 80GB HBM3, 3.35e12 and
    the issue's 790e12), memory --mem-gb (GB = 1e9 B; "79.6GiB" is accepted too) minus --reserve-gb
    (workspace, activations, allocator) for weights + KV cache. Every FLOP runs at the peak rate and
    every byte at the peak bandwidth; no kernel-launch, host, tokenizer or load time.
  * Weights bf16. Resident: all parameters x 2 B. Read per forward / decode step: the matmul weights
    (q,k,v,o, gate,up,down per layer, lm_head) x 2 B (the embedding is a gather of a few rows, norms
    are negligible).
  * FLOPs per forwarded token = 2 x matmul params (lm_head included, on every position as lm-eval's
    HF backend does) + attention 4 x layers x d_model x ctx (QK^T and AV; ctx = positions attended:
    causal, so a row of T tokens costs sum_{t=1..T} t; Mistral: min(t, sliding window)).
  * Log-likelihood (MMLU, HellaSwag, TruthfulQA) is FLOP-bound: time = max(FLOPs / --flops,
    forwards x weight bytes / --bw), a forward holding --score-tokens tokens (the bandwidth floor is
    under 1% of the FLOP time). Two workloads:
      issued: every request forwards (context + continuation)[:-1] (lm-eval: the last continuation
              token is only predicted), no sharing;
      shared: requests with the same context ids (an item's choices) forward the context once, then
              each continuation's tokens but its last, attending to the whole context. MMLU's one-token
              answers thus cost one forward of the question. This is the limit the measured/limit
              column uses. (A note gives the prefix-tree bound too: every distinct token prefix of the
              task's contexts once, e.g. MMLU's subject header once per subject.)
  * Generation (GSM8K, MATH, HumanEval, MBPP): greedy, random weights never emit EOS, so every request
    runs its full max_new_tokens (the benchmark's worst case, as bench/gpu/full_suite.sh measures);
    stop strings never cut it either.
      prefill: every prompt once, FLOP-bound (prompt FLOPs / --flops); it yields the first new token,
               so a row then needs max_new_tokens - 1 decode steps (as the engine counts steps).
      rows:    a row holds KV for min(prompt + max_new_tokens, window) tokens at kv bytes per token
               = layers x 2 (K,V) x kv_heads x head_dim x 2 B; rows are sorted by that (longest first)
               and packed greedily into waves whose KV sum fits mem - resident weights - reserve (the
               ideal paged cache: no padding to a group's longest prompt, no headroom fractions).
               A wave's rows start together and all run max_new_tokens - 1 steps.
      step:    time = max(FLOPs / --flops, bytes / --bw) with FLOPs = 2 x matmul params x rows +
               4 x layers x d_model x sum(ctx) and bytes = matmul weight bytes + kv bytes x sum(ctx),
               ctx = prompt + step index (Mistral: at most the window). The max() is the compute cap:
               past ~250 rows (7B) a step stops being bandwidth-bound and more rows stop helping.
      task time = prefill + sum over waves and steps. Waves are not staggered: rows that start at
               different times (continuous batching) would hold ~prompt + max_new/2 tokens on average
               and fit more rows per step, which shrinks only the weight-read part (the KV part is
               per token and does not depend on the rows).
  * Excluded: running HumanEval/MBPP code (it can overlap generation), model load and warm-up
    (the measured figures of bench/RESULTS.md are process wall time, which includes ~4 s of load
    and warm-up per task), tokenization, stop-string checks.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the checkout
from make_random_model import SHAPES, find_bin, program_shape  # noqa: E402  (the shapes' one home)

TASKS = ["mmlu", "hellaswag", "truthfulqa", "gsm8k", "math", "humaneval", "mbpp"]
LABEL = {"mmlu": "MMLU", "hellaswag": "HellaSwag", "truthfulqa": "TruthfulQA", "gsm8k": "GSM8K",
         "math": "MATH", "humaneval": "HumanEval", "mbpp": "MBPP"}


# ---------------------------------------------------------------------------------------------- shapes
class Shape:
    def __init__(self, name, cfg, tensors):
        self.name = name
        self.d = cfg["hidden_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = cfg.get("head_dim") or self.d // self.heads
        self.ffn = cfg["intermediate_size"]
        self.vocab = cfg["vocab_size"]
        self.window = cfg.get("sliding_window") or None
        self.model_type = cfg.get("model_type", "llama")
        # From the program's tensor list (the shapes' one home): every parameter, and the matmul weights
        # (the 2-D ones but the embedding, which is a gather; the LM head included).
        self.params = sum(math.prod(shp) for _, shp in tensors)
        self.matmul_params = sum(math.prod(shp) for t, shp in tensors if len(shp) == 2 and "embed_tokens" not in t)
        self.weight_bytes = 2 * self.params             # resident, bf16
        self.read_bytes = 2 * self.matmul_params        # read per forward / decode step
        self.kv_per_token = self.layers * 2 * self.kv_heads * self.head_dim * 2

    def cap(self, n):
        """Positions attended / KV tokens held for n tokens of context (the sliding window caps them)."""
        return np.minimum(n, self.window) if self.window else n

    def attn_sum(self, n):
        """sum_{t=1..n} min(t, window): the causal attention positions of a row of n tokens."""
        n = np.asarray(n, dtype=np.float64)
        if not self.window:
            return n * (n + 1) / 2
        w = float(self.window)
        return np.where(n <= w, n * (n + 1) / 2, w * (w + 1) / 2 + (n - w) * w)

    def flops(self, tokens, attn_positions):
        return 2.0 * self.matmul_params * tokens + 4.0 * self.layers * self.d * attn_positions


def load_shape(name, bin_=""):
    s = program_shape(name, 0, bin_)
    return Shape(name, s["config"], s["tensors"])


class Device:
    def __init__(self, mem, bw, flops, reserve, score_tokens=65536, max_rows=0):
        self.mem, self.bw, self.fl, self.reserve, self.score_tokens = mem, bw, flops, reserve, score_tokens
        self.max_rows = max_rows  # 0 = as many as the memory holds (what-if: an engine's row cap)


def parse_gb(s):
    s = str(s).strip()
    if s.lower().endswith("gib"):
        return float(s[:-3]) * 2 ** 30
    if s.lower().endswith("gb"):
        s = s[:-2]
    return float(s) * 1e9


# ---------------------------------------------------------------------------------------------- workload
def tokenizer_for(shape, data_dir):
    sub = "mistral-7b-v0.1" if shape.model_type == "mistral" else "llama2"
    return os.path.join(data_dir, "tokenizers", sub)


def summarise(jsonl, log):
    """Per task: what the limit needs from the dump (lengths, context sharing, items from the log)."""
    tasks = {}
    for line in open(jsonl):
        r = json.loads(line)
        t = tasks.setdefault(r["task"], {"type": r["type"], "ctx": {}, "c": [], "k": [], "g": [], "p": [], "m": []})
        if r["type"] == "loglikelihood":
            key = tuple(r["context_ids"])
            g = t["ctx"].setdefault(key, len(t["ctx"]))
            t["c"].append(len(key))
            t["k"].append(len(r["continuation_ids"]))
            t["g"].append(g)
        else:
            t["p"].append(len(r["prompt_ids"]))
            t["m"].append(int(r["max_new_tokens"]))
    items = {}
    for line in open(log):  # "[bitmerge] requests: gsm8k: 1319 items, ..."
        parts = line.split("requests: ", 1)
        if len(parts) == 2 and " items," in parts[1]:
            name, rest = parts[1].split(":", 1)
            items[name.strip()] = int(rest.split(" items,")[0])
    out = {}
    for name, t in tasks.items():
        e = {"type": t["type"], "items": items.get(name, 0)}
        if t["type"] == "loglikelihood":
            ctxs = sorted(t["ctx"])  # lexicographic: the prefix tree's new tokens are len - LCP(previous)
            lcp, prev = [], ()
            for c in ctxs:
                n = 0
                for a, b in zip(prev, c):
                    if a != b:
                        break
                    n += 1
                lcp.append(n)
                prev = c
            distinct = [0] * len(t["ctx"])
            for key, g in t["ctx"].items():
                distinct[g] = len(key)
            e.update(c=t["c"], k=t["k"], g=t["g"], distinct=distinct,
                     tree_len=[len(c) for c in ctxs], tree_lcp=lcp)
        else:
            e.update(p=t["p"], m=t["m"])
        out[name] = e
    return out


def load_workload(tok_dir, data_dir, cache_dir, bin_=""):
    os.makedirs(cache_dir, exist_ok=True)
    tag = os.path.basename(os.path.normpath(tok_dir)) + "-" + hashlib.sha1(
        (os.path.abspath(data_dir) + "|" + os.path.abspath(tok_dir)).encode()).hexdigest()[:8]
    jsonl = os.path.join(cache_dir, f"requests_{tag}.jsonl")
    log, summ = jsonl[:-6] + ".log", jsonl[:-6] + ".summary.json"
    if not (os.path.isfile(jsonl) and os.path.isfile(log)):
        b = find_bin(bin_)
        cmd = [b, "requests", "--tasks", "all", "--data-dir", data_dir, "--tokenizer", tok_dir, "--output", jsonl + ".tmp"]
        print(f"dumping the workload (~30 s): {' '.join(cmd)}", file=sys.stderr)
        with open(log, "w") as lf:
            r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            sys.exit(f"bitmerge requests failed ({r.returncode}); see {log}")
        os.replace(jsonl + ".tmp", jsonl)
    st = os.stat(jsonl)
    stamp = f"{st.st_size}:{int(st.st_mtime)}"
    if os.path.isfile(summ):
        s = json.load(open(summ))
        if s.get("stamp") == stamp:
            return s["tasks"], jsonl
    tasks = summarise(jsonl, log)
    with open(summ, "w") as f:
        json.dump({"stamp": stamp, "tasks": tasks}, f)
    return tasks, jsonl


# ---------------------------------------------------------------------------------------------- limits
def score_limit(t, sh, dev):
    """Log-likelihood task: {issued, shared, tree}: (forwarded tokens, seconds)."""
    c = np.asarray(t["c"], dtype=np.float64)
    k = np.asarray(t["k"], dtype=np.float64)
    if (c < 1).any():
        sys.exit("a log-likelihood request with an empty context: not modelled")
    distinct = np.asarray(t["distinct"], dtype=np.float64)

    def secs(tokens, attn):
        fwd = np.ceil(tokens / dev.score_tokens)
        return max(sh.flops(tokens, attn) / dev.fl, fwd * sh.read_bytes / dev.bw)

    n = c + k - 1  # lm-eval forwards (context + continuation)[:-1]
    issued = (n.sum(), secs(n.sum(), sh.attn_sum(n).sum()))
    cont_tok = (k - 1).sum()
    cont_attn = (sh.attn_sum(n) - sh.attn_sum(c)).sum()
    shared_tok = distinct.sum() + cont_tok
    shared = (shared_tok, secs(shared_tok, sh.attn_sum(distinct).sum() + cont_attn))
    tl, tp = np.asarray(t["tree_len"], dtype=np.float64), np.asarray(t["tree_lcp"], dtype=np.float64)
    tree_tok = (tl - tp).sum() + cont_tok
    tree = (tree_tok, secs(tree_tok, (sh.attn_sum(tl) - sh.attn_sum(tp)).sum() + cont_attn))
    return {"issued": issued, "shared": shared, "tree": tree}


def waves_of(p, m, sh, dev):
    """Greedy packing of rows (longest KV first) into waves whose final KV fits the memory left."""
    budget = dev.mem - sh.weight_bytes - dev.reserve
    need = sh.kv_per_token * sh.cap(p + m).astype(np.float64)
    if budget <= 0 or need.max() > budget:
        sys.exit(f"{sh.name}: weights {sh.weight_bytes / 1e9:.1f} GB + reserve leave {budget / 1e9:.1f} GB, "
                 f"less than one row's KV cache ({need.max() / 1e9:.2f} GB)")
    order = np.lexsort((p, need))[::-1]
    waves, cur, used = [], [], 0.0
    for i in order:
        if cur and (used + need[i] > budget or len(cur) == dev.max_rows):
            waves.append(np.asarray(cur))
            cur, used = [], 0.0
        cur.append(i)
        used += need[i]
    if cur:
        waves.append(np.asarray(cur))
    return waves


def gen_limit(t, sh, dev):
    """Generation task: prefill + decode seconds, rows, waves, steps and the parts of the decode time."""
    p = np.asarray(t["p"], dtype=np.int64)
    m = np.asarray(t["m"], dtype=np.int64)
    prefill = sh.flops(p.sum(), sh.attn_sum(p).sum()) / dev.fl
    res = {"prefill": prefill, "decode": 0.0, "w_part": 0.0, "kv_part": 0.0, "fl_part": 0.0, "compute_steps": 0, "steps": 0,
           "rows": 0, "waves": 0, "tokens": int(m.sum())}
    for w in waves_of(p, m, sh, dev):
        pw, mw = p[w], m[w]
        S = int(mw.max()) - 1
        if S <= 0:
            continue
        j = np.arange(1, S + 1)[:, None]                        # decode step index
        live = j <= (mw - 1)[None, :]                           # row still decoding at step j
        ctx = np.where(live, sh.cap(pw[None, :] + j), 0).astype(np.float64)
        sum_ctx = ctx.sum(1)
        rows = live.sum(1).astype(np.float64)
        t_fl = (2.0 * sh.matmul_params * rows + 4.0 * sh.layers * sh.d * sum_ctx) / dev.fl
        t_w = sh.read_bytes / dev.bw
        t_kv = sh.kv_per_token * sum_ctx / dev.bw
        step = np.maximum(t_fl, t_w + t_kv)
        res["decode"] += step.sum()
        mem_bound = t_w + t_kv >= t_fl
        res["w_part"] += (t_w * mem_bound).sum()
        res["kv_part"] += (t_kv * mem_bound).sum()
        res["fl_part"] += t_fl[~mem_bound].sum()
        res["compute_steps"] += int((~mem_bound).sum())
        res["steps"] += S
        res["rows"] = max(res["rows"], len(w))
        res["waves"] += 1
    res["total"] = res["prefill"] + res["decode"]
    return res


def step_time(sh, dev, rows, ctx):
    """One decode step of `rows` rows at `ctx` tokens each (the sanity check's figure)."""
    c = float(sh.cap(ctx))
    return max((2.0 * sh.matmul_params * rows + 4.0 * sh.layers * sh.d * rows * c) / dev.fl,
               (sh.read_bytes + sh.kv_per_token * rows * c) / dev.bw)


# ---------------------------------------------------------------------------------------------- report
def fmt_tok(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def report(sh, dev, tasks, measured, jsonl):
    out = []
    P = out.append
    P(f"## Physical limit of the suite: {sh.name} ({sh.layers} layers, d {sh.d}, ffn {sh.ffn}, "
      f"{sh.heads}/{sh.kv_heads} heads, vocab {sh.vocab}" + (f", window {sh.window}" if sh.window else "") + ")")
    P("")
    cap = f", generation rows capped at {dev.max_rows} (what-if)" if dev.max_rows else ""
    P(f"Device: {dev.mem / 1e9:.1f} GB ({dev.mem / 2**30:.1f} GiB), reserve {dev.reserve / 1e9:.1f} GB, "
      f"HBM {dev.bw / 1e12:.2f} TB/s, bf16 {dev.fl / 1e12:.0f} TFLOP/s. Weights {sh.params / 1e9:.3f} B params = "
      f"{sh.weight_bytes / 1e9:.2f} GB resident, {sh.read_bytes / 1e9:.2f} GB of matmul weights read per step; "
      f"KV {sh.kv_per_token // 1024} KiB per token; KV room {(dev.mem - sh.weight_bytes - dev.reserve) / 1e9:.1f} GB. "
      f"Workload: `{jsonl}`{cap}.")
    P("")
    has_m = bool(measured)
    head = "| task | items | requests | tokens (scoring) or rows x steps (generation) | limit s (issued) | limit s (shared) |"
    sep = "|---|---:|---:|---|---:|---:|"
    if has_m:
        head += " measured s | measured / limit |"
        sep += "---:|---:|"
    P(head)
    P(sep)
    tot_i = tot_s = tot_m = tot_lim_m = 0.0
    notes = []
    for name in TASKS:
        if name not in tasks:
            continue
        t = tasks[name]
        if t["type"] == "loglikelihood":
            r = score_limit(t, sh, dev)
            nreq = len(t["c"])
            wl = f"{fmt_tok(r['issued'][0])} issued / {fmt_tok(r['shared'][0])} shared"
            li, ls = r["issued"][1], r["shared"][1]
            notes.append(f"{LABEL[name]}: prefix tree {fmt_tok(r['tree'][0])} tokens, {r['tree'][1]:.1f} s; "
                         f"{len(t['distinct'])} distinct contexts")
        else:
            r = gen_limit(t, sh, dev)
            nreq = len(t["p"])
            S = max(t["m"]) - 1
            wl = f"<={r['rows']} rows x {r['waves']} waves x {S} = {r['steps']:,} steps, {fmt_tok(r['tokens'])} tok"
            li = ls = r["total"]
            notes.append(f"{LABEL[name]}: prefill {r['prefill']:.1f} s + decode {r['decode']:.1f} s (HBM-bound steps: "
                         f"weights {r['w_part']:.1f} s + KV {r['kv_part']:.1f} s" +
                         (f"; {r['compute_steps']} FLOP-bound steps {r['fl_part']:.1f} s" if r["compute_steps"] else "") +
                         f"); prompts mean {np.mean(t['p']):.0f} / max {max(t['p'])} tokens, max_new {max(t['m'])}")
        tot_i += li
        tot_s += ls
        row = f"| {LABEL[name]} | {t['items']:,} | {nreq:,} | {wl} | {li:.1f} | {ls:.1f} |"
        if has_m:
            if name in measured:
                tot_m += measured[name]
                tot_lim_m += ls
                row += f" {measured[name]:.1f} | {measured[name] / ls:.2f}x |"
            else:
                row += " - | - |"
        P(row)
    row = f"| **total** | | | | **{tot_i:.1f} s = {tot_i / 60:.1f} min** | **{tot_s:.1f} s = {tot_s / 60:.1f} min** |"
    if has_m:
        miss = [LABEL[n] for n in TASKS if n in tasks and n not in measured]
        part = f" (without {', '.join(miss)}; the measured tasks' limit {tot_lim_m:.1f} s)" if miss else ""
        row += f" {tot_m:.1f}{part} | {tot_m / tot_lim_m:.2f}x |" if tot_lim_m else " - | - |"
    P(row)
    P("")
    for n in notes:
        P(f"- {n}")
    P("- Limits assume peak FLOP/s and HBM bandwidth, bf16 weights and KV, the ideal paged KV cache, no code "
      "execution (HumanEval/MBPP tests can overlap generation), no load/warm-up; measured figures are process "
      "wall time (incl. ~4 s load + warm-up per task). measured / limit uses the shared-context limit.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- self-test
def self_test(bin_):
    dev = Device(80e9, 3.35e12, 790e12, 3e9)
    s7, s13, sm = (load_shape(n, bin_) for n in ("llama7b", "llama13b", "mistral7b"))
    # KV bytes per token: layers x 2 x kv_heads x head_dim x 2 B.
    assert s13.kv_per_token == 800 * 1024, s13.kv_per_token
    assert s7.kv_per_token == 512 * 1024, s7.kv_per_token
    assert sm.kv_per_token == 128 * 1024, sm.kv_per_token
    assert (sm.kv_heads, sm.window, s7.window) == (8, 4096, None)
    # Parameters (hand: 7B matmul/layer 4*4096^2 + 3*4096*11008 = 202,375,168; x32 + lm_head 131,072,000).
    assert s7.matmul_params == 202_375_168 * 32 + 131_072_000 == 6_607_077_376
    assert s7.params == 6_738_415_616 and s7.weight_bytes == 13_476_831_232
    assert s13.params == 13_015_864_320 and s13.weight_bytes == 26_031_728_640
    # Mistral per layer: q,o 4096^2 each, k,v 4096*1024 each, mlp 3*4096*14336.
    assert sm.matmul_params == 32 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 131_072_000
    # Sliding window: sum_{t=1..5000} min(t, 4096) = 4096*4097/2 + 904*4096.
    assert sm.attn_sum(5000) == 4096 * 4097 / 2 + 904 * 4096 and s7.attn_sum(5000) == 5000 * 5001 / 2
    # The 13B decode step of the engine log: 97 rows x 330 tokens -> (26.0 GB + 26.2 GB) / 3.35 TB/s ~ 15.6 ms.
    st = step_time(s13, dev, 97, 330)
    assert abs(st - (25_703_219_200 + 97 * 330 * 819_200) / 3.35e12) < 1e-12 and 0.0155 < st < 0.0157, st
    # Scoring, 7B: one item, context 3 ids, continuations of 2 and 1 ids.
    t = {"c": [3, 3], "k": [2, 1], "g": [0, 0], "distinct": [3], "tree_len": [3], "tree_lcp": [0]}
    P, A = 6_607_077_376, 4 * 32 * 4096
    r = score_limit(t, s7, dev)  # one forward of 7 tokens: the weight read (3.9 ms) bounds it
    assert r["issued"][1] == r["shared"][1] == 2 * P / 3.35e12
    r = score_limit(t, s7, Device(80e9, 1e30, 790e12, 3e9))  # FLOPs alone
    assert r["issued"][0] == 4 + 3 and r["shared"][0] == 3 + 1
    assert abs(r["issued"][1] - (2 * P * 7 + A * (10 + 6)) / 790e12) < 1e-15      # rows of 4 and 3 tokens
    assert abs(r["shared"][1] - (2 * P * 4 + A * (6 + 4)) / 790e12) < 1e-15       # context 1+2+3, continuation 4
    # Generation, 7B: 3 prompts of 10/10/20 ids, 4 new tokens each (3 decode steps); KV room for 48 tokens.
    kv = 524_288
    d2 = Device(s7.weight_bytes + 3e9 + 2 * 24 * kv + 1, 3.35e12, 790e12, 3e9)
    g = gen_limit({"p": [10, 10, 20], "m": [4, 4, 4]}, s7, d2)
    assert (g["waves"], g["rows"], g["steps"]) == (2, 2, 6), g                    # [20, 10] then [10]
    pre = (2 * P * 40 + A * (55 + 55 + 210)) / 790e12
    W = 2 * P / 3.35e12
    dec = sum(W + kv * ((20 + j) + (10 + j)) / 3.35e12 for j in (1, 2, 3)) + \
        sum(W + kv * (10 + j) / 3.35e12 for j in (1, 2, 3))
    assert abs(g["prefill"] - pre) < 1e-15 and abs(g["decode"] - dec) < 1e-12, (g, pre, dec)
    # Compute cap: 4096 rows of 1 token on 7B is FLOP-bound (2*P*4096/790e12 = 68.5 ms > 4.6 ms of bytes).
    assert step_time(s7, dev, 4096, 1) == (2 * P * 4096 + A * 4096) / 790e12
    print("self-test passed: kv 800/512/128 KiB, weights 26.03/13.48 GB, the 15.6 ms 13B step, "
          "hand-computed scoring and generation limits")


def parse_measured(s):
    out = {}
    for part in filter(None, (x.strip() for x in s.split(","))):
        k, v = part.split("=")
        k = k.strip().lower()
        if k not in TASKS:
            sys.exit(f"--measured: unknown task {k} (one of {', '.join(TASKS)})")
        out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=[s for s in SHAPES if s != "tiny"], default="llama7b")
    ap.add_argument("--mem-gb", default="80", help="GPU memory, GB (1e9 B) or with a GiB suffix (79.6GiB)")
    ap.add_argument("--reserve-gb", type=float, default=3.0, help="workspace kept out of weights + KV, GB")
    ap.add_argument("--bw", type=float, default=3.35e12, help="HBM bandwidth, B/s")
    ap.add_argument("--flops", type=float, default=790e12, help="dense bf16 FLOP/s")
    ap.add_argument("--score-tokens", type=int, default=65536, help="tokens per scoring forward (bandwidth floor)")
    ap.add_argument("--max-rows", type=int, default=0, help="what-if: cap generation rows per wave (0 = memory only)")
    ap.add_argument("--measured", default="", help="task=seconds,... (adds measured / limit)")
    ap.add_argument("--data-dir", default="", help="benchmark data (default $BITMERGE_DATA_DIR or ../shared/data beside the checkout)")
    ap.add_argument("--tokenizer", default="", help="tokenizer dir for the dump (default: the shape's)")
    ap.add_argument("--cache-dir", default="/tmp/suite_limit", help="where the request dump is cached")
    ap.add_argument("--bin", default="", help="bitmerge binary (default as make_random_model.py)")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        self_test(a.bin)
        return
    measured = parse_measured(a.measured)
    data = a.data_dir
    if not data:
        for d in (os.environ.get("BITMERGE_DATA_DIR", ""), os.path.join(ROOT, "..", "shared", "data")):
            if d and os.path.isdir(os.path.join(d, "mmlu")):
                data = d
                break
    if not data or not os.path.isdir(os.path.join(data, "mmlu")):
        sys.exit("benchmark data not found; pass --data-dir")
    sh = load_shape(a.shape, a.bin)
    dev = Device(parse_gb(a.mem_gb), a.bw, a.flops, a.reserve_gb * 1e9, a.score_tokens, a.max_rows)
    tasks, jsonl = load_workload(a.tokenizer or tokenizer_for(sh, data), data, a.cache_dir, a.bin)
    print(report(sh, dev, tasks, measured, jsonl))


if __name__ == "__main__":
    main()
