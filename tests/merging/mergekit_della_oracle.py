"""Oracle for the DELLA tests in tests/merging/test_mergekit_oracle.cpp: mergekit's
della / della_linear on one tensor, with torch.bernoulli replaced by the
draws our merge used (keep where draw < p), so the comparison is exact on
everything but the random bits (MagPrune probabilities, mask, L1 rescale, sign
election, normalisation, lambda).

usage: mergekit_della_oracle.py IN.safetensors OUT.safetensors
IN: "base", "<expert>" (expert weights), "draws.<expert>"; metadata "config" =
JSON {method, experts, weight{}, density{}, epsilon{}, lambda, rescale}.
OUT: "merged" and "probs.<expert>" (the p mergekit asked bernoulli for).
"""
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mergekit.merge_methods import registry
from mergekit.merge_methods.base import TensorGroup

inp, out = sys.argv[1], sys.argv[2]
with safe_open(inp, "pt") as f:
    cfg = json.loads(f.metadata()["config"])
    T = {k: f.get_tensor(k) for k in f.keys()}
experts = cfg["experts"]
queue = [T["draws." + e] for e in experts]
seen = []


def bernoulli_from_draws(p, *args, **kwargs):
    r = queue.pop(0)
    seen.append(p.clone().reshape(r.shape))
    return (r.reshape(p.shape) < p).to(p.dtype)


torch.bernoulli = bernoulli_from_draws
method = registry.get(cfg["method"])
group = TensorGroup.from_tensors([T["base"]] + [T[e] for e in experts], ids=["base"] + experts, base_index=0)
params = {
    "int8_mask": False,
    "normalize": cfg["method"] == "della",
    "rescale": cfg["rescale"],
    "lambda": cfg["lambda"],
    "weight": cfg["weight"],
    "density": cfg["density"],
    "epsilon": cfg["epsilon"],
}
merged = method.merge_group(group, **params)
assert not queue, "mergekit drew fewer masks than experts"
res = {"merged": merged.contiguous()}
for e, p in zip(experts, seen):
    res["probs." + e] = p.contiguous()
save_file(res, out)
print("ok")
