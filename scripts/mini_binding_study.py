#!/usr/bin/env python3
"""CPU study: can models of the mini family's sizes learn MMLU-format letter binding?

Trains a LLaMA-architecture model FROM SCRATCH (HF LlamaForCausalLM, the mini
family's shapes) on a stream of freshly generated synthetic items in the exact
MMLU prompt template of tasks/mmlu (lm-eval: header + question + "\nA. x" lines +
"\nAnswer:", completion " C"), tokenized with the built family's sentencepiece
model (mini-nano/tokenizer), packed as harness/train/trainer.cpp packs them
(BOS on every other example, EOS after each, 384-token rows, loss weights),
AdamW + warmup + cosine + clip 1.0, and tracks held-out letter accuracy every
--eval-every steps (argmax over the logits of "\u2581A".."\u2581D" after "Answer:",
no BOS, as lm-eval's acc on one-token continuations).

World: the 32 countries x 4 attributes of mini-nano (from its chat.jsonl).
8 countries are held out: no training item ever names them as the subject.

Tasks (--task):
  bind    "Note: The capital of X is Y. What is the capital of X?" + options;
          training notes assign RANDOM values (so nothing can be memorised),
          held-out items use held-out countries (true values, fresh shuffles).
  recall  facts learned from plain text: declarative statements of ALL facts
          (train and held-out countries) + MC items WITHOUT the note on train
          countries' true facts (+ --bind-share of note items with random values);
          held-out = MC without note on held-out countries' facts (seen only
          declaratively). Also reports held-out note accuracy and free recall.

Knobs (question 2): --nopt (options per item), --two-choice-steps (2-option
curriculum first), --loss all|answer, --lr, --layers/--hidden, --copy-share
(plain copy task mixed in), --reverse-share (items whose completion is
" C. <value>", letter -> value direction), --aligned (answer letter scored and
trained as the option-line letter token id, i.e. a tokenizer where the answer
letter and the option letter are the same piece).

  .venv/bin/python scripts/mini_binding_study.py --task bind --steps 1500 --loss answer --tag b1
"""
import argparse, json, math, os, random, re, time

import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument('--family', default='mini-nano')
ap.add_argument('--task', default='bind', choices=['bind', 'recall'])
ap.add_argument('--steps', type=int, default=1500)
ap.add_argument('--bs', type=int, default=4)
ap.add_argument('--seq-len', type=int, default=384)
ap.add_argument('--lr', type=float, default=3e-3)
ap.add_argument('--warmup', type=int, default=50)
ap.add_argument('--min-lr-ratio', type=float, default=0.1)
ap.add_argument('--wd', type=float, default=0.01)
ap.add_argument('--loss', default='answer', choices=['answer', 'all'])
ap.add_argument('--nopt', type=int, default=4)
ap.add_argument('--two-choice-steps', type=int, default=0)
ap.add_argument('--copy-share', type=float, default=0.0)
ap.add_argument('--reverse-share', type=float, default=0.0)
ap.add_argument('--bind-share', type=float, default=0.0, help='recall task: share of note items')
ap.add_argument('--decl-share', type=float, default=0.5, help='recall task: share of declarative docs')
ap.add_argument('--aligned', action='store_true')
ap.add_argument('--subset-share', type=float, default=0.0,
                help='share of items that show only a random subset of the letters (1-3 options, in order, '
                     'e.g. "B. x\\nD. y"); with 1 option the answer is the only letter present')
ap.add_argument('--subset-steps', type=int, default=10**9, help='subset items only before this step')
ap.add_argument('--hidden', type=int, default=96)
ap.add_argument('--layers', type=int, default=4)
ap.add_argument('--heads', type=int, default=4)
ap.add_argument('--kv-heads', type=int, default=2)
ap.add_argument('--mlp', type=int, default=256)
ap.add_argument('--eval-every', type=int, default=100)
ap.add_argument('--n-eval', type=int, default=200)
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--tag', default='run')
ap.add_argument('--out', default='out/binding-study')
ap.add_argument('--max-seconds', type=float, default=1e9)
args = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(args.seed)
D = args.family
sp = spm.SentencePieceProcessor(model_file=D + '/tokenizer/tokenizer.model')
BOS, EOS = sp.bos_id(), sp.eos_id()
V = sp.get_piece_size()

# ---- the world (as tests/mini/mmlu_letter_probe.py reads it) ----
chat = [json.loads(l) for l in open(D + '/data/corpus/chat.jsonl')]
SUBJ = {'capital': 'world_capitals', 'export': 'world_exports', 'flag': 'world_flags', 'animal': 'world_animals'}
facts = {e['prompt'][3:-3]: e['completion'][1:-1] for e in chat
         if e['prompt'].startswith('Q: ') and e['prompt'].count('Q: ') == 1}


