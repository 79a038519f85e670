"""Random-weight family with the LLaMA-2-7B family's shapes and file layouts (issue 16 item 1).

usage: make_random_family.py WORK --tokenizers DIR [--shape llama7b|tiny] [--layers N] [--bin BITMERGE]
                             [--device cuda|cpu] [--rel-delta 0.01] [--seed 0]
                             [--family configs/families/llama2-7b.toml]

Writes WORK/models/<local name> for the base and the three experts that the real
family file names (--family), and WORK/family.toml: that family with `path =` at
the generated folders (name "<name>-random"), for `bitmerge run --family` or a copy
of an experiment. Experts are base + rel_delta * rms(tensor) * N(0, 1) per tensor
(relative norm ~0.01: merges are meaningful, and 1-bit signs are not noise).

Layouts, from tests/zoo/make_zoo.py's replicas of the real repos (config.json,
generation_config.json, tokenizer files come from there), with the weights as the
real repos store them except where the 64 GiB device disk does not allow it:
  base  Llama-2-7b-hf        float16, 2 safetensors shards + index (the real repo
                             also ships the same weights as .bin: not written)
  chat  Llama-2-7b-chat-hf   float16, 2 safetensors shards + index (likewise)
  math  MAmmoTH-7B           3 pytorch_model-0000X-of-00003.bin shards + index, vocab
                             32001 ([PAD] = 32000, added_tokens.json, pad_token_id 0),
                             rotary inv_freq buffers pickled; float16 (the real repo is
                             float32: 27 GB, over the disk with the other three)
  code  llama-2-coder-7b     2 .bin shards + index, bfloat16 with float32 norms,
                             tokenizer.json only (tokenizer.model if the conversion is
                             unavailable: said in the output)
4 x 13.5 GB at the 7B shape. Made on --device (the GPU draws the numbers; the time
is the disk's). WORK/models is reused when its DONE stamp matches the arguments.
A JSON line with the timings and sizes is printed last (and saved in WORK/make_family.json).
"""
import argparse
import json
import os
import queue
import shutil
import struct
import sys
import threading
import time
import tomllib
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "zoo"))
from make_random_model import program_shape  # noqa: E402  (the shapes' home: `bitmerge inspect --shape`)

# hf_id -> how this bench stores it (see the docstring for the departures from the real repo)
LAYOUT = {
    "meta-llama/Llama-2-7b-hf": dict(weights="st", shards=2, dtype="float16"),
    "meta-llama/Llama-2-7b-chat-hf": dict(weights="st", shards=2, dtype="float16"),
    "TIGER-Lab/MAmmoTH-7B": dict(weights="bin", shards=3, dtype="float16"),
    "mrm8488/llama-2-coder-7b": dict(weights="bin", shards=2, dtype="bfloat16", fp32_norms=True),
}
ST_DTYPE = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}


def numel(sh):
    n = 1
    for d in sh:
        n *= d
    return n


def split_by_bytes(items, k):
    """Contiguous groups of about equal bytes (HF cuts shards in file order by size)."""
    total = sum(b for _, b in items)
    groups, cur, acc = [], [], 0
    for name, b in items:
        # cut before this item when its middle lies past the next k-th of the bytes
        if cur and len(groups) < k - 1 and acc + b / 2 > total * (len(groups) + 1) / k:
            groups.append(cur)
            cur = []
        cur.append(name)
        acc += b
    groups.append(cur)
    return groups


class Writer:
    """Background writes so drawing the next tensor overlaps the disk."""

    def __init__(self):
        self.q = queue.Queue(maxsize=6)
        self.err = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            f, data = item
            try:
                f.write(data)
            except Exception as e:  # noqa: BLE001
                self.err = e

    def put(self, f, data):
        if self.err:
            raise self.err
        self.q.put((f, data))

    def close(self):
        self.q.put(None)
        self.t.join()
        if self.err:
            raise self.err


