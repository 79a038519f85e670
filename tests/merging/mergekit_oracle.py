"""Oracle for tests/merging/test_mergekit_oracle.cpp: writes tiny random Llama
models (base + 2 experts, transformers, float32 safetensors) and merges them
with mergekit (task_arithmetic, ties with per-tensor trim, breadcrumbs and
breadcrumbs_ties) on the CPU.

usage: mergekit_oracle.py OUT_DIR
writes OUT_DIR/{base,e1,e2} and OUT_DIR/mk_<method> for each config below
"""
import os
import sys

import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  tie_word_embeddings=False, torch_dtype="float32")
torch.manual_seed(0)
base = LlamaForCausalLM(cfg).to(torch.float32)
base.save_pretrained(f"{out}/base", safe_serialization=True)
for k, seed in (("e1", 1), ("e2", 2)):
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg).to(torch.float32)
    m.load_state_dict({n: t + 0.02 * torch.randn_like(t) for n, t in base.state_dict().items()})
    m.save_pretrained(f"{out}/{k}", safe_serialization=True)

configs = {
    "task_arithmetic": {
        "merge_method": "task_arithmetic", "base_model": f"{out}/base", "dtype": "float32",
        "parameters": {"lambda": 0.7},
        "models": [{"model": f"{out}/e1", "parameters": {"weight": 1.0}},
                   {"model": f"{out}/e2", "parameters": {"weight": 0.5}}],
    },
    "ties": {
        "merge_method": "ties", "base_model": f"{out}/base", "dtype": "float32",
        "parameters": {"lambda": 0.9},
        "models": [{"model": f"{out}/e1", "parameters": {"weight": 1.0, "density": 0.5}},
                   {"model": f"{out}/e2", "parameters": {"weight": 0.7, "density": 0.3}}],
    },
    "breadcrumbs": {
        "merge_method": "breadcrumbs", "base_model": f"{out}/base", "dtype": "float32",
        "parameters": {"lambda": 0.8},
        "models": [{"model": f"{out}/e1", "parameters": {"weight": 1.0, "density": 0.6, "gamma": 0.05}},
                   {"model": f"{out}/e2", "parameters": {"weight": 0.5, "density": 0.4, "gamma": 0.02}}],
    },
    "breadcrumbs_ties": {
        "merge_method": "breadcrumbs_ties", "base_model": f"{out}/base", "dtype": "float32",
        "parameters": {"rescale": True},
        "models": [{"model": f"{out}/e1", "parameters": {"weight": 1.0, "density": 0.5, "gamma": 0.01}},
                   {"model": f"{out}/e2", "parameters": {"weight": 0.7, "density": 0.7, "gamma": 0.1}}],
    },
}
for name, c in configs.items():
    mc = MergeConfiguration.model_validate(c)
    run_merge(mc, f"{out}/mk_{name}", options=MergeOptions(cuda=False, copy_tokenizer=False, lazy_unpickle=False))
    with open(f"{out}/mk_{name}.yaml", "w") as f:
        yaml.safe_dump(c, f)
print("ok")