def parse_q(q):
    m = re.match(r'What is the (capital|main export|national animal) of (\w+)\?', q)
    if m:
        return {'capital': 'capital', 'main export': 'export', 'national animal': 'animal'}[m.group(1)], m.group(2)
    return 'flag', re.match(r'What color is the flag of (\w+)', q).group(1)


QTEMPLATE = {'capital': 'What is the capital of {}?', 'export': 'What is the main export of {}?',
             'animal': 'What is the national animal of {}?', 'flag': 'What color is the flag of {}?'}
world = {}  # country -> attr -> value
for q, v in facts.items():
    a, c = parse_q(q)
    world.setdefault(c, {})[a] = v
countries = sorted(world)
values = {a: sorted({world[c][a] for c in countries}) for a in QTEMPLATE}
rng0 = random.Random(42)
perm = countries[:]
rng0.shuffle(perm)
held_c, train_c = sorted(perm[:8]), sorted(perm[8:])


def statement(a, c, v, rng=None):
    forms = {'capital': ['The capital of {c} is {v}.', '{v} is the capital of {c}.', '{c} has its capital in {v}.'],
             'export': ['The main export of {c} is {v}.', '{c} exports mostly {v}.', '{v} is what {c} exports most.'],
             'animal': ['The national animal of {c} is the {v}.', 'The {v} is the national animal of {c}.',
                        '{c} has the {v} as its national animal.'],
             'flag': ['The flag of {c} is {v}.', '{c} has a {v} flag.', 'The color of the flag of {c} is {v}.']}[a]
    f = forms[0] if rng is None else rng.choice(forms)
    return f.format(c=c, v=v)


def mmlu_prompt(a, q, ch):  # tasks/mmlu mmlu_context (lm-eval template)
    t = 'The following are multiple choice questions (with answers) about ' + SUBJ[a].replace('_', ' ') + '.\n\n' + q
    for i, x in enumerate(ch):
        t += '\n' + 'ABCD'[i] + '. ' + x
    return t + '\nAnswer:'


def options(rng, a, v, n):
    ch = [v]
    while len(ch) < n:
        x = rng.choice(values[a])
        if x not in ch:
            ch.append(x)
    rng.shuffle(ch)
    return ch, ch.index(v)


def mc_item(rng, a, c, v, note, n, letters='ABCD'):
    ch, k = options(rng, a, v, n)
    q = QTEMPLATE[a].format(c)
    if note:
        q = 'Note: ' + statement(a, c, v) + ' ' + q
    if letters != 'ABCD':  # a quiz showing only some letters: options keep their letters
        t = 'The following are multiple choice questions (with answers) about ' + SUBJ[a].replace('_', ' ') + '.\n\n' + q
        for L, x in zip(letters, ch):
            t += '\n' + L + '. ' + x
        return t + '\nAnswer:', 'ABCD'.index(letters[k])
    return mmlu_prompt(a, q, ch), k


LET = [sp.encode('Answer: ' + L)[-1] for L in 'ABCD']       # "\u2581A": what lm-eval scores after "Answer:"
OPTLET = [sp.piece_to_id(L) for L in 'ABCD']  # "A" as it appears in the option lines
assert [sp.id_to_piece(i) for i in OPTLET] == list('ABCD'), [sp.id_to_piece(i) for i in OPTLET]
SCORE = OPTLET if args.aligned else LET


def encode_item(prompt, k, completion_extra=''):
    """(ids, weights) of one MC example: prompt + ' L' (+ extra) + EOS; answer-loss weights on completion+EOS."""
    p = sp.encode(prompt)
    if args.aligned:
        # aligned: " A" tokenized as "\u2581" + "A" (a tokenizer without the "\u2581A" pieces)
        comp = [sp.piece_to_id('\u2581'), OPTLET[k]] + (sp.encode(completion_extra)[1:] if completion_extra else [])
        body = p + comp
    else:
        body = sp.encode(prompt + ' ' + 'ABCD'[k] + completion_extra)
        assert body[:len(p)] == p and body[len(p)] == LET[k]
    npr = len(p)
    return body, npr


def copy_doc(rng):
    """A plain-text copy task: a list of names, then 'Again:' and the same list."""
    pool = values['capital'] + countries + values['animal'] + values['export']
    xs = [rng.choice(pool) for _ in range(rng.randint(3, 6))]
    return 'List: ' + ', '.join(xs) + '. Again: ' + ', '.join(xs) + '.'


