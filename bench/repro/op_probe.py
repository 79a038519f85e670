# Which CPU ops give other bits on another CPU? Hashes the output of every op the nano
# trainer and the eval use, under the pin bitmerge applies (ATen avx2, MKL CBWR COMPATIBLE,
# oneDNN off, 1 thread). Run it on two machines (or under qemu-x86_64 -cpu Haswell /
# Skylake-Server / EPYC-Milan) and diff the lines. Used to find that ATen sqrt (MKL VML)
# differs between AMD and Intel; see docs/reproducibility.md and bench/RESULTS.md.
#   ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/repro/op_probe.py
import os, sys, hashlib
import ctypes
import torch
lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__),'lib','libtorch_cpu.so'))
rc = lib.mkl_serv_cbwr_set(3)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False
def h(t): return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:10]
g = torch.Generator().manual_seed(0)
def r(*s, requires_grad=False): return torch.randn(*s, generator=g).requires_grad_(requires_grad)
out = {"cap": torch.backends.cpu.get_cpu_capability(), "cbwr_rc": rc}
x = r(1536, 96, requires_grad=True); w = r(256, 96, requires_grad=True)
y = torch.nn.functional.linear(x, w); out["linear"] = h(y)
y.sum().backward(); out["linear_dx"] = h(x.grad); out["linear_dw"] = h(w.grad)
q = r(4, 4, 384, 24, requires_grad=True); k = r(4, 4, 384, 24, requires_grad=True); v = r(4, 4, 384, 24, requires_grad=True)
mask = torch.ones(384, 384, dtype=torch.bool).tril()
a = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask); out["sdpa"] = h(a)
(a * r(*a.shape)).sum().backward(); out["sdpa_dq"] = h(q.grad); out["sdpa_dk"] = h(k.grad)
b = torch.bmm(r(16, 384, 24), r(16, 24, 384)); out["bmm"] = h(b)
s = r(1536, 768); out["softmax"] = h(torch.softmax(s, -1)); out["logsoftmax"] = h(torch.log_softmax(s, -1))
out["ce"] = h(torch.nn.functional.cross_entropy(s, torch.randint(0, 768, (1536,), generator=g)))
out["exp"] = h(torch.exp(s)); out["silu"] = h(torch.nn.functional.silu(s)); out["rsqrt"] = h(torch.rsqrt(s.abs() + 1))
out["sum"] = h(s.sum(-1)); out["mean_sq"] = h(s.pow(2).mean(-1, keepdim=True)); out["norm"] = h(torch.linalg.vector_norm(s))
out["sqrt"] = h(s.abs().sqrt()); out["cos"] = h(torch.cos(s)); out["sin"] = h(torch.sin(s))
e = r(768, 96, requires_grad=True); idx = torch.randint(0, 768, (4, 384), generator=g)
emb = torch.nn.functional.embedding(idx, e); (emb * r(*emb.shape)).sum().backward(); out["emb_bwd"] = h(e.grad)
p = torch.nn.Parameter(r(256, 96)); opt = torch.optim.AdamW([p], lr=1e-3, foreach=False)
for i in range(3):
    p.grad = r(256, 96); opt.step()
out["adamw"] = h(p)
out["randn"] = h(torch.randn(1000, generator=torch.Generator().manual_seed(1)))
out["normal_"] = h(torch.empty(1000).normal_(0, 0.02, generator=torch.Generator().manual_seed(1)))
print(" ".join(f"{k}={v}" for k, v in out.items()))
o2 = {}
v = r(256, 96).abs() * 1e-3; v[0, :5] = 0
o2["psqrt"] = h(torch.where(v > 0, v * torch.rsqrt(v), torch.zeros_like(v)))
o2["log"] = h(torch.log(s.abs() + 1)); o2["tanh"] = h(torch.tanh(s)); o2["sigmoid"] = h(torch.sigmoid(s))
o2["std"] = h(s.std(0)); o2["rand"] = h(torch.rand(1000, generator=torch.Generator().manual_seed(3)))
o2["randperm"] = h(torch.randperm(1000, generator=torch.Generator().manual_seed(3)).float())
o2["relu_mm"] = h(torch.relu(s @ r(768, 64)))
o2["addcdiv"] = h(s.clone().addcdiv_(s, s.abs() + 1, value=-0.1)); o2["addcmul"] = h(s.clone().addcmul_(s, s, value=0.01))
o2["pow2"] = h(s.pow(2)); o2["div"] = h(s / 3.7)
print(" ".join(f"{k}={v}" for k, v in o2.items()))
