"""peer_init_check.py — `ddpm init --model mnist --seed 7`, and a short `ddpm train` run, must write diffusers
folders that PyTorch loads (../shared/peer/torch_unet.load_unet) and that compute what `ddpm forward` computes
on the same inputs.

usage: /usr/bin/python3 peer_init_check.py PATH/TO/ddpm PEER_DIR WORK_DIR   (exit 77 = skipped)
"""
import json
import os
import shutil
import subprocess
import sys

TOL = 1e-5


def skip(why):
    print(f"peer_init_check: SKIPPED: {why}")
    sys.exit(77)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ddpm, peer, work = sys.argv[1:]
    if not os.path.isfile(os.path.join(peer, "torch_unet.py")):
        skip(f"no {peer}/torch_unet.py (the shared peer folder is absent)")
    try:
        import numpy as np
        import torch
    except ImportError as e:
        skip(f"{sys.executable} has no torch/numpy ({e})")
    sys.path.insert(0, peer)
    import torch_unet as tu

    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    pipe = os.path.join(work, "mnist7")
    subprocess.run([ddpm, "init", "--model", "mnist", "--seed", "7", "--out", pipe], check=True)
    for f in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
              "scheduler/scheduler_config.json"):
        if not os.path.isfile(os.path.join(pipe, f)):
            sys.exit(f"FAIL: ddpm init wrote no {f}")
    with open(os.path.join(pipe, "model_index.json")) as f:
        index = json.load(f)
    if index.get("_class_name") != "DDPMPipeline":
        sys.exit(f"FAIL: model_index.json: _class_name {index.get('_class_name')!r}, want 'DDPMPipeline'")

    torch.set_num_threads(2)
    model, cfg = tu.load_unet(pipe)   # checks every key and shape
    model.eval()
    n = sum(p.numel() for p in model.parameters())
    if n != 1707009:
        sys.exit(f"FAIL: the mnist preset loaded with {n} parameters, want 1,707,009")

    rng = np.random.default_rng(77)
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    t = np.array([0, 500, 999], dtype=np.int64)
    inp = os.path.join(work, "inputs.safetensors")
    tu.save_safetensors(inp, {"x": x, "timesteps": t})
    with torch.no_grad():
        want = model(torch.from_numpy(x), torch.from_numpy(t)).numpy()

    worst = 0.0
    for engine in ("fast", "reference"):
        out = os.path.join(work, f"out_{engine}.safetensors")
        subprocess.run([ddpm, "forward", "--model", pipe, "--in", inp, "--out", out, "--engine", engine,
                        "--threads", "2"], check=True)
        got = tu.load_safetensors(out)["sample"].numpy()
        if got.shape != want.shape:
            sys.exit(f"FAIL: {engine}: sample shape {got.shape}, want {want.shape}")
        d = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
        print(f"{engine}: max|ddpm forward - torch| = {d:.3g} (tolerance {TOL:g}, max|torch| "
              f"{float(np.abs(want).max()):.3g})")
        if not d <= TOL:
            sys.exit(f"FAIL: {engine}: max|diff| {d:.3g} > {TOL:g}")
        worst = max(worst, d)
    # the initialisation itself: PyTorch's default scheme (uniform +-1/sqrt(fan_in), GroupNorm 1/0)
    sd = model.state_dict()
    w = sd["conv_in.weight"]
    bound = 1 / (w.shape[1] * w.shape[2] * w.shape[3]) ** 0.5
    if not (float(w.abs().max()) <= bound and float(w.abs().max()) > 0.5 * bound):
        sys.exit(f"FAIL: conv_in.weight max {float(w.abs().max()):.4g} is not that of U(-{bound:.4g}, {bound:.4g})")
    if not (torch.all(sd["conv_norm_out.weight"] == 1) and torch.all(sd["conv_norm_out.bias"] == 0)):
        sys.exit("FAIL: conv_norm_out is not initialised to weight 1, bias 0")
    # a folder written by `ddpm train` (EMA weights after a few steps) loads too and computes the same
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "folder")
    run = os.path.join(work, "trained")
    subprocess.run([ddpm, "train", "--data", "folder:" + folder, "--model", "tiny", "--steps", "3", "--batch", "2",
                    "--warmup", "1", "--lr", "1e-3", "--sample-every", "0", "--checkpoint-every", "0",
                    "--threads", "2", "--out", run], check=True, stdout=subprocess.DEVNULL)
    tmodel, _ = tu.load_unet(run)
    tmodel.eval()
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    t = np.array([3, 800], dtype=np.int64)
    inp = os.path.join(work, "inputs_tiny.safetensors")
    tu.save_safetensors(inp, {"x": x, "timesteps": t})
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    out = os.path.join(work, "out_trained.safetensors")
    subprocess.run([ddpm, "forward", "--model", run, "--in", inp, "--out", out, "--threads", "2"], check=True)
    got = tu.load_safetensors(out)["sample"].numpy()
    d = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
    print(f"trained folder: max|ddpm forward - torch| = {d:.3g} (tolerance {TOL:g})")
    if not d <= TOL:
        sys.exit(f"FAIL: trained folder: max|diff| {d:.3g} > {TOL:g}")
    worst = max(worst, d)
    shutil.rmtree(work, ignore_errors=True)
    print(f"peer_init_check: OK (worst {worst:.3g})")


if __name__ == "__main__":
    main()
