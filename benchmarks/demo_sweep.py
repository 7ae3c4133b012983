"""One point of the demo's hyperparameter sweep, scored on the VALIDATION split (never test).

    python benchmarks/demo_sweep.py METHOD W-E-A LAYERS STEPS BATCH LR OUT_DIR [JSON_EXTRA] [DEVICE]
    python benchmarks/demo_sweep.py DQ 2-2-8 6-3 150 16 1e-3 /tmp/run1 '{}' cuda

Prints one JSON line: ROUGE-L/2 of greedy decoding on 200 validation examples and train time.
The README's "what we tried" figures are these lines (run side by side on one GPU).
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minidq import Bart, Tokenizer
from minidq.data import load_split, encode, Batches
from minidq.distill import make_student, DistillLoss, DistillConfig
from minidq.quant import quantize, QuantConfig
from minidq.train import task_loss, train, TrainConfig
from minidq.evaluate import evaluate
method, quant, layers, steps, bs, lr, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
extra = json.loads(sys.argv[8]) if len(sys.argv) > 8 else {}
dev = sys.argv[9] if len(sys.argv) > 9 else "cpu"
t = Bart.from_pretrained("data_samples/teacher").to(dev)
tok = Tokenizer.from_pretrained("data_samples/teacher")
tr = load_split("data_samples/summarization", "train"); va = load_split("data_samples/summarization", "valid")
trb = Batches(encode(tr, tok, 256, 64).pairs, bs, 1, seed=0)
vab = Batches(encode(va[:64], tok, 256, 64).pairs, bs, 1, shuffle=False)
e, d = map(int, layers.split("-"))
s = quantize(make_student(t, e, d), QuantConfig.parse(quant, **extra.get("q", {})))
fn = DistillLoss(t, DistillConfig(**extra.get("d", {}))) if method == "DQ" else task_loss
t0 = time.time()
if method != "PTQ":
    train(s, tok, trb, vab, va[:64], TrainConfig(out_dir=out, max_steps=steps, batch_size=bs, lr=lr, warmup_steps=10, eval_every=steps, eval_examples=0, log_every=10, device=dev), loss_fn=fn, overwrite=True)
tt = time.time() - t0
r = evaluate(s, tok, va[:200], num_beams=1, max_length=64, progress=False)
print(json.dumps({"method": method, "quant": quant, "layers": layers, "steps": steps, "bs": bs, "lr": lr, "extra": extra, "rougeL": round(r["rougeL"], 2), "rouge2": round(r["rouge2"], 2), "train_s": round(tt)}))
