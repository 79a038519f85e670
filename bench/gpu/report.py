"""Markdown report of bench/gpu/run_bench.sh: bitmerge vs HF transformers, with physical limits.

Reads WORK/{timings.jsonl, requests.jsonl, logs/*.err, bm_*_out.jsonl, hf_suite.json, hf_scale_*.json,
model-*/config.json}; writes --out (markdown) atomically.

Token counts (same numerator for both peers, so speed ratios are time ratios):
  loglikelihood: distinct contexts once + (continuation - 1) per request = the least a forward must see;
  generate prefill: prompt tokens; decode: generated tokens after the first (the prefill emits the first).
Limits: prefill <= PEAK / (2 * matmul params) tokens/s (attention FLOPs ignored);
  decode <= rows per step * HBM / (weight bytes) tokens/s (KV-cache reads ignored);
  matmul params = all but the input embedding (the LM head included).
"""
import argparse
import datetime
import glob
import json
import os
import re

SCORE_RE = re.compile(r"score: (\d+) requests, (\d+) continuation tokens in ([0-9.eE+-]+) s")
GEN_RE = re.compile(r"generate: (\d+) prompts, (\d+) generated tokens in ([0-9.eE+-]+) s")
FULL_LAYERS = {"llama7b": 32, "llama13b": 40, "mistral7b": 32, "tiny": 2}


