"""Oracle for tests/tokenizer: ids from Python sentencepiece and transformers' LlamaTokenizer.

usage: reference_ids.py TOKENIZER_MODEL STRINGS.json OUT.json
"""
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
from transformers import LlamaTokenizer

tok_path, strings_path, out_path = sys.argv[1:4]
strings = json.load(open(strings_path))
sp = spm.SentencePieceProcessor(model_file=tok_path)
d = tempfile.mkdtemp()
shutil.copy(tok_path, os.path.join(d, "tokenizer.model"))
hf = LlamaTokenizer.from_pretrained(d, add_bos_token=True, add_eos_token=False)
out = {"bos": sp.bos_id(), "eos": sp.eos_id(), "vocab": sp.get_piece_size(), "cases": []}
for s in strings:
    ids = sp.encode(s)
    out["cases"].append({
        "text": s,
        "sp": ids,
        "sp_decoded": sp.decode(ids),
        "hf_bos": hf(s)["input_ids"],
        "hf_decoded": hf.decode(hf(s)["input_ids"], skip_special_tokens=True),
    })
json.dump(out, open(out_path, "w"), ensure_ascii=False)
shutil.rmtree(d)
