"""Interop with the real diffusers, both ways, each checked by a 10-step DDIM loop from one stored x_T that
`ddpm sample` must reproduce to 1e-4:
  1. DDPMPipeline.from_pretrained loads a folder ddpm wrote: the shipped class-conditional model (its private
     "_ddpm_null_class" key is ignored by diffusers) and a run folder that `ddpm train` has just written;
  2. ddpm loads folders that this diffusers saves with DDPMPipeline.save_pretrained: plain safetensors, and
     variant="fp16" (half weights in diffusion_pytorch_model.fp16.safetensors), with whatever config keys this
     diffusers version writes, and a network without a middle block (mid_block_type = None).

usage: python3 interop_diffusers.py DDPM COMPARE_TENSOR MODEL_DIR WORK_DIR [TRAIN_DATA_DIR]
       (exit 77 when diffusers is missing)
"""
import os
import subprocess
import sys

try:
    import torch
    import diffusers
    from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
    from safetensors.torch import save_file
except ImportError as e:
    print(f"interop_diffusers: SKIPPED: {e} (pip install torch diffusers safetensors)")
    sys.exit(77)

ddpm, compare, model_dir, work = sys.argv[1:5]
train_data = sys.argv[5] if len(sys.argv) > 5 else None
os.makedirs(work, exist_ok=True)
torch.set_num_threads(2)
failures = 0


def check(name, folder, variant=None, atol=1e-4):
    """diffusers' DDIM-10 from a fixed x_T on the folder (in float32) against `ddpm sample` on the same folder."""
    global failures
    kw = {"variant": variant} if variant else {}
    pipe = DDPMPipeline.from_pretrained(folder, **kw)
    unet = pipe.unet.float().eval()
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    sched.set_timesteps(10)
    cfg = unet.config
    x = torch.randn((4, cfg.in_channels, cfg.sample_size, cfg.sample_size), generator=torch.Generator().manual_seed(0))
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    xt, ref, got = (os.path.join(d, n) for n in ("x_T.safetensors", "ref.safetensors", "got.safetensors"))
    save_file({"x_T": x.contiguous()}, xt)
    labels = torch.tensor([1, 3, 5, 7]) % cfg.num_class_embeds if cfg.num_class_embeds else None
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(unet(x, t, class_labels=labels).sample, t, x, eta=0.0).prev_sample
    save_file({"samples": x.contiguous()}, ref)
    cmd = [ddpm, "sample", "--model", folder, "--noise", xt, "--sampler", "ddim", "--steps", "10",
           "--save-tensor", got]
    if labels is not None:
        cmd += ["--class", ",".join(str(int(v)) for v in labels), "--guidance", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {name}: ddpm sample exit {r.returncode}: {r.stderr.strip()}")
        failures += 1
        return
    r = subprocess.run([compare, got, "samples", ref, "samples", "--atol", str(atol)], capture_output=True, text=True)
    print(f"{name}: {r.stdout.strip()}")
    if r.returncode != 0:
        print(f"FAIL {name}: ddpm and diffusers differ: {r.stderr.strip()}")
        failures += 1


print(f"diffusers {diffusers.__version__}, torch {torch.__version__}")
# 1. folders ddpm wrote, read by diffusers
check("shipped", model_dir)
if train_data:
    run = os.path.join(work, "run")
    subprocess.run(["rm", "-rf", run], check=True)
    subprocess.run([ddpm, "train", "--data", "folder:" + train_data, "--model", "tiny", "--batch", "4", "--steps", "3",
                    "--warmup", "1", "--sample-every", "0", "--checkpoint-every", "0", "--threads", "2", "--out", run],
                   check=True, stdout=subprocess.DEVNULL)
    check("ddpm-train", run)

# 2. folders this diffusers saves, read by ddpm. The networks are untrained (diffusers' own initialisation), and
# DDIM's x0 estimate multiplies their float32 rounding by up to 1/sqrt(alpha_bar) (about 160 at t = 999), so these
# loops agree to 5e-4 where the trained ones above agree to 1e-4.
torch.manual_seed(0)
unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
                   down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                   norm_num_groups=8, attention_head_dim=8)
pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))
plain = os.path.join(work, "saved")
pipe.save_pretrained(plain)
check("diffusers-saved", plain, atol=5e-4)
half = os.path.join(work, "saved-fp16")
pipe.to(torch.float16).save_pretrained(half, variant="fp16")
if not os.path.exists(os.path.join(half, "unet", "diffusion_pytorch_model.fp16.safetensors")):
    print("FAIL diffusers-fp16: save_pretrained(variant='fp16') wrote no diffusion_pytorch_model.fp16.safetensors")
    failures += 1
check("diffusers-fp16", half, variant="fp16", atol=5e-4)
# mid_block_type = None: no middle block at all
torch.manual_seed(1)
unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(32, 64),
                   down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                   norm_num_groups=8, attention_head_dim=8, mid_block_type=None)
nomid = os.path.join(work, "saved-no-mid-block")
DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(nomid)
check("diffusers-no-mid-block", nomid, atol=5e-4)
sys.exit(1 if failures else 0)