def jl(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def params(cfg):
    h, L, v = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or h // nh
    layer = h * nh * hd + 2 * h * kv * hd + nh * hd * h + 3 * h * cfg["intermediate_size"] + 2 * h
    matmul = L * layer + h + v * h
    return matmul, matmul + v * h


def bm_log(work, name, rx):
    p = os.path.join(work, "logs", name + ".err")
    if not os.path.exists(p):
        return None
    m = None
    for line in open(p, errors="replace"):
        m = rx.search(line) or m
    return (int(m.group(1)), int(m.group(2)), float(m.group(3))) if m else None


def fmt(x, nd=1):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def pct(num, den):
    return f"{100 * num / den:.1f}%" if num and den else "n/a"


def ratio(a, b):  # speed ratio bitmerge/HF from times (b_time / a_time) handled by callers
    return f"{a / b:.2f}x" if a and b else "n/a"


def main():
    ap = argparse.ArgumentParser()
    for k in ["work", "mode", "shape", "device", "dtype", "scale-shapes", "scale-batches", "commit", "gpu", "command",
              "out"]:
        ap.add_argument("--" + k, default="")
    for k in ["layers", "limit", "batch-size", "scale-new-tokens"]:
        ap.add_argument("--" + k, type=int, default=0)
    for k in ["peak-tflops", "hbm-tbs", "total-s"]:
        ap.add_argument("--" + k, type=float, default=0)
    a = ap.parse_args()
    w = a.work
    timings = {t["name"]: t for t in jl(os.path.join(w, "timings.jsonl"))} if os.path.exists(
        os.path.join(w, "timings.jsonl")) else {}
    bytes_per = 4 if a.dtype == "float32" else 2
    peak = a.peak_tflops * 1e12
    bw = a.hbm_tbs * 1e12
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"### bitmerge vs HF transformers ({a.gpu}, {now})", "",
          f"commit `{a.commit}`, command `{a.command.strip()}`, total {a.total_s:.0f} s. Random-weight {a.dtype} models "
          f"with {a.layers} layers of the full shape (bench/gpu/make_random_model.py); both peers run the same token ids "
          f"(`bitmerge requests --tokenizer`). Limits: {a.peak_tflops:g} TFLOP/s dense bf16, {a.hbm_tbs:g} TB/s HBM.", ""]

    def model_cfg(shape):
        p = os.path.join(w, f"model-{shape}-L{a.layers}-{a.dtype}", "config.json")
        return json.load(open(p)) if os.path.exists(p) else None

    if a.mode in ("suite", "all") and os.path.exists(os.path.join(w, "requests.jsonl")):
        cfg = model_cfg(a.shape)
        pm, ptot = params(cfg)
        rq = jl(os.path.join(w, "requests.jsonl"))
        ll = [r for r in rq if r["type"] == "loglikelihood"]
        gen = [r for r in rq if r["type"] == "generate"]
        ctxs = {tuple(r["context_ids"]) for r in ll}
        ll_tokens = sum(len(c) for c in ctxs) + sum(len(r["continuation_ids"]) - 1 for r in ll)
        prompt_tokens = sum(len(r["prompt_ids"]) for r in gen)
        # rows per decode step (batches of --batch-size within each task, all run to the task's budget)
        by_task = {}
        for r in gen:
            by_task.setdefault(r["task"], []).append(r)
        rs = st = 0
        for task, rr in by_task.items():
            n, mx = len(rr), int(rr[0]["max_new_tokens"])
            for b0 in range(0, n, a.batch_size):
                rows = min(a.batch_size, n - b0)
                rs += rows * mx
                st += mx
        rows_per_step = rs / st if st else 1
        prefill_bound = peak / (2 * pm)
        decode_bound = rows_per_step * bw / (bytes_per * pm)

        hf = json.load(open(os.path.join(w, "hf_suite.json")))
        hp = {}
        for ph in hf["phases"]:
            hp.setdefault(ph["phase"], []).append(ph)
        bm_ll = bm_log(w, "bm_score", SCORE_RE)
        bm_pf = bm_log(w, "bm_gen_prefill", GEN_RE)
        bm_tasks = {t: bm_log(w, f"bm_gen_{t}", GEN_RE) for t in by_task}
        rows = []

        def row(name, work, bt, ht, toks, bound):
            bts = toks / bt if bt and toks else None
            hts = toks / ht if ht and toks else None
            rows.append(f"| {name} | {work} | {fmt(bt, 2)} | {fmt(ht, 2)} | {fmt(bts)} | {fmt(hts)} | {fmt(bound)} | "
                        f"{pct(bts, bound)} | {pct(hts, bound)} | {ratio(ht, bt)} |")

        if ll:
            row("loglikelihood", f"{len(ll)} req, {ll_tokens:,} tok", bm_ll[2] if bm_ll else None,
                hp["loglikelihood"][0]["seconds"] if "loglikelihood" in hp else None, ll_tokens, prefill_bound)
        if gen:
            bpf = bm_pf[2] if bm_pf else None
            hpf = hp["generate_prefill"][0]["seconds"] if "generate_prefill" in hp else None
            row("generate: prefill (1 new token)", f"{len(gen)} prompts, {prompt_tokens:,} tok", bpf, hpf, prompt_tokens,
                prefill_bound)
            bt = sum(v[2] for v in bm_tasks.values() if v)
            bn = sum(v[1] for v in bm_tasks.values() if v)
            hg = hp.get("generate", [])
            ht = sum(p["seconds"] for p in hg)
            hn = sum(p["generated_tokens"] for p in hg)
            bdec = (bn - len(gen)) / (bt - bpf) if bt and bpf and bt > bpf else None
            hdec = (hn - len(gen)) / (ht - hpf) if ht and hpf and ht > hpf else None
            rows.append(f"| generate: decode | bitmerge {bn:,} / HF {hn:,} tok, {rows_per_step:.1f} rows/step | "
                        f"{fmt(bt - bpf if bt and bpf else None, 2)} | {fmt(ht - hpf if ht and hpf else None, 2)} | "
                        f"{fmt(bdec)} | {fmt(hdec)} | {fmt(decode_bound)} | {pct(bdec, decode_bound)} | "
                        f"{pct(hdec, decode_bound)} | {ratio(bdec, hdec)} |")
            for task, v in bm_tasks.items():
                hpt = next((p for p in hg if p.get("task") == task), None)
                btps = v[1] / v[2] if v and v[2] else None
                htps = hpt["generated_tokens"] / hpt["seconds"] if hpt and hpt["seconds"] else None
                rows.append(f"| generate {task} (total) | {len(by_task[task])} x {by_task[task][0]['max_new_tokens']} new | "
                            f"{fmt(v[2] if v else None, 2)} | {fmt(hpt['seconds'] if hpt else None, 2)} | {fmt(btps)} | "
                            f"{fmt(htps)} | | | | {ratio(btps, htps)} |")
        agree = ""
        bo, ho = os.path.join(w, "bm_ll_out.jsonl"), os.path.join(w, "hf_suite_out.jsonl")
        if os.path.exists(bo) and os.path.exists(ho):
            b = jl(bo)
            h = [x for x in jl(ho) if x["type"] == "loglikelihood"]
            if b and len(b) == len(h):
                d = [abs(x["logprob"] - y["logprob"]) for x, y in zip(b, h)]
                agree = (f"- same workload check: {len(d)} loglikelihoods, |bitmerge - HF| mean {sum(d) / len(d):.4f}, "
                         f"max {max(d):.4f} nats ({a.dtype}); is_greedy agrees on "
                         f"{sum(x['is_greedy'] == y['is_greedy'] for x, y in zip(b, h))}/{len(d)}.")
        ev = timings.get("bm_eval", {})
        hs = timings.get("hf_suite", {})
        md += [f"**Suite**: {a.shape} shape x {a.layers} layers ({ptot / 1e9:.2f} B params, {pm / 1e9:.2f} B in matmuls), "
               f"--limit {a.limit} per task, batch {a.batch_size}, {a.device} {a.dtype}. Engine times from `bitmerge "
               f"score`/`generate` (excl. load) vs hf_peer.py phases (lm-eval HFLM style, sdpa, excl. load).", "",
               "| phase | work | bitmerge s | HF s | bitmerge tok/s | HF tok/s | limit tok/s | bitmerge % limit | HF % limit "
               "| bitmerge/HF speed |", "|---|---|---|---|---|---|---|---|---|---|"] + rows
        bm_mem = [t.get("peak_mib") for n, t in timings.items() if n.startswith("bm_") and "scale" not in n]
        bm_mem = max([m for m in bm_mem if m is not None], default=None)
        hf_alloc = (hf.get("peak_memory") or {}).get("allocated_mib")
        md += ["", f"- end to end: `bitmerge eval` {fmt(ev.get('wall_s'), 1)} s wall (load, {'generation, ' if by_task else ''}"
               f"scoring, code execution included; results in bm_results.json) vs HF peer process "
               f"{fmt(hs.get('wall_s'), 1)} s wall (import, load, ll + prefill-only + generate phases).",
               f"- peak GPU memory (nvidia-smi, whole device): bitmerge {fmt(bm_mem, 0)} MiB, HF {fmt(hs.get('peak_mib'), 0)} MiB"
               f" (HF torch max allocated {fmt(hf_alloc, 0)} MiB); weights {bytes_per * ptot / 2**20:,.0f} MiB.",
               f"- limits: prefill {fmt(prefill_bound)} tok/s = {a.peak_tflops:g} TFLOP/s / (2 x {pm / 1e9:.2f} B); decode "
               f"{fmt(decode_bound)} tok/s = {rows_per_step:.1f} rows x {a.hbm_tbs:g} TB/s / {bytes_per * pm / 1e9:.2f} GB. "
               f"Full-depth ({FULL_LAYERS.get(a.shape, a.layers)} layers) rates are about {a.layers}/"
               f"{FULL_LAYERS.get(a.shape, a.layers)} of these.",
               f"- decode = total generate time minus the prefill-only run; bitmerge stops rows at EOS/stop strings, "
               f"HF runs every batch to max_new_tokens unless all rows hit EOS (token counts shown)."] + (
                   [agree] if agree else []) + [""]

    if a.mode in ("scaling", "all"):
        md += [f"**Scaling** ({a.layers} layers of each shape; score = first requests of the suite's loglikelihood set; "
               f"generate = B prompts cut to their first ids, {a.scale_new_tokens} new tokens, one batch; generate tok/s = "
               f"generated tokens / total time incl. the short prefill; 'full depth' = x {a.layers}/full layers)", "",
               "| shape | batch | score bitmerge tok/s | score HF tok/s | score bm/HF | gen bitmerge tok/s | gen HF tok/s "
               "| gen bm/HF | decode limit tok/s | gen bitmerge % limit | bitmerge ms/step/layer | full-depth gen bitmerge tok/s |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for sh in [s for s in a.scale_shapes.split(",") if s]:
            cfg = model_cfg(sh)
            hp = os.path.join(w, f"hf_scale_{sh}.json")
            if not cfg or not os.path.exists(hp):
                md.append(f"| {sh} | (not run) |||||||||||")
                continue
            pm, _ = params(cfg)
            hf = json.load(open(hp))
            scale_ll = jl(os.path.join(w, "scale_ll.jsonl")) if os.path.exists(os.path.join(w, "scale_ll.jsonl")) else []
            toks = sum(len(c) for c in {tuple(r["context_ids"]) for r in scale_ll}) + sum(
                len(r["continuation_ids"]) - 1 for r in scale_ll)
            for b in [int(x) for x in a.scale_batches.split(",") if x.strip()]:
                bs = bm_log(w, f"bm_scale_score_{sh}_{b}", SCORE_RE)
                bg = bm_log(w, f"bm_scale_gen_{sh}_{b}", GEN_RE)
                hs = next((p for p in hf["phases"] if p["phase"] == "scale_score" and p["batch"] == b), None)
                hg = next((p for p in hf["phases"] if p["phase"] == "scale_generate" and p["batch"] == b), None)
                bst = toks / bs[2] if bs and bs[2] else None
                hst = toks / hs["seconds"] if hs and hs["seconds"] else None
                bgt = bg[1] / bg[2] if bg and bg[2] else None
                hgt = hg["generated_tokens"] / hg["seconds"] if hg and hg["seconds"] else None
                bound = b * bw / (bytes_per * pm)
                ms_layer = 1000 * bg[2] / a.scale_new_tokens / cfg["num_hidden_layers"] if bg and a.scale_new_tokens else None
                full = FULL_LAYERS.get(sh, cfg["num_hidden_layers"])
                md.append(f"| {sh} | {b} | {fmt(bst)} | {fmt(hst)} | {ratio(bst, hst)} | {fmt(bgt)} | {fmt(hgt)} | "
                          f"{ratio(bgt, hgt)} | {fmt(bound)} | {pct(bgt, bound)} | {fmt(ms_layer, 3)} | "
                          f"{fmt(bgt * cfg['num_hidden_layers'] / full if bgt else None)} |")
        md.append("")
    text = "\n".join(md) + "\n"
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
