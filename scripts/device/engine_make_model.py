"""Random-weight LLaMA-2-7B-shaped model (bf16, safetensors) for engine parity / benchmarks.

usage: engine_make_model.py OUT_DIR [--layers N]   (reuses OUT_DIR when it is complete)
"""
import argparse
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=32)
ap.add_argument("--hidden", type=int, default=4096)  # smaller sizes: CPU smoke tests of the scripts
ap.add_argument("--intermediate", type=int, default=11008)
ap.add_argument("--heads", type=int, default=32)
ap.add_argument("--device", default="cuda")
a = ap.parse_args()
if os.path.exists(os.path.join(a.out, "DONE")):
    print(f"reusing {a.out}")
    raise SystemExit(0)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=32000, hidden_size=a.hidden, intermediate_size=a.intermediate, num_hidden_layers=a.layers,
                  num_attention_heads=a.heads, num_key_value_heads=a.heads, max_position_embeddings=4096, rms_norm_eps=1e-5,
                  rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
torch.set_default_dtype(torch.bfloat16)
with torch.device(a.device):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(a.out, safe_serialization=True, max_shard_size="5GB")
open(os.path.join(a.out, "DONE"), "w").write("ok\n")
print(f"wrote {a.out} ({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params)")
