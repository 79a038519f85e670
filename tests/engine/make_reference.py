"""Oracle for tests/engine: tiny random HF Llama/Mistral models + reference outputs.

usage: make_reference.py OUT_DIR TOKENIZER_MODEL

For each model OUT_DIR/<name>/ holds save_pretrained() output (safetensors),
tokenizer.model, and:
  ref.safetensors  logits [N, T, V] float32 for token batch `tokens` [N, T]
  ref.json         tokens, greedy generations, log-likelihood references
"""
import json
import math
import shutil
import sys

import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

out_dir, tok_path = sys.argv[1], sys.argv[2]
torch.manual_seed(1234)
sp = spm.SentencePieceProcessor(model_file=tok_path)
V = sp.get_piece_size()

common = dict(vocab_size=V, hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=256, initializer_range=0.1, bos_token_id=1, eos_token_id=2,
              attn_implementation="sdpa")
models = {
    # GQA 4:2, tied embeddings, non-default rope_theta / eps
    "llama_tied": (LlamaForCausalLM, LlamaConfig(num_key_value_heads=2, tie_word_embeddings=True, rope_theta=5000.0,
                                                 rms_norm_eps=1e-5, **common)),
    # MQA 4:1, untied
    "llama_untied": (LlamaForCausalLM, LlamaConfig(num_key_value_heads=1, tie_word_embeddings=False,
                                                   rope_theta=50000.0, rms_norm_eps=1e-6, **common)),
    # sliding window 7, shorter than the test sequences
    "mistral": (MistralForCausalLM, MistralConfig(num_key_value_heads=2, tie_word_embeddings=False, sliding_window=7,
                                                  rope_theta=20000.0, rms_norm_eps=3e-6, **common)),
}


def encode_pair(context, continuation):
    """lm-evaluation-harness HFLM._encode_pair with add_bos_token=False."""
    if context == "":
        return [sp.bos_id()], sp.encode(continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = sp.encode(context + continuation)
    ctx = sp.encode(context)
    return ctx, whole[len(ctx):]


LL_TEXT = [
    ("The capital of France is", " Paris"),
    ("The capital of France is ", "Paris."),
    ("Question: 2 + 2 =\nAnswer:", " 4"),
    ("Question: 2 + 2 =\nAnswer:", " 5"),
    ("Question: 2 + 2 =\nAnswer:", " four, obviously"),
    ("Question: 2 + 2 =\nAnswer:", " 22"),
    ("A long context that is longer than the sliding window of the tiny Mistral model, so that the window"
     " really matters for the continuation scores.\n", "Yes indeed it does."),
    ("", "Empty context scores from BOS."),
    ("Unicode: café — naïve 東京", " ✓ done"),
]


def loglik(model, ctx, cont):
    inp = torch.tensor([ctx + cont[:-1]])
    with torch.no_grad():
        logits = model(inp).logits[0].float()
    lsm = torch.log_softmax(logits[len(ctx) - 1:], -1)
    tgt = torch.tensor(cont)
    lp = lsm.gather(1, tgt[:, None]).sum().item()
    greedy = bool((logits[len(ctx) - 1:].argmax(-1) == tgt).all())
    return lp, greedy


for name, (cls, cfg) in models.items():
    d = f"{out_dir}/{name}"
    model = cls(cfg).eval()
    with torch.no_grad():  # norms away from 1 so their weights are tested
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.save_pretrained(d, safe_serialization=True)
    shutil.copy(tok_path, f"{d}/tokenizer.model")

    N, T = 3, 24
    tokens = torch.randint(3, V, (N, T))
    with torch.no_grad():
        logits = model(tokens).logits.float()
    save_file({"logits": logits.contiguous(), "tokens": tokens.contiguous()}, f"{d}/ref.safetensors")

    # greedy generation, one prompt at a time (no padding on the HF side)
    prompts = [tokens[0, :5].tolist(), tokens[1, :11].tolist(), tokens[2, :2].tolist(), sp.encode("Once upon a time")]
    gens = []
    for p in prompts:
        with torch.no_grad():
            out = model.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False, pad_token_id=0,
                                 eos_token_id=2, min_new_tokens=0)
        gens.append({"prompt_ids": p, "ids": out[0, len(p):].tolist()})

    ll = []
    for ctx_s, cont_s in LL_TEXT:
        ctx, cont = encode_pair(ctx_s, cont_s)
        lp, greedy = loglik(model, ctx, cont)
        ll.append({"context": ctx_s, "continuation": cont_s, "context_ids": ctx, "continuation_ids": cont,
                   "logprob": lp, "is_greedy": greedy, "n_tokens": len(cont)})
    # one greedy continuation so is_greedy=true is exercised
    ctx = tokens[0, :6].tolist()
    cont = gens[0]["ids"][:3] if prompts[0] == tokens[0, :5].tolist() else []
    ctx = prompts[0]
    lp, greedy = loglik(model, ctx, cont)
    ll.append({"context_ids": ctx, "continuation_ids": cont, "logprob": lp, "is_greedy": greedy,
               "n_tokens": len(cont)})
    with open(f"{d}/ref.json", "w") as f:
        json.dump({"generations": gens, "loglikelihood": ll, "sliding_window": getattr(cfg, "sliding_window", None)},
                  f, indent=1)
print("ok")
