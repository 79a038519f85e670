#!/usr/bin/env python3
"""Oracle for the zoo's prompt-template and BOS tests (issue 15 items 4, 5):
what transformers and lm-evaluation-harness make of the replicas' tokenizers.

    lmeval_oracle.py IN.json OUT.json

IN:  {"models": {name: dir},
      "chat": [{"model": name, "user": str, "system": str | null}],
      "card": [{"format": "alpaca" | "mrm8488-coder", "user": str}],
      "requests": [{"model": name, "type": "loglikelihood", "context": str, "continuation": str}
                   | {"model": name, "type": "generate", "prompt": str}]}
OUT: {"chat": [{"text": str, "ids": [int]}],      # apply_chat_template(tokenize=False,
                                                  #   add_generation_prompt=True) and the ids
                                                  #   lm-eval's HFLM.tok_encode gives that text
      "card": [{"text": str}],                    # the model cards' prompt functions
      "requests": [{"context_ids", "continuation_ids"} | {"prompt_ids"}]}

Requests are built by lm-eval 0.4.x's own code: TemplateLM.loglikelihood (its
empty-context rule, _encode_pair) and HFLM.tok_encode / tok_batch_encode on an
HFLM whose tokenizer comes from HFLM._create_tokenizer with add_bos_token=None
(the default of `lm_eval --model hf`), i.e. no model is loaded.
"""
import json
import sys
from types import SimpleNamespace

from lm_eval.api.model import TemplateLM
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import configure_pad_token


def make_lm(d):
    lm = HFLM.__new__(HFLM)  # no __init__: no weights; only the tokenizer side
    lm.backend = "causal"
    lm.add_bos_token = None
    lm.custom_prefix_token_id = None
    lm.chat_template_args = {}
    HFLM._create_tokenizer(lm, d, None, revision="main", trust_remote_code=False, use_fast_tokenizer=True,
                           add_bos_token=None)
    lm.tokenizer = configure_pad_token(lm.tokenizer)  # as HFLM.__init__ (padding in tok_batch_encode)
    return lm


def alpaca(user):  # MAmmoTH's card / Nondzu's card (Alpaca without input)
    return ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{query}\n\n### Response:").format(query=user)


def mrm8488_coder(instruction):  # mrm8488/llama-2-coder-7b's card: create_prompt()
    system = "You are a coding assistant that will help the user to resolve the following instruction:"
    instruction = "### Instruction: " + instruction
    return system + "\n" + instruction + "\n\n" + "### Solution:" + "\n"


def main():
    inp = json.load(open(sys.argv[1]))
    lms = {name: make_lm(d) for name, d in inp["models"].items()}
    out = {"chat": [], "card": [], "requests": []}
    for c in inp.get("chat", []):
        lm = lms[c["model"]]
        msgs = ([{"role": "system", "content": c["system"]}] if c.get("system") else []) + \
               [{"role": "user", "content": c["user"]}]
        text = lm.apply_chat_template(msgs, add_generation_prompt=True)  # lm-eval's: tokenize=False
        out["chat"].append({"text": text, "ids": lm.tok_encode(text)})
    for c in inp.get("card", []):
        f = {"alpaca": alpaca, "mrm8488-coder": mrm8488_coder}[c["format"]]
        out["card"].append({"text": f(c["user"])})
    for r in inp.get("requests", []):
        lm = lms[r["model"]]
        if r["type"] == "loglikelihood":
            # lm-eval's own loglikelihood(): empty-context rule, then _encode_pair;
            # the tokenized requests are captured where they go to the model.
            got = []
            lm._loglikelihood_tokens = lambda reqs, disable_tqdm=False: got.extend(reqs) or []
            TemplateLM.loglikelihood(lm, [SimpleNamespace(args=(r["context"], r["continuation"]))], disable_tqdm=True)
            _, ctx, cont = got[0]
            out["requests"].append({"context_ids": list(ctx), "continuation_ids": list(cont)})
        else:
            enc, _ = lm.tok_batch_encode([r["prompt"]])  # generate_until's encoding
            out["requests"].append({"prompt_ids": enc[0].tolist()})
    json.dump(out, open(sys.argv[2], "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
