"""NumPy reference for `bitmerge inspect --task-vectors` (merging/tv_stats.cpp).

usage: tv_stats_oracle.py OUT.json BASE_DIR NAME=EXPERT_DIR [NAME=EXPERT_DIR ...]

Reads model.safetensors of each directory with safetensors.numpy, computes the
statistics per position (attention, mlp, embed_head, norm, total) in float64
with whole-array NumPy operations (no streaming, no chunking) and writes them
as JSON. Position names follow the HF LLaMA tensor names; the C++ side takes
them from the architecture table, so a disagreement fails the test.
"""
import json
import math
import re
import sys

import numpy as np
from safetensors.numpy import load_file


def position(name):
    if re.fullmatch(r"model\.layers\.\d+\.self_attn\.[qkvo]_proj\.weight", name):
        return "attention"
    if re.fullmatch(r"model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight", name):
        return "mlp"
    if name in ("model.embed_tokens.weight", "lm_head.weight"):
        return "embed_head"
    if name == "model.norm.weight" or re.fullmatch(
        r"model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight", name
    ):
        return "norm"
    return "other"


def stats(base, deltas, names):
    b = np.concatenate(base)
    d = [np.concatenate(x) for x in deltas]
    out = {"entries": int(b.size), "base_norm": float(np.sqrt(np.sum(b * b))), "experts": {}, "pairs": []}
    bn = np.linalg.norm(b)
    for k, name in enumerate(names):
        nk = np.linalg.norm(d[k])
        out["experts"][name] = {
            "rel_norm": float(nk / bn),
            "rms": float(np.sqrt(np.mean(d[k] ** 2))),
            "mean_abs": float(np.mean(np.abs(d[k]))),
            "max_abs": float(np.max(np.abs(d[k]))),
            "zero_frac": float(np.mean(d[k] == 0)),
        }
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            both = (d[i] != 0) & (d[j] != 0)
            agree = both & (np.sign(d[i]) == np.sign(d[j]))
            den = np.linalg.norm(d[i]) * np.linalg.norm(d[j])
            out["pairs"].append(
                {
                    "a": names[i],
                    "b": names[j],
                    "cosine": float(np.dot(d[i], d[j]) / den) if den > 0 else None,
                    "sign_agree": float(agree.sum() / both.sum()) if both.sum() > 0 else None,
                    "both_nonzero_frac": float(both.mean()),
                }
            )
    return out


def main():
    out_path, base_dir = sys.argv[1], sys.argv[2]
    experts = [a.split("=", 1) for a in sys.argv[3:]]
    names = [n for n, _ in experts]
    base = load_file(base_dir + "/model.safetensors")
    ex = [load_file(p + "/model.safetensors") for _, p in experts]
    groups = {}
    for t, bt in base.items():
        b = bt.astype(np.float64).ravel()
        ds = [e[t].astype(np.float64).ravel() - b for e in ex]
        for g in (position(t), "total"):
            groups.setdefault(g, ([], [[] for _ in names]))
            groups[g][0].append(b)
            for k in range(len(names)):
                groups[g][1][k].append(ds[k])
    result = {g: stats(b, d, names) for g, (b, d) in groups.items()}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
