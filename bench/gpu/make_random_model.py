"""Random-weight HF-format model (safetensors) of a LLaMA-2 / Mistral shape with few layers.

usage: make_random_model.py OUT_DIR --shape llama7b|llama13b|mistral7b|tiny [--layers N]
                            --tokenizer PATH/tokenizer.model [--device cuda|cpu] [--dtype bfloat16]
                            [--bin build-gpu/bitmerge]

The shapes come from the program: `bitmerge inspect --shape <preset>` prints the
preset's config.json and tensors (the presets of merging/storage.cpp, which
`bitmerge storage --family` uses too). --bin, else $BITMERGE_BIN, else
build-gpu/bitmerge (the packed binary on the GPU machine), else build/bitmerge.

Weights ~ N(0, 0.02) (norm weights 1), created on --device (GPU: seconds for 7B
shapes), saved with save_pretrained (safetensors). tokenizer.model is copied in
(the device has no ../shared, so the path is an argument). OUT_DIR is reused
when its DONE marker matches the same arguments.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The scripts' shape names -> `bitmerge inspect --shape` arguments. "tiny" is no
# model's size: the LLaMA-2-7B preset at toy widths, for CPU smoke tests.
SHAPES = {
    "llama7b": ["llama2-7b"],
    "llama13b": ["llama2-13b"],
    "mistral7b": ["mistral-7b"],
    "tiny": ["llama2-7b", "--set", "hidden_size=64", "--set", "intermediate_size=176",
             "--set", "num_attention_heads=4", "--set", "num_key_value_heads=4"],
}
TINY_LAYERS = 2  # tiny's default depth (the presets default to their own)


def find_bin(explicit=""):
    if explicit and not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
        sys.exit(f"--bin {explicit}: not an executable bitmerge binary")
    for b in (explicit, os.environ.get("BITMERGE_BIN", ""), os.path.join(ROOT, "build-gpu", "bitmerge"),
              os.path.join(ROOT, "build", "bitmerge")):
        if b and os.path.isfile(b) and os.access(b, os.X_OK):
            return os.path.abspath(b)
    sys.exit("bitmerge not found: the shapes come from `bitmerge inspect --shape`; build it "
             "(make build, or scripts/device/prebuilt.sh on the GPU machine) or pass --bin")


def program_shape(shape, layers=0, bin_=""):
    """`bitmerge inspect --shape` for a script shape name: {"config": config.json, "tensors": [[name, shape]], ...}."""
    import subprocess
    b = find_bin(bin_)
    layers = layers or (TINY_LAYERS if shape == "tiny" else 0)
    args = [b, "inspect", "--shape"] + SHAPES[shape] + (["--layers", str(layers)] if layers else [])
    env_sh = os.path.join(os.path.dirname(b), "device_env.sh")  # the packed binary's library paths
    cmd = ["bash", "-c", 'source "$0" && exec "$@"', env_sh] + args if os.path.isfile(env_sh) else args
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def shape_row(shape, layers=0, bin_=""):
    """(hidden, layers, heads, kv heads, intermediate, vocab, sliding window or None) of the program's preset."""
    c = program_shape(shape, layers, bin_)["config"]
    return (c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"],
            c["intermediate_size"], c["vocab_size"], c["sliding_window"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="llama7b")
    ap.add_argument("--layers", type=int, default=0, help="decoder layers (0 = the full model's)")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.model to copy into OUT_DIR")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bin", default="", help="bitmerge binary (the shapes' home); default: $BITMERGE_BIN, "
                    "build-gpu/bitmerge, build/bitmerge")
    a = ap.parse_args()
    if not os.path.isfile(a.tokenizer):
        sys.exit(f"{a.tokenizer}: no such tokenizer.model; pass --tokenizer <data>/tokenizers/llama2/tokenizer.model")
    shape = program_shape(a.shape, a.layers, a.bin)
    c = shape["config"]
    hidden, layers, heads, kv = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"]
    inter, vocab, window = c["intermediate_size"], c["vocab_size"], c["sliding_window"]
    stamp = json.dumps({"shape": a.shape, "layers": layers, "dtype": a.dtype, "seed": a.seed}, sort_keys=True)
    done = os.path.join(a.out, "DONE")
    if os.path.exists(done) and open(done).read().strip() == stamp:
        print(f"reusing {a.out} ({stamp})")
        return

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    t0 = time.time()
    # Shapes from the program; the rest as the real repos' config.json have it.
    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2, initializer_range=0.02)
    if c["model_type"] == "mistral":
        cfg = MistralConfig(max_position_embeddings=32768, rope_theta=10000.0, sliding_window=window, **common)
        cls = MistralForCausalLM
    else:
        cfg = LlamaConfig(max_position_embeddings=4096, rope_theta=10000.0, **common)
        cls = LlamaForCausalLM
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(a.seed)
    with torch.device("meta"):
        model = cls(cfg)
    # Non-persistent buffers (rotary inv_freq) are not saved; loaders recompute them.
    model = model.to_empty(device=a.device).to(dtype)
    gen = torch.Generator(device=a.device).manual_seed(a.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(a.out)
    model.save_pretrained(a.out, safe_serialization=True, max_shard_size="5GB")
    shutil.copyfile(a.tokenizer, os.path.join(a.out, "tokenizer.model"))
    with open(done, "w") as f:
        f.write(stamp + "\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: {a.shape} x {layers} layers, {n / 1e9:.3f} B params, {a.dtype}, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
