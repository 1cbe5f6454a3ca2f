#!/usr/bin/env python3
"""train_torch_budget.py — the PyTorch side of the fixed-wall-clock training comparison (docs/quality.md).

Trains a UNet2DModel on MNIST or Fashion-MNIST with the recipe of `ddpm train`'s defaults for a fixed
number of minutes, then writes the EMA weights as a diffusers pipeline folder that `ddpm eval` scores:

  linear betas 1e-4 .. 0.02, T = 1000; objective eps or v; batch 64, shuffled epochs;
  AdamW (lr 5e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01), linear warm-up over 100 steps, then constant;
  gradient clipping to global L2 norm 1.0; EMA as diffusers' EMAModel with use_ema_warmup
  (inv_gamma 1, power 2/3, max decay 0.9999); class labels replaced by the null class with probability 0.1.

The network and the training step are PyTorch's: diffusers' own UNet2DModel (--impl diffusers, the default)
or the plain-PyTorch twin in ../shared/peer (--impl twin), and ddpm_ref.NoiseSchedule for q_sample and v.

usage: train_torch_budget.py --data-dir DIR --config unet/config.json --out DIR [--minutes 40]
                             [--objective v] [--threads 2] [--seed 0] [--impl diffusers|twin] [--peer DIR]
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load_idx_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"\x00\x00\x08\x03":
        raise SystemExit(f"{path}: not an idx3 image file")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 1, h, w)


def load_idx_labels(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"\x00\x00\x08\x01":
        raise SystemExit(f"{path}: not an idx1 label file")
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


class DiffusersUNet(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        from diffusers import UNet2DModel
        self.unet = UNet2DModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})

    def forward(self, x, t, class_labels=None):
        return self.unet(x, t, class_labels, return_dict=False)[0]


def ema_decay(step, max_decay=0.9999, inv_gamma=1.0, power=2.0 / 3.0):
    """diffusers EMAModel.get_decay with use_ema_warmup, update_after_step 0 (step = optimisation step - 1)."""
    s = step - 1
    if s <= 0:
        return 0.0
    return min(max_decay, 1.0 - (1.0 + s / inv_gamma) ** -power)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, help="folder with train-images-idx3-ubyte.gz and labels")
    ap.add_argument("--config", required=True, help="a UNet2DModel config.json")
    ap.add_argument("--out", required=True, help="the pipeline folder written at the end")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--objective", choices=["eps", "v"], default="v")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--label-dropout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--impl", choices=["diffusers", "twin"], default="diffusers")
    ap.add_argument("--peer", default=os.path.join(HERE, "..", "..", "shared", "peer"),
                    help="the folder with ddpm_ref.py and torch_unet.py")
    ap.add_argument("--scheduler", default=os.path.join(HERE, "..", "models", "mnist", "scheduler",
                                                        "scheduler_config.json"))
    ap.add_argument("--log-every", type=int, default=100)
    a = ap.parse_args()

    sys.path.insert(0, os.path.abspath(a.peer))
    import ddpm_ref as dr
    import torch_unet as tu

    torch.set_num_threads(a.threads)
    with open(a.config) as f:
        cfg = json.load(f)
    torch.manual_seed(a.seed)
    model = DiffusersUNet(cfg) if a.impl == "diffusers" else tu.UNet2D(cfg)
    model.train()
    ema = [p.detach().clone() for p in model.parameters()]
    ncls = cfg.get("num_class_embeds") or 0
    null_class = ncls - 1 if ncls else None

    x_all = torch.from_numpy(load_idx_images(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")).copy())
    x_all = x_all.float().div_(127.5).sub_(1.0)
    y_all = torch.from_numpy(load_idx_labels(os.path.join(a.data_dir, "train-labels-idx1-ubyte.gz")).copy())
    n = x_all.shape[0]

    sched = dr.NoiseSchedule("linear", 1000)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    lr_lambda = (lambda s: min(1.0, s / a.warmup)) if a.warmup > 0 else (lambda s: 1.0)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    gen = torch.Generator().manual_seed(a.seed)

    budget = a.minutes * 60.0
    t0 = time.perf_counter()
    step, perm, pos, smooth = 0, torch.randperm(n, generator=gen), 0, None
    print(f"train_torch_budget: torch {torch.__version__}, {a.impl} UNet2DModel, {a.threads} threads, "
          f"{a.minutes:g} minutes, objective {a.objective}", flush=True)
    while time.perf_counter() - t0 < budget:
        if pos + a.batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        x0 = x_all[idx]
        labels = None
        if ncls:
            labels = y_all[idx].clone()
            drop = torch.rand(a.batch, generator=gen) < a.label_dropout
            labels[drop] = null_class
        t = torch.randint(0, sched.T, (a.batch,), generator=gen, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=gen)
        xt = sched.q_sample(x0, t, noise)
        target = noise if a.objective == "eps" else sched.velocity(x0, noise, t)
        pred = model(xt, t) if labels is None else model(xt, t, labels)
        loss = F.mse_loss(pred, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        d = ema_decay(step)
        with torch.no_grad():
            for s, p in zip(ema, model.parameters()):
                s.sub_((1.0 - d) * (s - p))
        lv = float(loss.detach())
        smooth = lv if smooth is None else 0.98 * smooth + 0.02 * lv
        if step % a.log_every == 0:
            el = time.perf_counter() - t0
            print(f"step {step}  loss {smooth:.4f}  {step * a.batch / el:.1f} images/s  {el / 60:.1f} min",
                  flush=True)
    elapsed = time.perf_counter() - t0

    with torch.no_grad():
        for s, p in zip(ema, model.parameters()):
            p.copy_(s)
    unet_dir = os.path.join(a.out, "unet")
    os.makedirs(unet_dir, exist_ok=True)
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    if a.impl == "diffusers":
        sd = {k[len("unet."):]: v for k, v in sd.items()}
    tu.save_safetensors(os.path.join(unet_dir, "diffusion_pytorch_model.safetensors"), sd, {"format": "pt"})
    out_cfg = dict(cfg)
    out_cfg.pop("_ddpm_guidance", None)   # measured for other weights: new weights have none (as ddpm train does)
    if ncls:
        out_cfg["_ddpm_null_class"] = null_class
    with open(os.path.join(unet_dir, "config.json"), "w") as f:
        json.dump(out_cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    sched_dir = os.path.join(a.out, "scheduler")
    os.makedirs(sched_dir, exist_ok=True)
    with open(a.scheduler) as f:
        scfg = json.load(f)
    scfg["prediction_type"] = "v_prediction" if a.objective == "v" else "epsilon"
    with open(os.path.join(sched_dir, "scheduler_config.json"), "w") as f:
        json.dump(scfg, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.scheduler))),
                                 "model_index.json"), os.path.join(a.out, "model_index.json"))
    print(json.dumps({"steps": step, "images": step * a.batch, "elapsed_s": round(elapsed, 1),
                      "images_per_s": round(step * a.batch / elapsed, 2), "final_smoothed_loss": smooth,
                      "torch": torch.__version__, "impl": a.impl, "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
