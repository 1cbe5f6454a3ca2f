"""Reference samples of the unet_tiny fixture network for tests/test_sample_ref.sh.

Runs the plain-PyTorch twin of diffusers' DDIMScheduler and DPMSolverMultistepScheduler (peer/ddpm_ref.py,
float32 like diffusers) on tests/data/unet_tiny from a stored x_T and writes:
  x_T.safetensors   x_T [4, 3, 8, 8] F32 (torch.randn, generator seed 1234)
  refs.safetensors  [4, 3, 8, 8] each, F64:
    ddim50, ddim50_f64                  sample_ddim: 50 steps, eta 0, clip on, leading spacing
    ddim10, ddim10_f64                  the same with 10 steps
    ddim50_noclip, ddim50_noclip_f64    the same without clipping
    dpmpp20, dpmpp20_f64                sample_dpmpp: 20 steps, order 2, linspace spacing
  Names without _f64: network and sampler in float32 as diffusers runs them; _f64: both in float64, which
  shows how much float32 rounding alone moves each result (the conditioning of the run).

usage (from the repository root, with the peer folder of the project's shared material):
  /usr/bin/python3 tests/data/sample_ref/make_sample_ref.py PEER_DIR
"""
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../../shared/peer"))
import ddpm_ref as dr          # noqa: E402
import torch_unet as tu        # noqa: E402

torch.set_num_threads(1)
model, cfg = tu.load_unet(os.path.join(here, "..", "unet_tiny"))
model.eval()
g = torch.Generator().manual_seed(1234)
shape = (4, cfg["in_channels"], cfg["sample_size"], cfg["sample_size"])
x_T = torch.randn(shape, generator=g, dtype=torch.float32)
sched = dr.NoiseSchedule("linear", T=1000)

m64 = tu.load_unet(os.path.join(here, "..", "unet_tiny"))[0].double().eval()
s64 = dr.NoiseSchedule("linear", T=1000, dtype=torch.float64)
refs = {}
for name, net, sc, xx in (("", model, sched, x_T), ("_f64", m64, s64, x_T.double())):
    refs["ddim50" + name] = dr.sample_ddim(net, shape, sc, steps=50, eta=0.0, x_T=xx.clone(), clip_sample=True)
    refs["ddim10" + name] = dr.sample_ddim(net, shape, sc, steps=10, eta=0.0, x_T=xx.clone(), clip_sample=True)
    refs["ddim50_noclip" + name] = dr.sample_ddim(net, shape, sc, steps=50, eta=0.0, x_T=xx.clone(),
                                                  clip_sample=False)
    refs["dpmpp20" + name] = dr.sample_dpmpp(net, shape, sc, steps=20, order=2, x_T=xx.clone())
tu.save_safetensors(os.path.join(here, "x_T.safetensors"), {"x_T": x_T})
tu.save_safetensors(os.path.join(here, "refs.safetensors"), {k: v.double() for k, v in sorted(refs.items())})
for k in ("ddim50", "ddim10", "ddim50_noclip", "dpmpp20"):
    print("%-14s max|f32 - f64| %.3g, max|x| %.4g" % (k, (refs[k].double() - refs[k + "_f64"]).abs().max(),
                                                      refs[k].abs().max()))