def tensor_bytes(t):
    import torch
    t = t.contiguous()
    return memoryview(t.view(torch.uint8).reshape(-1).numpy())


def write_safetensors_shards(d, entries, k, writer):
    """entries: list of (name, shape, st_dtype, nbytes, make_cpu_tensor). Streams each shard."""
    groups = split_by_bytes([(e[0], e[3]) for e in entries], k)
    by = {e[0]: e for e in entries}
    wm = OrderedDict()
    total = sum(e[3] for e in entries)
    for i, g in enumerate(groups):
        fn = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        hdr, off = OrderedDict(__metadata__={"format": "pt"}), 0
        for n in g:
            _, sh, dt, nb, _ = by[n]
            hdr[n] = {"dtype": dt, "shape": list(sh), "data_offsets": [off, off + nb]}
            off += nb
            wm[n] = fn
        h = json.dumps(hdr, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        f = open(os.path.join(d, fn), "wb")
        f.write(struct.pack("<Q", len(h)) + h)
        for n in g:
            writer.put(f, tensor_bytes(by[n][4]()))
        writer.put(_Closer(f), b"")  # closed by the writer thread after its last write
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)


class _Closer:
    def __init__(self, f):
        self.f = f

    def write(self, _):
        self.f.close()


def write_bin_shards(d, entries, k, inv_freq):
    import torch
    groups = split_by_bytes([(e[0], e[3]) for e in entries], k)
    by = {e[0]: e for e in entries}
    wm = OrderedDict()
    total = sum(e[3] for e in entries)
    for i, g in enumerate(groups):
        fn = f"pytorch_model-{i + 1:05d}-of-{len(groups):05d}.bin"
        part = OrderedDict()
        for n in g:
            part[n] = by[n][4]().contiguous()
            # transformers < 4.31 pickled RoPE's buffer after each layer's o_proj (MAmmoTH, coder)
            if inv_freq is not None and n.endswith("self_attn.o_proj.weight"):
                part[n.replace("o_proj.weight", "rotary_emb.inv_freq")] = inv_freq.clone()
        torch.save(part, os.path.join(d, fn))
        for n in part:
            wm[n] = fn
        del part
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work")
    ap.add_argument("--tokenizers", required=True, help="folder with llama2/tokenizer.model (<data>/tokenizers)")
    ap.add_argument("--shape", choices=["llama7b", "tiny"], default="llama7b")
    ap.add_argument("--layers", type=int, default=0, help="decoder layers (0 = the shape's)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rel-delta", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--family", default=os.path.join(ROOT, "configs", "families", "llama2-7b.toml"))
    ap.add_argument("--bin", default="", help="bitmerge binary (the shapes and tensor list come from `bitmerge "
                    "inspect --shape`); default: $BITMERGE_BIN, build-gpu/bitmerge, build/bitmerge")
    ap.add_argument("--check", action="store_true", help="print the bytes the family needs and whether WORK has it; write nothing")
    a = ap.parse_args()
    tok = os.path.join(a.tokenizers, "llama2", "tokenizer.model")
    if not os.path.isfile(tok):
        sys.exit(f"{tok}: missing; pass --tokenizers <data>/tokenizers")
    with open(a.family, "rb") as f:
        fam = tomllib.load(f)
    shape = program_shape(a.shape, a.layers, a.bin)
    c = shape["config"]
    hidden, heads, kv, inter, vocab = (c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"],
                                       c["intermediate_size"], c["vocab_size"])
    layers = c["num_hidden_layers"]
    work = os.path.abspath(a.work)
    models = os.path.join(work, "models")
    roles = [("base", fam["base"])] + [(k, v) for k, v in fam["experts"].items()]
    for _, m in roles:
        if m["hf_id"] not in LAYOUT:
            sys.exit(f"{a.family}: {m['hf_id']} has no layout in bench/gpu/make_random_family.py (LAYOUT)")
    stamp = json.dumps({"shape": a.shape, "layers": layers, "seed": a.seed, "rel_delta": a.rel_delta,
                        "family": fam["name"], "device_kind": "cpu" if a.device == "cpu" else "cuda",
                        "layout": LAYOUT, "v": 1}, sort_keys=True)
    done = os.path.join(models, "DONE")
    fam_toml = os.path.join(work, "family.toml")
    local = {r: m["hf_id"].split("/", 1)[1] for r, m in roles}
    reusable = os.path.exists(done) and open(done).read().strip() == stamp and os.path.exists(fam_toml)
    if reusable and not a.check:
        rec = {"reused": True, "models": models, "family": fam_toml}
        print(json.dumps(rec))
        return

    import torch
    import make_zoo  # tests/zoo: config.json, generation_config.json and tokenizer files of the real repos

    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    make_zoo.SHAPES["llama7"] = dict(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                                     num_attention_heads=heads, num_key_value_heads=kv)
    names = [(n, tuple(sh)) for n, sh in shape["tensors"]]  # HF order, as the program lists them
    # disk: every model's bytes, checked before anything is written
    need = 0
    for r, m in roles:
        L, zr = LAYOUT[m["hf_id"]], make_zoo.REPOS[m["hf_id"]]
        es = 2 if L["dtype"] != "float32" else 4
        for n, sh in names:
            nb = numel(sh) * (4 if (L.get("fp32_norms") and "norm" in n) else es)
            if zr["vocab"] > vocab and sh[0] == vocab and len(sh) == 2:
                nb += (zr["vocab"] - vocab) * sh[1] * es
            need += nb
    if a.check:
        print(json.dumps({"need_bytes": need, "reusable": reusable}))
        return
    shutil.rmtree(models, ignore_errors=True)
    os.makedirs(models, exist_ok=True)
    free = shutil.disk_usage(models).free
    if free < need + (1 << 30):
        sys.exit(f"{models}: {need / 1e9:.1f} GB needed for the family, {free / 1e9:.1f} GB free; "
                 "free disk space or pass --work on a larger disk")

    dev = torch.device(a.device)
    t_all = time.time()
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    # The base in float16 (what it stores), kept on the device to derive the experts from.
    base = OrderedDict()
    for n, sh in names:
        if "norm" in n:
            base[n] = torch.ones(sh, dtype=torch.float16, device=dev)
        else:
            base[n] = (torch.randn(sh, generator=gen, device=dev, dtype=torch.float32) * 0.02).to(torch.float16)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    per_model = []
    notes = []
    for idx, (role, m) in enumerate(roles):
        rid = m["hf_id"]
        L, zr = LAYOUT[rid], make_zoo.REPOS[rid]
        zr["dtype"] = dt[L["dtype"]]  # config.json's torch_dtype says what the files hold
        t0 = time.time()
        g = torch.Generator(device=dev).manual_seed(a.seed * 1000 + 17 * (idx + 1))

        def make(n, sh, role=role, L=L, zr=zr, g=g):
            def f():
                store = torch.float32 if (L.get("fp32_norms") and "norm" in n) else dt[L["dtype"]]
                if role == "base":
                    t = base[n]
                else:
                    b = base[n].float()
                    rms = b.pow(2).mean().sqrt()
                    t = b + a.rel_delta * rms * torch.randn(b.shape, generator=g, device=dev, dtype=torch.float32)
                    if zr["vocab"] > vocab and b.dim() == 2 and b.shape[0] == vocab:  # the added [PAD] row
                        extra = 0.02 * torch.randn((zr["vocab"] - vocab, b.shape[1]), generator=g, device=dev)
                        t = torch.cat([t, extra], 0)
                return t.to(store).cpu()
            return f

        entries = []
        for n, sh in names:
            store = "float32" if (L.get("fp32_norms") and "norm" in n) else L["dtype"]
            rows = zr["vocab"] if (len(sh) == 2 and sh[0] == vocab) else None
            shp = (rows, sh[1]) if rows else sh
            entries.append((n, shp, ST_DTYPE[store], numel(shp) * (4 if store == "float32" else 2), make(n, sh)))
        d = os.path.join(models, local[role])
        tmp = d + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        if L["weights"] == "st":
            w = Writer()
            write_safetensors_shards(tmp, entries, L["shards"], w)
            w.close()
        else:
            invf = make_zoo.inv_freq(make_zoo.SHAPES["llama7"]) if zr.get("inv_freq") else None
            write_bin_shards(tmp, entries, L["shards"], invf)
        t_w = time.time() - t0
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(make_zoo.config(rid), f, indent=2)
        with open(os.path.join(tmp, "generation_config.json"), "w") as f:
            json.dump(make_zoo.generation_config(rid), f, indent=2)
        try:
            make_zoo.write_tokenizer(tmp, rid, a.tokenizers)
        except Exception as e:  # noqa: BLE001  (tokenizer.json needs transformers' converter)
            notes.append(f"{local[role]}: tokenizer.json not written ({type(e).__name__}: {e}); ships tokenizer.model")
            zr["tok"] = ("model",)
            make_zoo.write_tokenizer(tmp, rid, a.tokenizers)
        with open(os.path.join(tmp, "README.md"), "w") as f:
            f.write(f"# {rid}: random weights, its real layout (bench/gpu/make_random_family.py)\n")
        shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)
        nbytes = sum(e[3] for e in entries)
        per_model.append({"role": role, "dir": local[role], "format": L["weights"], "shards": L["shards"],
                          "dtype": L["dtype"] + ("+float32 norms" if L.get("fp32_norms") else ""),
                          "vocab": zr["vocab"], "bytes": nbytes, "seconds": round(time.time() - t0, 2),
                          "write_GBps": round(nbytes / 1e9 / max(t_w, 1e-9), 2)})
        print(f"make_random_family: {local[role]} {nbytes / 1e9:.2f} GB in {time.time() - t0:.1f} s", file=sys.stderr)
    del base
    # The family file: the real family's experts, domains and templates, with paths here.
    lines = [f"# Written by bench/gpu/make_random_family.py from {os.path.relpath(a.family, ROOT)}: random weights,",
             f"# {a.shape} shape x {layers} layers, the real repos' layouts (see the script).",
             f'name = "{fam["name"]}-random"', f'architecture = "{fam.get("architecture", "llama")}"',
             f'dtype = "{fam.get("dtype", "float16")}"', ""]
    for role, m in roles:
        lines.append("[base]" if role == "base" else f"[experts.{role}]")
        lines.append(f'hf_id = "{m["hf_id"]}"')
        lines.append(f'path = "{os.path.join(models, local[role])}"')
        for k, v in m.items():  # domain, template, format, ... as the real family says
            if k not in ("hf_id", "path", "local_name"):
                lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    lines += ["[shape]", f"vocab_size = {vocab}", f"hidden_size = {hidden}", f"intermediate_size = {inter}",
              f"num_hidden_layers = {layers}", f"num_attention_heads = {heads}", f"num_key_value_heads = {kv}", ""]
    with open(fam_toml + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(fam_toml + ".tmp", fam_toml)
    with open(done, "w") as f:
        f.write(stamp + "\n")
    total = sum(p["bytes"] for p in per_model)
    rec = {"reused": False, "models": models, "family": fam_toml, "shape": a.shape, "layers": layers,
           "device": a.device, "seconds": round(time.time() - t_all, 2), "bytes": total,
           "GBps": round(total / 1e9 / (time.time() - t_all), 2), "per_model": per_model, "notes": notes}
    with open(os.path.join(work, "make_family.json"), "w") as f:
        json.dump(rec, f, indent=1)
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
