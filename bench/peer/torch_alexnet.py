#!/usr/bin/env python3
"""PyTorch peer for the training-step benchmark (npm run bench; bench/peer/torch-peer.ts runs it).

The same two-tower AlexNet as packages/core, built from the same ModelSpec (the TypeScript side
writes getPreset(name) as JSON to this script's standard input), timed for one full training step
(forward, backward, SGD-with-momentum update) per iteration, in fp32, on CUDA when torch sees a
GPU, else on the CPU:

  python3 bench/peer/torch_alexnet.py --batch 64 [--warmup 2] [--iters 10] [--device auto|cuda|cpu]
                                      [--tf32] [--expect-params N] [--seed 1] < spec.json

The two towers are one tensor, tower 0's channels first: a layer whose input is its own tower's
('own') is a grouped conv (groups=2); one that reads both towers ('image', 'both') is a plain conv or
linear layer with both towers' outputs; the classifier reads both towers' fc7. LRN runs within each
tower's channels (the paper's alpha, not divided by the window: torch's is, so it gets alpha * size).
Update: the paper's SGD, momentum 0.9, weight decay 0.0005 on weights (not biases), lr 0.01 (torch's
form v <- 0.9 v + g + 0.0005 w, w <- w - lr v is the paper's with v scaled by -lr). The loss is read back
after every step, as alexnet-mp's is. TF32 is off unless --tf32: fp32 as the others.

Output: progress lines, then one line 'PEER_RESULT {json}'. Without an importable torch it prints
'PEER_SKIP <why>' and exits with status 3.
"""
import argparse
import json
import math
import sys
import time