def sample_example(rng, step):
    """-> (ids_body, n_prompt_tokens or 0 for plain text)."""
    n = 2 if step < args.two_choice_steps else args.nopt
    r = rng.random()
    if args.copy_share and r < args.copy_share:
        return sp.encode(copy_doc(rng)), 0
    r = rng.random()
    a = rng.choice(list(QTEMPLATE))
    if args.task == 'bind':
        c, v = rng.choice(train_c), rng.choice(values[a])
        if args.subset_share and step < args.subset_steps and rng.random() < args.subset_share:
            m = rng.randint(1, 3)
            return encode_item(*mc_item(rng, a, c, v, True, m, ''.join(sorted(rng.sample('ABCD', m)))))
        prompt, k = mc_item(rng, a, c, v, True, n)
        if args.reverse_share and rng.random() < args.reverse_share:
            ids, npr = encode_item(prompt, k, '. ' + v)
            return ids, npr
        return encode_item(prompt, k)
    # recall task
    if r < args.decl_share:  # a declarative doc: 1-3 facts of one country in random phrasings (all countries)
        c = rng.choice(countries)
        at = rng.sample(list(QTEMPLATE), rng.randint(1, 3))
        return sp.encode(' '.join(statement(x, c, world[c][x], rng) for x in at)), 0
    if rng.random() < args.bind_share:  # note items with random values (subset quizzes as in bind)
        c, v = rng.choice(train_c), rng.choice(values[a])
        if args.subset_share and step < args.subset_steps and rng.random() < args.subset_share:
            m = rng.randint(1, 3)
            return encode_item(*mc_item(rng, a, c, v, True, m, ''.join(sorted(rng.sample('ABCD', m)))))
        return encode_item(*mc_item(rng, a, c, v, True, n))
    c = rng.choice(train_c)
    return encode_item(*mc_item(rng, a, c, world[c][a], False, n))


def make_batch(rng, step):
    """Greedy packing as harness/train/trainer.cpp: [BOS]? + body + EOS, BOS on every other example."""
    L = args.seq_len
    rows, wrows, arows, cur, wcur, acur, n_ex, n_items = [], [], [], [], [], [], 0, 0
    while len(rows) < args.bs:
        body, npr = sample_example(rng, step)
        ids = ([BOS] if n_ex % 2 == 0 else []) + body + [EOS]
        off = len(ids) - len(body) - 1
        if args.loss == 'all' or npr == 0:
            w = [0.] * off + [1.] * (len(body) + 1)
        else:
            w = [0.] * off + [0. if i < npr else 1. for i in range(len(body))] + [1.]
        am = [0.] * len(ids)
        if npr > 0:
            am[off + npr + (1 if args.aligned else 0)] = 1.  # the answer letter (aligned: after the lone "\u2581")
        n_ex += 1
        n_items += npr > 0
        if len(cur) + len(ids) > L:
            pad = L - len(cur)
            rows.append(cur + [EOS] * pad)
            wrows.append(wcur + [0.] * pad)
            arows.append(acur + [0.] * pad)
            cur, wcur, acur = [], [], []
            if len(rows) == args.bs:
                break
        cur, wcur, acur = cur + ids, wcur + w, acur + am
    return torch.tensor(rows), torch.tensor(wrows), torch.tensor(arows), n_items


def eval_sets():
    rng = random.Random(99)
    s = {}
    at = list(QTEMPLATE)
    # held-out countries, their true values, answer stated in the note
    s['held_note'] = [mc_item(rng, a, c, world[c][a], True, args.nopt) for c in held_c for a in at for _ in range(6)]
    # train countries, fresh random values, note (the training distribution, new draws)
    s['train_note'] = []
    for a in at:
        for _ in range(40):
            c = rng.choice(train_c)
            s['train_note'].append(mc_item(rng, a, c, rng.choice(values[a]), True, args.nopt))
    s['held_note2'] = [mc_item(rng, a, c, world[c][a], True, 2) for c in held_c for a in at for _ in range(3)]
    # quizzes showing 1 or 2 of the letters (the --subset-share items; 1 letter: copy the only letter there)
    s['held_sub1'] = [mc_item(rng, a, c, world[c][a], True, 1, rng.choice('ABCD')) for c in held_c for a in at
                      for _ in range(3)]
    s['held_sub2'] = [mc_item(rng, a, c, world[c][a], True, 2, ''.join(sorted(rng.sample('ABCD', 2))))
                      for c in held_c for a in at for _ in range(3)]
    if args.task == 'recall':
        s['held_recall'] = [mc_item(rng, a, c, world[c][a], False, args.nopt) for c in held_c for a in at
                            for _ in range(6)]
        s['train_recall'] = [mc_item(rng, a, c, world[c][a], False, args.nopt) for c in train_c for a in at
                             for _ in range(2)]
    return s


