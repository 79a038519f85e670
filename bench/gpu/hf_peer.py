"""The HF transformers peer: runs a `bitmerge requests` workload the way
lm-evaluation-harness's HFLM drives a model, and reports timings as JSON.

usage:
  hf_peer.py --model DIR --requests requests.jsonl --out hf.json [--batch-size 32] [--device cuda]
             [--dtype bfloat16] [--mode suite|scaling] [--batch-sizes 1,32,128] [--scale-new-tokens 64]
             [--scale-score-n 256] [--scale-prompt-tokens 64] [--no-logits-cache]

requests.jsonl must carry token ids (`bitmerge requests --tokenizer MODEL_DIR`): both
peers then score exactly the same token sequences.

loglikelihood (HFLM._loglikelihood_tokens): inputs (context + continuation)[-(max_len+1):][:-1],
sorted by total length descending, requests whose context + continuation[:-1] coincide computed
once (lm-eval's one-token-continuation logits cache; --no-logits-cache turns it off), batches
right-padded to the longest, one forward per batch, log_softmax over the vocabulary, continuation
log-probs gathered, is_greedy = all argmax.
generate (HFLM.generate_until): grouped by (task, until, max_new_tokens), sorted by prompt length
descending, left-padded batches, model.generate(do_sample=False, use_cache=True), prompts cut on the
left to max_len - max_new_tokens, stop strings applied to the decoded text afterwards.
Timings exclude loading; CUDA is synchronised around each timed phase.
"""
import argparse
import collections
import json
import os
import sys
import time


def log(msg):
    print(f"[hf_peer] {msg}", file=sys.stderr, flush=True)


def load_requests(path):
    ll, gen = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            j = json.loads(line)
            if j["type"] == "loglikelihood":
                if "context_ids" not in j:
                    sys.exit(f"{path} line {n}: no context_ids; write it with `bitmerge requests --tokenizer MODEL_DIR`")
                ll.append(j)
            elif j["type"] == "generate":
                if "prompt_ids" not in j:
                    sys.exit(f"{path} line {n}: no prompt_ids; write it with `bitmerge requests --tokenizer MODEL_DIR`")
                gen.append(j)
            else:
                sys.exit(f"{path} line {n}: unknown type {j['type']!r}")
    return ll, gen