def skip(why):
    print("PEER_SKIP " + why, flush=True)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--tf32", action="store_true", help="let cuDNN and cuBLAS use TF32 (off: fp32)")
    ap.add_argument("--expect-params", type=int, default=None, help="fail unless the model has this many parameters")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spec", default="-", help="the ModelSpec as JSON: a file, or - for standard input")
    args = ap.parse_args()
    if args.batch < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--batch and --iters must be at least 1, --warmup at least 0")

    if args.spec == "-":
        spec = json.load(sys.stdin)
    else:
        with open(args.spec) as f:
            spec = json.load(f)

    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install (missing shared library)
        skip("torch is not importable by %s: %s: %s" % (sys.executable, type(e).__name__, e))

    if args.device == "cuda" and not torch.cuda.is_available():
        skip("--device cuda, but torch %s sees no CUDA device" % torch.__version__)
    device = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32

    towers = int(spec.get("towers", 2))

    class TowerLRN(nn.Module):
        """Cross-channel LRN within each tower's channels."""

        def __init__(self, size, alpha, beta, k):
            super().__init__()
            self.lrn = nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)

        def forward(self, x):
            b, c, h, w = x.shape
            return self.lrn(x.reshape(b * towers, c // towers, h, w)).reshape(b, c, h, w)

    class Flatten(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)

    class TowerLinear(nn.Module):
        """An fc layer reading its own tower's input only: a grouped 1x1 conv on the flat towers."""

        def __init__(self, inputs, units):
            super().__init__()
            self.conv = nn.Conv2d(towers * inputs, towers * units, 1, groups=towers)

        def forward(self, x):
            return self.conv(x.reshape(x.shape[0], -1, 1, 1)).reshape(x.shape[0], -1)

    def init_std(fan_in, classifier):
        s = spec["initStd"]
        if s == "he":
            return 0.01 if classifier else math.sqrt(2.0 / fan_in)
        return float(s)

    # walk the layers as packages/core/src/model/shapes.ts's planModel does: per-tower c, h, w
    c, h, w = int(spec["inputChannels"]), int(spec["inputSize"]), int(spec["inputSize"])
    first = True  # the image is shared, not per tower
    flat = False  # [batch, features] from the first fc layer on
    layers = []
    for l in spec["layers"]:
        t = l["type"]
        if t == "conv":
            k, st, pad, f = int(l["size"]), int(l["stride"]), int(l["pad"]), int(l["filtersPerTower"])
            if l["input"] == "image" or first:
                cin, groups, fan_c = c, 1, c
            elif l["input"] == "own":
                cin, groups, fan_c = towers * c, towers, c
            else:  # both
                cin, groups, fan_c = towers * c, 1, towers * c
            m = nn.Conv2d(cin, towers * f, k, stride=st, padding=pad, groups=groups)
            nn.init.normal_(m.weight, 0.0, init_std(fan_c * k * k, False))
            nn.init.constant_(m.bias, float(l["biasInit"]))
            layers.append(m)
            h = (h + 2 * pad - k) // st + 1
            w = (w + 2 * pad - k) // st + 1
            c = f
            first = False
        elif t == "fc":
            classifier = bool(l.get("classifier", False))
            units = int(l["unitsPerTower"])
            if not flat:
                layers.append(Flatten())
                flat = True
            if l["input"] == "own" and not classifier:
                m = TowerLinear(c * h * w, units)
                nn.init.normal_(m.conv.weight, 0.0, init_std(c * h * w, False))
                nn.init.constant_(m.conv.bias, float(l["biasInit"]))
            else:
                fan_in = towers * c * h * w
                m = nn.Linear(fan_in, units if classifier else towers * units)
                nn.init.normal_(m.weight, 0.0, init_std(fan_in, classifier))
                nn.init.constant_(m.bias, float(l["biasInit"]))
            layers.append(m)
            c, h, w = units, 1, 1
            first = False
        elif t == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif t == "lrn":
            if flat:
                raise SystemExit("LRN after an fc layer is not supported here")
            layers.append(TowerLRN(int(l["size"]), float(l["alpha"]), float(l["beta"]), float(l["k"])))
        elif t == "maxpool":
            if flat:
                raise SystemExit("max-pooling after an fc layer is not supported here")
            k, st = int(l["size"]), int(l["stride"])
            layers.append(nn.MaxPool2d(k, st))
            h = (h - k) // st + 1
            w = (w - k) // st + 1
        elif t == "dropout":
            layers.append(nn.Dropout(float(l["rate"])))
        else:
            raise SystemExit("unknown layer type %r in the spec" % t)

    model = nn.Sequential(*layers).to(device)
    params = sum(p.numel() for p in model.parameters())
    if args.expect_params is not None and params != args.expect_params:
        raise SystemExit("the model has %d parameters, the spec's count is %d: the shapes differ" % (params, args.expect_params))
    weights = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 0.0005}, {"params": biases, "weight_decay": 0.0}], lr=0.01, momentum=0.9)

    size = int(spec["inputSize"])
    x = torch.randn(args.batch, int(spec["inputChannels"]), size, size, device=device)
    y = torch.randint(0, int(spec["classes"]), (args.batch,), device=device)
    model.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        where = "cuda (%s)" % torch.cuda.get_device_name(device)
    else:
        where = "cpu (%d threads)" % torch.get_num_threads()
    print("torch %s on %s: preset %s, batch %d, %d parameters" % (torch.__version__, where, spec.get("name", "?"), args.batch, params), flush=True)

    times = []
    losses = []
    for i in range(args.warmup + args.iters):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        value = loss.item()  # read back, as alexnet-mp reads its loss: the step has finished
        dt = (time.perf_counter() - t0) * 1000.0
        if not math.isfinite(value):
            raise SystemExit("loss is %r at step %d" % (value, i))
        losses.append(value)
        if i >= args.warmup:
            times.append(dt)
        print("  step %d/%d%s: %.1f ms, loss %.4f" % (i + 1, args.warmup + args.iters, " (warm-up)" if i < args.warmup else "", dt, value), flush=True)

    ordered = sorted(times)
    n = len(ordered)
    med = ordered[n // 2] if n % 2 == 1 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    description = (
        "PyTorch %s on %s, fp32%s, NCHW, groups=2 convs, SGD momentum 0.9 weight decay 0.0005 (weights, not biases) lr 0.01, "
        "one fixed random batch%s"
        % (torch.__version__, where, " (TF32 allowed)" if args.tf32 and device.type == "cuda" else " (no TF32)" if device.type == "cuda" else "",
           ", cudnn %s benchmark mode" % cudnn if cudnn else "")
    )
    result = {
        "kind": "torch-peer",
        "torch": torch.__version__,
        "device": where,
        "tf32": bool(args.tf32 and device.type == "cuda"),
        "params": params,
        "batch": args.batch,
        "stepMs": times,
        "medianStepMs": med,
        "imagesPerSec": args.batch * 1000.0 / med,
        "firstLoss": losses[0],
        "lastLoss": losses[-1],
        "description": description,
    }
    print("PEER_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
