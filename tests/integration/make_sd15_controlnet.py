"""Make a full-size SD1.5-shaped checkpoint and a matching ControlNet, random weights, fully offline.

sd-webui-controlnet builds every SD1 ControlNet from a hard-coded config (model_channels 320, context 768),
so the tiny checkpoint of make_tiny_sd.py cannot carry one. Run it with the WebUI's own Python:

    $A1111_PYTHON tests/integration/make_sd15_controlnet.py --webui-dir $A1111_DIR --out-dir DIR

It writes (about 2.8 GB, fp16; an existing complete set in DIR is kept, so DIR can be a cache):
  DIR/clip-l/            CLIPTokenizer files (as make_tiny_sd.py) and a CLIP ViT-L/14 text config (768 wide,
                         12 layers): ldm's FrozenCLIPEmbedder reads it instead of the HF hub.
  DIR/sd15.yaml          the WebUI's configs/v1-inference.yaml with the local clip-l/ as the text encoder.
  DIR/sd15.safetensors   UNet, VAE and text encoder, random (seed 0); ldm's zero-initialised layers redrawn
                         from N(0, 0.02) as in make_tiny_sd.py.
  DIR/controlnet/control_sd15_random.safetensors
                         a ControlNet in the original layout (``control_model.*``): time embedding, input
                         and middle blocks copied from the UNet (as ControlNet training starts), the hint
                         encoder (3 -> 320 channels at 1/8 size) and the 1x1 "zero" convolutions drawn at
                         a larger scale (``HINT_STD``, ``ZERO_CONV_STD``) so the control image changes the
                         result by many grey levels (with N(0, 0.02) its effect stays below one level).
"""
from __future__ import annotations

import argparse
import os
import sys

import yaml

HINT_STD = 0.2  # std of the hint encoder's conv weights
ZERO_CONV_STD = 0.05  # std of the 1x1 convolutions that add ControlNet features to the UNet
CONTROLNET = os.path.join("controlnet", "control_sd15_random.safetensors")
NAMES = ("sd15.yaml", "sd15.safetensors", CONTROLNET, os.path.join("clip-l", "config.json"))


def write_clip_l(folder: str) -> None:
    from transformers import CLIPTextConfig

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_tiny_sd import write_clip_folder

    write_clip_folder(folder)  # tokenizer files + a small config, replaced here by CLIP ViT-L/14's text config
    CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768,
                   num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                   hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407,
                   pad_token_id=1).save_pretrained(folder)


def controlnet_state_dict(unet: dict, seed: int) -> dict:
    """ControlNet v1 tensors for an SD1 UNet state dict (keys without ``model.diffusion_model.``)."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    sd = {f"control_model.{k}": v.clone() for k, v in unet.items()
          if k.startswith(("time_embed.", "input_blocks.", "middle_block."))}
    hint = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 96), (96, 96), (96, 256), (256, 320)]
    for i, (cin, cout) in enumerate(hint):
        sd[f"control_model.input_hint_block.{2 * i}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * HINT_STD
        sd[f"control_model.input_hint_block.{2 * i}.bias"] = torch.zeros(cout)
    # one 1x1 conv per input block, on that block's output channels; the middle block's after them
    n_blocks = 1 + max(int(k.split(".")[1]) for k in unet if k.startswith("input_blocks."))
    for i in range(n_blocks):
        ch = _out_channels(unet, f"input_blocks.{i}.")
        sd[f"control_model.zero_convs.{i}.0.weight"] = torch.randn(ch, ch, 1, 1, generator=gen) * ZERO_CONV_STD
        sd[f"control_model.zero_convs.{i}.0.bias"] = torch.zeros(ch)
    ch = _out_channels(unet, "middle_block.")
    sd["control_model.middle_block_out.0.weight"] = torch.randn(ch, ch, 1, 1, generator=gen) * ZERO_CONV_STD
    sd["control_model.middle_block_out.0.bias"] = torch.zeros(ch)
    return sd


def _out_channels(unet: dict, prefix: str) -> int:
    """Output channels of a block: the length of its last bias (conv, res block out or transformer proj_out)."""
    last = [k for k in unet if k.startswith(prefix) and k.endswith(".bias")][-1]
    return int(unet[last].shape[0])


def write_yaml(out_dir: str, config: dict) -> None:
    with open(os.path.join(out_dir, "sd15.yaml"), "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--webui-dir", default=os.environ.get("A1111_DIR"), required="A1111_DIR" not in os.environ)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out_dir = os.path.abspath(args.out_dir)
    webui = os.path.abspath(args.webui_dir)
    clip_dir = os.path.join(out_dir, "clip-l")
    with open(os.path.join(webui, "configs", "v1-inference.yaml")) as f:
        config = yaml.safe_load(f)
    config["model"]["params"]["cond_stage_config"]["params"] = {"version": clip_dir}
    if all(os.path.isfile(os.path.join(out_dir, n)) for n in NAMES):
        write_yaml(out_dir, config)  # it names clip-l/ by its absolute path: right even if the folder moved
        print(f"kept {out_dir}")
        return 0

    sys.path.insert(0, os.path.join(webui, "repositories", "stable-diffusion-stability-ai"))
    os.makedirs(os.path.join(out_dir, "controlnet"), exist_ok=True)
    write_clip_l(clip_dir)

    import torch
    from make_tiny_sd import build_state_dict
    from safetensors.torch import save_file

    state_dict = build_state_dict(config, args.seed)
    unet = {k[len("model.diffusion_model."):]: v for k, v in state_dict.items()
            if k.startswith("model.diffusion_model.")}
    control = controlnet_state_dict(unet, args.seed)
    # written last and under a temporary name, so an interrupted run never leaves a set that looks complete
    for name, tensors in ((CONTROLNET, control), ("sd15.safetensors", state_dict)):
        tmp = os.path.join(out_dir, name + ".part")
        save_file({k: v.half().contiguous() if v.is_floating_point() else v for k, v in tensors.items()}, tmp)
        os.replace(tmp, os.path.join(out_dir, name))
    write_yaml(out_dir, config)
    print(f"wrote {out_dir}: sd15 ({sum(v.numel() for v in state_dict.values()) / 1e6:.0f} M values), "
          f"ControlNet ({sum(v.numel() for v in control.values()) / 1e6:.0f} M values), torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
