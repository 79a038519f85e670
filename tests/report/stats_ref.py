"""Reference for tasks/common/stats: NumPy/SciPy/lm-eval on the same inputs.

Reads a JSON list of cases on stdin, writes a JSON list of answers. The
bootstrap draws its resamples with the SplitMix64 generator the C++ code
documents (index = high 64 bits of x * n), so both sides see the very same
resamples and must agree to rounding; the statistics on top of them
(means, numpy.percentile, the p-value rule) are NumPy's.
"""
import json
import sys

import numpy as np
from scipy.stats import binomtest

from lm_eval.api.metrics import mean_stderr

M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & M64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def indices(self, n, k):
        return np.array([(self.next() * n) >> 64 for _ in range(k)], dtype=np.int64)


def boot_diffs(d, resamples, seed):
    rng = SplitMix64(seed)
    out = np.empty(resamples)
    for r in range(resamples):
        out[r] = np.mean([dk[rng.indices(len(dk), len(dk))].mean() for dk in d])
    return out


def paired(case):
    a = [np.asarray(x, dtype=float) for x in case["a"]]
    b = [np.asarray(x, dtype=float) for x in case["b"]]
    d = [x - y for x, y in zip(a, b)]
    diff = float(np.mean([x.mean() for x in d]))
    boot = boot_diffs(d, case["resamples"], case["seed"])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    binary = all(set(np.unique(x)) <= {0.0, 1.0} for x in a + b)
    if len(a) == 1 and binary:
        k = int(np.sum((a[0] == 1) & (b[0] == 0)))
        m = int(np.sum((a[0] == 0) & (b[0] == 1)))
        p = 1.0 if k + m == 0 else binomtest(k, k + m, 0.5).pvalue
        test = "mcnemar-exact"
    else:
        c = int(np.sum(np.abs(boot - diff) >= abs(diff) - 1e-12))
        p = (1 + c) / (1 + case["resamples"])
        test = "paired-bootstrap"
    return {"diff": diff, "lo": float(lo), "hi": float(hi), "p": float(p), "test": test}


def ratio(case):
    a = [np.asarray(x, dtype=float) for x in case["a"]]
    b = [np.asarray(x, dtype=float) for x in case["b"]]
    rng = SplitMix64(case["seed"])
    boot = []
    for _ in range(case["resamples"]):
        sa = sb = 0.0
        for x, y in zip(a, b):
            idx = rng.indices(len(x), len(x))
            sa += x[idx].mean()
            sb += y[idx].mean()
        boot.append(100 * sa / sb)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"ratio": 100 * sum(x.mean() for x in a) / sum(y.mean() for y in b), "lo": float(lo), "hi": float(hi)}


def main():
    out = []
    for case in json.load(sys.stdin):
        kind = case["kind"]
        if kind == "stderr":
            out.append({"stderr": mean_stderr(case["x"])})
        elif kind == "binom":
            out.append({"p": 1.0 if case["n"] == 0 else binomtest(case["k"], case["n"], 0.5).pvalue})
        elif kind == "paired":
            out.append(paired(case))
        elif kind == "ratio":
            out.append(ratio(case))
        elif kind == "percentile":
            out.append({"q": float(np.percentile(case["x"], case["q"]))})
        else:
            raise SystemExit("unknown case kind " + kind)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
