"""Interop with the real diffusers: DDPMPipeline.from_pretrained loads a model folder (the shipped class-conditional
model: its private "_ddpm_null_class" key is ignored by diffusers), DDIMScheduler.from_config(pipe.scheduler.config)
runs 10 DDIM steps from a stored x_T with class labels, and `ddpm sample` with the same x_T, labels, sampler and
guidance 1 must agree to 1e-4.

usage: python3 interop_diffusers.py DDPM COMPARE_TENSOR MODEL_DIR WORK_DIR   (exit 77 when diffusers is missing)
"""
import os
import subprocess
import sys

try:
    import torch
    import diffusers
    from diffusers import DDIMScheduler, DDPMPipeline
    from safetensors.torch import save_file
except ImportError as e:
    print(f"interop_diffusers: SKIPPED: {e} (pip install torch diffusers safetensors)")
    sys.exit(77)

ddpm, compare, model_dir, work = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
torch.set_num_threads(2)
pipe = DDPMPipeline.from_pretrained(model_dir)
unet = pipe.unet.eval()
sched = DDIMScheduler.from_config(pipe.scheduler.config)
sched.set_timesteps(10)
cfg = unet.config
x = torch.randn((4, cfg.in_channels, cfg.sample_size, cfg.sample_size), generator=torch.Generator().manual_seed(0))
xt_path, ref_path, got_path = (os.path.join(work, n) for n in ("x_T.safetensors", "ref.safetensors", "got.safetensors"))
save_file({"x_T": x.contiguous()}, xt_path)
labels = torch.tensor([1, 3, 5, 7]) if cfg.num_class_embeds else None
with torch.no_grad():
    for t in sched.timesteps:
        x = sched.step(unet(x, t, class_labels=labels).sample, t, x, eta=0.0).prev_sample
save_file({"samples": x.contiguous()}, ref_path)
cmd = [ddpm, "sample", "--model", model_dir, "--noise", xt_path, "--sampler", "ddim", "--steps", "10",
       "--out", os.path.join(work, "got.png"), "--save-tensor", got_path]
if labels is not None:
    cmd += ["--class", "1,3,5,7", "--guidance", "1"]
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
r = subprocess.run([compare, got_path, "samples", ref_path, "samples", "--atol", "1e-4"], capture_output=True, text=True)
print(f"diffusers {diffusers.__version__}, torch {torch.__version__}: {r.stdout.strip()}")
sys.exit(0 if r.returncode == 0 else 1)