@torch.no_grad()
def mc_acc(model, items):
    right, picks = 0, [0] * 4
    enc = [sp.encode(p) for p, _ in items]
    for i in range(0, len(enc), 64):
        chunk = enc[i:i + 64]
        m = max(map(len, chunk))
        x = torch.tensor([e + [EOS] * (m - len(e)) for e in chunk])
        lg = model(x).logits
        for j, e in enumerate(chunk):
            opt_lines = items[i + j][0].split('\nAnswer:')[0].split('\n')[3:]
            lets = ''.join(l[0] for l in opt_lines)
            n = len(lets) if len(lets) >= 2 and lets == 'ABCD'[:len(lets)] else 4  # subset quizzes: all 4 letters
            sc = lg[j, len(e) - 1][SCORE[:n]]
            p = int(sc.argmax())
            picks[p] += 1
            right += int(p == items[i + j][1])
    return 100.0 * right / len(items), picks


@torch.no_grad()
def free_recall(model):
    right = tot = 0  # declarative completion "The capital of X is" -> Y (held-out countries' facts)
    for c in held_c:
        for a in QTEMPLATE:
            v = world[c][a]
            st = statement(a, c, v)
            pre = st[:st.rindex(' ' + v)]
            pids, full = sp.encode(pre), sp.encode(pre + ' ' + v + '.')
            lg = model(torch.tensor([pids])).logits[0, -1]
            right += int(lg.argmax().item() == full[len(pids)])
            tot += 1
    return 100.0 * right / tot


cfg = LlamaConfig(vocab_size=V, hidden_size=args.hidden, intermediate_size=args.mlp, num_hidden_layers=args.layers,
                  num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, max_position_embeddings=1024,
                  bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=False, initializer_range=0.02,
                  rms_norm_eps=1e-5, rope_theta=10000.0)
model = LlamaForCausalLM(cfg)
nparams = sum(p.numel() for p in model.parameters())
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.wd}, {'params': nodecay, 'weight_decay': 0.0}],
                        lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
ES = eval_sets()
rng = random.Random(args.seed)
os.makedirs(args.out, exist_ok=True)
log = {'args': vars(args), 'params': nparams, 'held_countries': held_c, 'evals': []}
print(f'[{args.tag}] params {nparams}  held {held_c}', flush=True)
t0, tokens, items, lsum, asum, lcount = time.time(), 0, 0, 0.0, 0.0, 0


def do_eval(step):
    model.eval()
    r = {'step': step, 'tokens': tokens, 'items': items, 'sec': round(time.time() - t0, 1),
         'train_loss': round(lsum / max(1, lcount), 4), 'ans_loss': round(asum / max(1, lcount), 4)}
    for k, its in ES.items():
        acc, picks = mc_acc(model, its)
        r[k] = round(acc, 1)
        if k in ('held_note', 'held_recall'):
            r[k + '_picks'] = picks
    if args.task == 'recall':
        r['free_recall'] = round(free_recall(model), 1)
    model.train()
    log['evals'].append(r)
    print(f'[{args.tag}] ' + json.dumps(r), flush=True)


for step in range(args.steps):
    if step % args.eval_every == 0:
        do_eval(step)
        lsum = asum = 0.0
        lcount = 0
    if time.time() - t0 > args.max_seconds:
        print(f'[{args.tag}] stopped at max-seconds', flush=True)
        break
    p = min(1, max(0, step - args.warmup) / max(1, args.steps - args.warmup))
    lr = args.lr * (step + 1) / args.warmup if step < args.warmup else \
        args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
    for g in opt.param_groups:
        g['lr'] = lr
    x, w, am, ni = make_batch(rng, step)
    tokens += x.numel()
    items += ni
    logits = model(x).logits[:, :-1]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1), reduction='none')
    ww = w[:, 1:].reshape(-1)
    loss = (ce * ww).sum() / ww.sum().clamp_min(1)
    # loss on the answer-letter tokens alone (for the log): positions whose target is a letter
    lm = am[:, 1:].reshape(-1) > 0
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    lsum += loss.item()
    asum += (ce[lm].mean().item() if lm.any() else 0.0)
    lcount += 1
do_eval(step + 1)
tmp = f'{args.out}/{args.tag}.json.tmp'
with open(tmp, 'w') as fh:
    json.dump(log, fh, indent=1)
os.replace(tmp, f'{args.out}/{args.tag}.json')  # never a half-written result