class Peer:
    def __init__(self, a):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.dev = torch.device(a.device)
        dtype = getattr(torch, a.dtype or ("bfloat16" if self.dev.type == "cuda" else "float32"))
        t0 = time.time()
        self.model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa").to(self.dev)
        self.model.eval()
        self.sync()
        self.load_s = time.time() - t0
        cfg = self.model.config
        self.max_len = int(getattr(cfg, "max_position_embeddings", 4096) or 4096)
        self.eos = cfg.eos_token_id if cfg.eos_token_id is not None else 2
        self.pad = 0
        self.dtype = str(dtype).replace("torch.", "")
        self.decoder = self._decoder(a.model)
        torch.set_grad_enabled(False)

    def _decoder(self, model_dir):
        path = os.path.join(model_dir, "tokenizer.model")
        try:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=path)
            return lambda ids: sp.decode([int(i) for i in ids])
        except Exception:
            pass
        try:
            from transformers import LlamaTokenizer

            tok = LlamaTokenizer(vocab_file=path)
            return lambda ids: tok.decode(ids, skip_special_tokens=True)
        except Exception as e:
            log(f"no tokenizer for decoding ({e}); stop strings are not applied")
            return None

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)

    def reset_peak(self):
        if self.dev.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats(self.dev)

    def peak(self):
        if self.dev.type != "cuda":
            return None
        return {"allocated_mib": self.torch.cuda.max_memory_allocated(self.dev) / 2**20,
                "reserved_mib": self.torch.cuda.max_memory_reserved(self.dev) / 2**20}

    # ---- loglikelihood -------------------------------------------------------------
    def loglikelihood(self, reqs, batch_size, logits_cache=True):
        torch = self.torch
        items = []
        for i, r in enumerate(reqs):
            ctx, cont = list(r["context_ids"]), list(r["continuation_ids"])
            items.append((i, ctx, cont))
        # lm-eval Collator: sort key (-len(ctx+cont), tuple(ctx+cont)); group by ctx + cont[:-1]
        items.sort(key=lambda it: (-(len(it[1]) + len(it[2])), tuple(it[1] + it[2])))
        groups = collections.OrderedDict()
        for it in items:
            key = tuple(it[1] + it[2][:-1]) if logits_cache else (it[0],)
            groups.setdefault(key, []).append(it)
        reps = list(groups.values())
        results = [None] * len(reqs)
        fed = 0
        self.sync()
        t0 = time.time()
        for b0 in range(0, len(reps), batch_size):
            batch = reps[b0:b0 + batch_size]
            inps, meta = [], []
            for members in batch:
                _, ctx, cont = members[0]
                inp = (ctx + cont)[-(self.max_len + 1):][:-1]
                inps.append(inp)
                meta.append((members, len(inp), len(cont)))
            T = max(len(x) for x in inps)
            fed += sum(len(x) for x in inps)
            ids = torch.full((len(inps), T), self.pad, dtype=torch.long)
            for k, x in enumerate(inps):
                ids[k, :len(x)] = torch.tensor(x, dtype=torch.long)
            logits = self.model(ids.to(self.dev)).logits
            multi = torch.nn.functional.log_softmax(logits, dim=-1)
            for k, (members, inplen, contlen) in enumerate(meta):
                lg = multi[k, inplen - contlen:inplen]  # [contlen, V]
                greedy = lg.argmax(dim=-1)
                for (i, _, cont) in members:
                    c = torch.tensor(cont, dtype=torch.long, device=self.dev)
                    # float()/bool() per request, as lm-eval does (a host sync each)
                    results[i] = (float(lg.gather(1, c.unsqueeze(1)).squeeze(1).sum()), bool((greedy == c).all()))
        out = results
        self.sync()
        secs = time.time() - t0
        return out, {"requests": len(reqs), "forward_rows": len(reps), "fed_tokens": fed, "seconds": secs}

    # ---- generation ------------------------------------------------------------------
    def generate(self, reqs, batch_size, max_new_override=None):
        """reqs: dicts with prompt_ids, until, max_new_tokens, task. Returns (texts, counts, stats)."""
        torch = self.torch
        groups = collections.OrderedDict()
        for i, r in enumerate(reqs):
            mx = max_new_override or int(r["max_new_tokens"])
            # lm-eval groups by generation kwargs; an override (prefill-only run, scaling) pools every
            # prompt into one length-sorted stream, as `bitmerge generate` does with one input file.
            key = ("", (), mx) if max_new_override else (r.get("task", ""), tuple(r.get("until", [])), mx)
            groups.setdefault(key, []).append(i)
        texts, counts = [None] * len(reqs), [0] * len(reqs)
        prompt_tokens = 0
        steps_rows = []  # (rows, steps) per batch
        self.sync()
        t0 = time.time()
        for (task, until, mx), idx in groups.items():
            idx.sort(key=lambda i: -len(reqs[i]["prompt_ids"]))
            keep = max(1, self.max_len - mx)
            for b0 in range(0, len(idx), batch_size):
                bidx = idx[b0:b0 + batch_size]
                prompts = [list(reqs[i]["prompt_ids"])[-keep:] or [1] for i in bidx]
                P = max(len(p) for p in prompts)
                ids = torch.full((len(prompts), P), self.pad, dtype=torch.long)
                am = torch.zeros((len(prompts), P), dtype=torch.long)
                for k, p in enumerate(prompts):
                    ids[k, P - len(p):] = torch.tensor(p, dtype=torch.long)
                    am[k, P - len(p):] = 1
                prompt_tokens += sum(len(p) for p in prompts)
                out = self.model.generate(input_ids=ids.to(self.dev), attention_mask=am.to(self.dev), do_sample=False,
                                          max_new_tokens=mx, min_new_tokens=0, use_cache=True,
                                          pad_token_id=self.pad, eos_token_id=self.eos, num_beams=1,
                                          temperature=None, top_p=None, top_k=None)
                new = out[:, P:].cpu().tolist()
                steps_rows.append((len(prompts), len(new[0]) if new else 0))
                for k, i in enumerate(bidx):
                    toks = new[k]
                    if self.eos in toks:
                        toks = toks[:toks.index(self.eos) + 1]
                    counts[i] = len(toks)
                    if self.decoder is not None:
                        text = self.decoder([t for t in toks if t != self.eos])
                        cut = min([text.find(u) for u in until if u and u in text] or [len(text)])
                        texts[i] = text[:cut]
        self.sync()
        secs = time.time() - t0
        return texts, counts, {"requests": len(reqs), "prompt_tokens": prompt_tokens, "generated_tokens": sum(counts),
                               "seconds": secs, "batches": steps_rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--requests", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="")
    ap.add_argument("--mode", choices=["suite", "scaling"], default="suite")
    ap.add_argument("--batch-sizes", default="1,32,128")
    ap.add_argument("--scale-new-tokens", type=int, default=64)
    ap.add_argument("--scale-score-n", type=int, default=256)
    ap.add_argument("--scale-prompt-tokens", type=int, default=64, help="scaling: prompts cut to their first N ids")
    ap.add_argument("--no-logits-cache", action="store_true")
    ap.add_argument("--outputs", default="", help="suite: also write per-request results (JSONL) here")
    a = ap.parse_args()

    ll, gen = load_requests(a.requests)
    peer = Peer(a)
    log(f"loaded {a.model} in {peer.load_s:.1f} s ({peer.dtype}, {a.device}, sdpa)")
    # Warm-up (CUDA context, cuBLAS handles, sdpa kernels) outside the timed phases.
    peer.model(peer.torch.ones((1, 16), dtype=peer.torch.long, device=peer.dev))
    peer.sync()
    res = {"peer": "hf-transformers", "model": a.model, "dtype": peer.dtype, "device": a.device,
           "load_s": peer.load_s, "mode": a.mode, "logits_cache": not a.no_logits_cache, "phases": []}
    try:
        import transformers
        res["versions"] = {"torch": peer.torch.__version__, "transformers": transformers.__version__}
    except Exception:
        pass
    peer.reset_peak()

    def phase(name, stats, **kw):
        d = {"phase": name, **kw, **stats}
        res["phases"].append(d)
        log(f"{name} {kw}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in stats.items() if k != "batches"))

    if a.mode == "suite":
        outs = []
        if ll:
            r, st = peer.loglikelihood(ll, a.batch_size, not a.no_logits_cache)
            phase("loglikelihood", st, batch=a.batch_size)
            outs += [{"type": "loglikelihood", "logprob": lp, "is_greedy": g} for lp, g in r]
        if gen:
            _, _, st = peer.generate(gen, a.batch_size, max_new_override=1)
            phase("generate_prefill", st, batch=a.batch_size)
            by_task = collections.OrderedDict()
            for r in gen:
                by_task.setdefault(r["task"], []).append(r)
            for task, rs in by_task.items():
                texts, counts, st = peer.generate(rs, a.batch_size)
                phase("generate", st, batch=a.batch_size, task=task, max_new_tokens=int(rs[0]["max_new_tokens"]))
                outs += [{"type": "generate", "task": task, "text": t, "n_tokens": c} for t, c in zip(texts, counts)]
        if a.outputs:
            with open(a.outputs + ".tmp", "w") as f:
                for o in outs:
                    f.write(json.dumps(o) + "\n")
            os.replace(a.outputs + ".tmp", a.outputs)
    else:
        bss = [int(x) for x in a.batch_sizes.split(",") if x.strip()]
        score_reqs = ll[:a.scale_score_n]
        for b in bss:
            if score_reqs:
                _, st = peer.loglikelihood(score_reqs, b, not a.no_logits_cache)
                phase("scale_score", st, batch=b)
            if gen:
                rs = [dict(gen[k % len(gen)], until=[], task="scale",
                           prompt_ids=gen[k % len(gen)]["prompt_ids"][:a.scale_prompt_tokens]) for k in range(b)]
                _, _, st = peer.generate(rs, b, max_new_override=a.scale_new_tokens)
                phase("scale_generate", st, batch=b, max_new_tokens=a.scale_new_tokens)
    res["peak_memory"] = peer.peak()
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(a.out + ".tmp", a.out)
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
