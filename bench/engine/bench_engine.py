"""Engine throughput vs HF transformers (same weights, same token inputs, bf16, one GPU).

score tokens/s = (context + continuation tokens) / s; generate tokens/s = generated tokens / s.
Our time is what `bitmerge` logs around Engine::loglikelihood / generate (model load
excluded, first-call CUDA warm-up included); HF gets one warm-up batch before timing.

usage: bench_engine.py --bin build-gpu/bitmerge --model DIR [--batch-sizes 1,32,128]
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
import time

import torch
from transformers import LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--device", default="cuda")  # cpu: smoke test of this script only
ap.add_argument("--batch-sizes", default="1,32,128")
ap.add_argument("--ctx", type=int, default=256)
ap.add_argument("--cont", type=int, default=32)
ap.add_argument("--prompt", type=int, default=128)
ap.add_argument("--new", type=int, default=128)
ap.add_argument("--eager", action="store_true", help="also time our generate with CUDA graphs off (BITMERGE_CUDA_GRAPHS=0)")
ap.add_argument("--profile", action="store_true", help="print our engine's per-phase profile lines (BITMERGE_ENGINE_PROFILE=1, extra runs)")
a = ap.parse_args()
tmp = tempfile.mkdtemp()


def sync():
    if a.device == "cuda":
        torch.cuda.synchronize()

torch.manual_seed(2)
model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").to(a.device, torch.bfloat16).eval()


def run_ours(verb, rows, bs, extra, env=None, show=""):
    if a.device == "cuda":  # the HF model stays loaded; its cached blocks must not shrink our memory plan
        torch.cuda.empty_cache()
    inp, out = os.path.join(tmp, f"{verb}.jsonl"), os.path.join(tmp, f"{verb}.out.jsonl")
    with open(inp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    p = subprocess.run([a.bin, verb, "--model", a.model, "--input", inp, "--output", out, "--device", a.device,
                        "--dtype", "bfloat16", "--batch-size", str(bs)] + extra, capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    lines = p.stderr.strip().splitlines()
    for l in lines:
        if show and ("engine profile" in l or "warm-up" in l):
            print(f"  [{show}] {l.strip()}")
    secs = float(re.search(r"in ([0-9.e+-]+) s", [l for l in lines if " in " in l and l.rstrip().endswith(" s")][-1]).group(1))
    return secs, [json.loads(l) for l in open(out)]


def hf_score(ids, bs):
    def go(batch):
        with torch.no_grad():
            x = batch.to(a.device)
            logits = model(x).logits[:, a.ctx - 1:-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, x[:, a.ctx:, None]).sum((1, 2))
            return lp.cpu()
    go(ids[:bs])
    sync()
    t0 = time.perf_counter()
    for i in range(0, len(ids), bs):
        go(ids[i:i + bs])
    sync()
    return time.perf_counter() - t0


def hf_generate(prompts, bs):
    def go(batch):
        with torch.no_grad():
            g = model.generate(batch.to(a.device), max_new_tokens=a.new, do_sample=False, pad_token_id=0, eos_token_id=2)
        return int((g[:, batch.shape[1]:] != 0).sum())  # pad 0 after EOS
    go(prompts[:bs][:, :8])
    sync()
    t0, n = time.perf_counter(), 0
    for i in range(0, len(prompts), bs):
        n += go(prompts[i:i + bs])
    sync()
    return time.perf_counter() - t0, n


print(f"device: {torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}  model: {a.model}")
print(f"{'what':<10}{'batch':>6}{'ours tok/s':>14}{'HF tok/s':>14}{'ratio':>8}")
for bs in [int(x) for x in a.batch_sizes.split(",")]:
    n = {1: 32}.get(bs, 4 * bs) if bs < 128 else 2 * bs
    ids = torch.randint(3, 32000, (n, a.ctx + a.cont))
    rows = [{"context_ids": r[:a.ctx].tolist(), "continuation_ids": r[a.ctx:].tolist()} for r in ids]
    ours_s, _ = run_ours("score", rows, bs, [])
    if a.profile:
        run_ours("score", rows, bs, [], {"BITMERGE_ENGINE_PROFILE": "1"}, show=f"score b{bs}")
    hf_s = hf_score(ids, bs)
    toks = n * (a.ctx + a.cont)
    print(f"{'score':<10}{bs:>6}{toks / ours_s:>14.0f}{toks / hf_s:>14.0f}{hf_s / ours_s:>8.2f}")

    m = max(bs, 4) if bs == 1 else bs
    prompts = torch.randint(3, 32000, (m, a.prompt))
    ours_s, res = run_ours("generate", [{"prompt_ids": p.tolist()} for p in prompts], bs,
                           ["--max-new-tokens", str(a.new)])
    ours_n = sum(r["n_tokens"] for r in res)
    hf_s, hf_n = hf_generate(prompts, bs)
    print(f"{'generate':<10}{bs:>6}{ours_n / ours_s:>14.0f}{hf_n / hf_s:>14.0f}{(ours_n / ours_s) / (hf_n / hf_s):>8.2f}"
          f"   (ours {ours_n} tok in {ours_s:.3f} s, {ours_n / max(len(prompts), 1) / ours_s:.1f} steps/s)")
    gen_rows = [{"prompt_ids": p.tolist()} for p in prompts]
    if a.eager:
        e_s, e_res = run_ours("generate", gen_rows, bs, ["--max-new-tokens", str(a.new)], {"BITMERGE_CUDA_GRAPHS": "0"})
        e_n = sum(r["n_tokens"] for r in e_res)
        same = sum(x["ids"] == y["ids"] for x, y in zip(res, e_res))
        print(f"{'gen-eager':<10}{bs:>6}{e_n / e_s:>14.0f}{hf_n / hf_s:>14.0f}{(e_n / e_s) / (hf_n / hf_s):>8.2f}"
              f"   (graphs off; identical ids in {same}/{len(res)} rows)")
    if a.profile:
        run_ours("generate", gen_rows, bs, ["--max-new-tokens", str(a.new)], {"BITMERGE_ENGINE_PROFILE": "1"},
                 show=f"gen b{bs} graphs")
        run_ours("generate", gen_rows, bs, ["--max-new-tokens", str(a.new)],
                 {"BITMERGE_ENGINE_PROFILE": "1", "BITMERGE_CUDA_GRAPHS": "0"}, show=f"gen b{bs} eager")
