# make_state_dict_keys.py — writes tests/data/state_dict/<net>/{config.json, keys.txt}: diffusers' UNet2DModel
# state_dict keys and shapes, in order, for a few configurations (and the BasicUNet twin), which
# test_model_config checks the parameter table against. Needs diffusers (and ../shared/peer for BasicUNet):
#   VENV/bin/python tests/make_state_dict_keys.py
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'peer'))
import torch_unet as tu
from diffusers import UNet2DModel
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'state_dict')
os.makedirs(root, exist_ok=True)
def save(name, cfg, model):
    d = os.path.join(root, name); os.makedirs(d, exist_ok=True)
    if cfg is not None:
        UNet2DModel(**cfg).save_config(d)
    with open(os.path.join(d, 'keys.txt'), 'w') as f:
        for k, v in model.state_dict().items():
            f.write(k + ' ' + 'x'.join(str(s) for s in v.shape) + '\n')
cfgs = {}
for s in ['mnist', 'cifar10', 'tiny']:
    cfgs[s] = dict(tu.PRESETS[s])
c = dict(tu.PRESETS['tiny']); c['num_class_embeds'] = 3; c['layers_per_block'] = 2; c['mid_block_type'] = None
cfgs['tiny_class_nomid'] = c
c = dict(tu.PRESETS['tiny']); c['add_attention'] = False; c['block_out_channels'] = [8, 16, 16]
c['down_block_types'] = ["AttnDownBlock2D", "DownBlock2D", "AttnDownBlock2D"]; c['up_block_types'] = ["AttnUpBlock2D", "UpBlock2D", "AttnUpBlock2D"]
cfgs['tiny3_noattn'] = c
for k, c in cfgs.items():
    save(k, c, UNet2DModel(**c))
save('basic', None, tu.build_model(*tu.resolve_config('basic')))
