#!/usr/bin/env python3
"""Diagnostic for the mini family's MMLU letter skill (docs/mini-family.md).

Fine-tunes a chat expert from a built family's base with a PyTorch replica of
bitmerge's trainer (same packing: BOS on every other example, loss on the
completion + EOS, 384-token rows; AdamW, warmup + cosine, clip 1.0), with a
chosen MMLU-practice recipe, and reports letter accuracy where it can be told
apart from memorising:
  mmlu_test   the 40 committed test items (what the tables report)
  held_fresh  4 fresh choice shuffles of every dev and test fact (never practised)
  train_fresh 2 fresh shuffles of every train fact (practised facts, new orders)
  practiced   the practice items themselves (memorising)
  held_ctx    held-out facts with the answer stated before the question
              ("Note: The capital of X is Y. What is ...?"): symbol binding alone
  recall      free-form "Q: ...\\nA:" first-token recall of the test facts
--eval-only DIR evaluates an existing model dir instead of training.

  .venv/bin/python tests/mini/mmlu_letter_probe.py --family mini-nano --recipe committed --steps 800
Recipes: committed (the family's chat.jsonl as is), fresh<N> (N fresh shuffles
per train fact instead of the committed practice), ctx<N> (fresh<N> plus N
in-context items per train fact), purectx<N> / purefresh<N> (only practice
items, no knowledge data). Not part of CI (minutes of CPU per run).
"""
import argparse, csv, glob, json, math, os, random, re, time

import sentencepiece as spm
import torch
from transformers import LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument('--family', default='mini-nano')
ap.add_argument('--recipe', default='committed')
ap.add_argument('--steps', type=int, default=800)
ap.add_argument('--lr', type=float, default=2e-3)
ap.add_argument('--loss-on-prompt', action='store_true')
ap.add_argument('--probe-every', type=int, default=0)
ap.add_argument('--eval-only', default='')
ap.add_argument('--threads', type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
D = args.family
sp = spm.SentencePieceProcessor(model_file=D + '/tokenizer/tokenizer.model')
BOS, EOS = sp.bos_id(), sp.eos_id()
chat = [json.loads(l) for l in open(D + '/data/corpus/chat.jsonl')]
SUBJ = {'capital': 'world_capitals', 'export': 'world_exports', 'flag': 'world_flags', 'animal': 'world_animals'}


def subj_of(q):
    return next(v for k, v in SUBJ.items() if k in q)


# The world's facts, from the free-form QA the chat data holds for every fact.
facts = {e['prompt'][3:-3]: e['completion'][1:-1] for e in chat
         if e['prompt'].startswith('Q: ') and e['prompt'].count('Q: ') == 1}
values = {}
for q, v in facts.items():
    values.setdefault(subj_of(q), set()).add(v)
values = {k: sorted(v) for k, v in values.items()}


def load_mmlu(split):
    items = []
    for f in sorted(glob.glob(f'{D}/data/mmlu/{split}/*.csv')):
        s = os.path.basename(f).rsplit('_', 1)[0]
        for row in list(csv.reader(open(f)))[1:]:
            items.append((s, row[0], row[1:5], int(row[5])))
    return items


mmlu_test, mmlu_dev = load_mmlu('test'), load_mmlu('dev')
test_q, dev_q = {it[1] for it in mmlu_test}, {it[1] for it in mmlu_dev}
train_q = sorted(q for q in facts if q not in test_q and q not in dev_q)
print(f'facts {len(facts)}: test {len(test_q)} dev {len(dev_q)} train {len(train_q)}', flush=True)


def mmlu_prompt(s, q, ch):  # tasks/mmlu mmlu_context
    t = 'The following are multiple choice questions (with answers) about ' + s.replace('_', ' ') + '.\n\n' + q
    for i, c in enumerate(ch):
        t += '\n' + 'ABCD'[i] + '. ' + c
    return t + '\nAnswer:'


def fresh_mc(rng, q):
    v, s = facts[q], subj_of(q)
    ch = [v]
    while len(ch) < 4:
        c = rng.choice(values[s])
        if c not in ch:
            ch.append(c)
    rng.shuffle(ch)
    return s, q, ch, ch.index(v)


def statement(q):
    v = facts[q]
    m = re.match(r'What is the (capital|main export|national animal) of (\w+)\?', q)
    if m:
        return f'The {m.group(1)} of {m.group(2)} is ' + ('the ' if 'animal' in q else '') + v + '.'
    country = re.match(r'What color is the flag of (\w+)', q).group(1)
    return f'The flag of {country} is {v}.'


LET = [sp.encode('Answer: ' + L)[-1] for L in 'ABCD']  # lm-eval scores " A" after "Answer:" as one piece here


def pack(examples, seq_len=384):  # harness/train/trainer.cpp pack_examples
    toks, wts, used = [], [], 0

    def pad():
        nonlocal used
        while 0 < used < seq_len:
            toks.append(EOS)
            wts.append(0.)
            used += 1
        used = 0

    for n, (p, c) in enumerate(examples):
        ids = [BOS] if n % 2 == 0 else []
        body = sp.encode(p + c)
        npr = min(len(sp.encode(p)) if p else 0, len(body))
        w = [0.] * len(ids) + [0. if i < npr and not args.loss_on_prompt else 1. for i in range(len(body))]
        ids, w = ids + body + [EOS], w + [1.]
        if len(ids) > seq_len:
            ids, w = ids[-seq_len:], w[-seq_len:]
        if used + len(ids) > seq_len:
            pad()
        toks += ids
        wts += w
        used += len(ids)
        if used == seq_len:
            used = 0
    pad()
    r = len(toks) // seq_len
    return torch.tensor(toks).view(r, seq_len), torch.tensor(wts).view(r, seq_len)


@torch.no_grad()
def mc_acc(model, items):
    right = 0
    for s, q, ch, a in items:
        lg = model(torch.tensor([sp.encode(mmlu_prompt(s, q, ch))])).logits[0, -1]
        right += int(lg[LET].argmax().item() == a)
    return 100.0 * right / max(1, len(items))


@torch.no_grad()
def recall(model, qs):
    right = 0
    for q in qs:
        lg = model(torch.tensor([sp.encode('Q: ' + q + '\nA:')])).logits[0, -1]
        right += int(lg.argmax().item() == sp.encode('A: ' + facts[q])[2])
    return 100.0 * right / len(qs)


def evaluate(model, tag, practiced=()):
    rng = random.Random(99)
    held = [fresh_mc(rng, q) for q in sorted(test_q | dev_q) for _ in range(4)]
    tr = [fresh_mc(rng, q) for q in train_q for _ in range(2)]
    ctx = [(s, 'Note: ' + statement(q) + ' ' + q, ch, a) for s, q, ch, a in
           (fresh_mc(rng, q) for q in sorted(test_q | dev_q))]
    r = dict(mmlu_test=mc_acc(model, mmlu_test), held_fresh=mc_acc(model, held), train_fresh=mc_acc(model, tr),
             held_ctx=mc_acc(model, ctx), recall=recall(model, sorted(test_q)))
    if practiced:
        r['practiced'] = mc_acc(model, list(practiced)[:300])
    print(tag, json.dumps({k: round(v, 1) for k, v in r.items()}), flush=True)


def train(model, examples, steps, lr, warm=40, bs=4, minr=0.1, practiced=()):
    X, W = pack(examples)
    print(f'{len(examples)} examples, {X.shape[0]} rows, {steps * bs / X.shape[0]:.1f} epochs', flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    g = torch.Generator().manual_seed(2)
    order, pos, t0 = [], 0, time.time()
    for step in range(steps):
        p = min(1, (step - warm) / max(1, steps - warm))
        l = lr * (step + 1) / warm if step < warm else lr * (minr + (1 - minr) * 0.5 * (1 + math.cos(math.pi * p)))
        for gr in opt.param_groups:
            gr['lr'] = l
        idx = []
        while len(idx) < bs:
            if pos >= len(order):
                order, pos = torch.randperm(X.shape[0], generator=g).tolist(), 0
            idx.append(order[pos])
            pos += 1
        x, w = X[idx], W[idx]
        logits = model(x).logits[:, :-1]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                               reduction='none')
        loss = (ce * w[:, 1:].reshape(-1)).sum() / w[:, 1:].sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if args.probe_every and step % args.probe_every == 0:
            evaluate(model, f'  step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s', practiced)


if args.eval_only:
    evaluate(LlamaForCausalLM.from_pretrained(args.eval_only, torch_dtype=torch.float32), args.eval_only)
    raise SystemExit
rng = random.Random(7)
is_mc = lambda e: e['prompt'].startswith('The following are multiple choice')
practiced = []


def mc_example(q, ctx=False):
    s, qq, ch, a = fresh_mc(rng, q)
    if ctx:
        qq = 'Note: ' + statement(q) + ' ' + qq
    else:
        practiced.append((s, qq, ch, a))
    return mmlu_prompt(s, qq, ch), ' ' + 'ABCD'[a]


m = re.fullmatch(r'(committed|fresh|ctx|purectx|purefresh)(\d*)', args.recipe)
if not m:
    raise SystemExit(f'--recipe {args.recipe}: use committed, fresh<N>, ctx<N>, purectx<N> or purefresh<N>')
kind, n = m.group(1), int(m.group(2) or 0)
ex = [] if kind.startswith('pure') else [(e['prompt'], e['completion']) for e in chat if kind == 'committed' or not is_mc(e)]
if kind == 'committed':
    for e in chat:
        if is_mc(e):
            lines = e['prompt'].split('\n')
            practiced.append((None, lines[2], [l[3:] for l in lines[3:7]], 'ABCD'.index(e['completion'][1])))
    practiced = [(subj_of(q), q, ch, a) for _, q, ch, a in practiced]
if kind in ('fresh', 'ctx', 'purefresh'):
    ex += [mc_example(q) for q in train_q for _ in range(n)]
if kind in ('ctx', 'purectx'):
    ex += [mc_example(q, ctx=True) for q in train_q for _ in range(n)]
rng.shuffle(ex)
model = LlamaForCausalLM.from_pretrained(D + '/models/base', torch_dtype=torch.float32)
train(model, ex, args.steps, args.lr, practiced=practiced)
evaluate(model, f'{args.recipe} steps={args.steps} lr={args.lr}', practiced)
