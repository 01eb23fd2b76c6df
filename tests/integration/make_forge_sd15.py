"""Make a full-size SD1.5-shaped checkpoint with random fp16 weights for Forge, fully offline.

Run it with Forge's own Python from the Forge checkout (it imports Forge's ``backend`` and its
``repositories/huggingface_guess``):

    $FORGE_PYTHON tests/integration/make_forge_sd15.py --forge-dir $FORGE_DIR --out FILE.safetensors

Forge cannot load a shrunk model: it guesses the model family from the UNet's layer shapes
(huggingface_guess) and then builds every part from the configs it ships for that family
(backend/huggingface/runwayml/stable-diffusion-v1-5), so every tensor must have SD1.5's shape. This script
builds the parts the way Forge's loader does, from those same configs:

- UNet: the diffusers config (unet/config.json) is turned into the ldm UNet config by huggingface_guess
  (``unet_config_from_diffusers_unet`` on the diffusers model's shapes, built on the meta device, so no
  memory), then Forge's ``IntegratedUNet2DConditionModel`` is built from that config with PyTorch's default
  random init. Layers that start all zero are re-drawn from N(0, 0.02) so the UNet's output depends on its
  input and the prompt; all-zero biases are re-drawn too (see ``_redraw_zero_parameters``).
- VAE: ``IntegratedAutoencoderKL`` from vae/config.json.
- Text encoder: transformers' ``CLIPTextModel`` from text_encoder/config.json inside Forge's ``IntegratedCLIP``.

The keys get the single-file (ldm) prefixes through huggingface_guess's own ``process_*_for_saving``; every
tensor is stored as fp16 (about 2 GB). Seeded, so the same Forge gives the same file.
"""
from __future__ import annotations

import argparse
import os
import sys


def _forge_imports(forge_dir: str) -> None:
    """Make Forge's ``backend`` importable as Forge's own start-up does (modules_forge/initialization.py)."""
    sys.path[:0] = [forge_dir, os.path.join(forge_dir, "repositories", "huggingface_guess"),
                    os.path.join(forge_dir, "packages_3rdparty")]
    sys.argv[1:] = ["--always-cpu"]  # backend.args parses sys.argv on import; CPU only, as the tests run it
    os.chdir(forge_dir)  # some Forge modules read paths relative to the checkout


def _redraw_zero_parameters(model) -> None:
    """Re-draw every all-zero weight or bias from N(0, 0.02).

    Zero-initialised output layers would make the UNet's output independent of its input. Zero biases of
    the text encoder's final LayerNorm make every token vector average exactly 0, and the WebUI's prompt
    emphasis then rescales by mean/mean = 0/0 in fp16: NaN conditioning and black images.
    """
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0.0, 0.02)


def build_state_dict(forge_dir: str, seed: int) -> dict:
    import torch
    from backend.nn.clip import IntegratedCLIP
    from backend.nn.unet import IntegratedUNet2DConditionModel
    from backend.nn.vae import IntegratedAutoencoderKL
    from diffusers import UNet2DConditionModel
    from huggingface_guess import detection
    from transformers import CLIPTextConfig, CLIPTextModel

    repo = os.path.join(forge_dir, "backend", "huggingface", "runwayml", "stable-diffusion-v1-5")
    with torch.device("meta"):
        shapes = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(repo, "unet")))
    unet_config = detection.unet_config_from_diffusers_unet(shapes.state_dict())
    unet_config.pop("dtype", None)  # the diffusers-side table carries it; the ldm detection Forge loads with does not
    guess = detection.model_config_from_unet_config(unet_config)
    if guess is None or guess.huggingface_repo != "runwayml/stable-diffusion-v1-5":
        raise SystemExit(f"huggingface_guess did not take Forge's SD1.5 UNet config for SD1.5: {guess!r}")

    torch.manual_seed(seed)
    sd: dict = {}
    with torch.no_grad():
        unet = IntegratedUNet2DConditionModel.from_config(guess.unet_config)
        _redraw_zero_parameters(unet)
        sd.update(guess.process_unet_state_dict_for_saving({k: v.half() for k, v in unet.state_dict().items()}))
        del unet
        vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(repo, "vae")))
        _redraw_zero_parameters(vae)
        sd.update(guess.process_vae_state_dict_for_saving({k: v.half() for k, v in vae.state_dict().items()}))
        del vae
        clip = IntegratedCLIP(CLIPTextModel, CLIPTextConfig.from_pretrained(os.path.join(repo, "text_encoder")),
                              add_text_projection=True)
        _redraw_zero_parameters(clip)
        clip_sd = {"clip_l." + k: v.half() for k, v in clip.state_dict().items()}
        sd.update(guess.process_clip_state_dict_for_saving(clip_sd))
    return {k: v.contiguous() for k, v in sd.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--forge-dir", default=os.environ.get("FORGE_DIR"), required="FORGE_DIR" not in os.environ)
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    out = os.path.abspath(args.out)
    _forge_imports(os.path.abspath(args.forge_dir))
    state_dict = build_state_dict(os.getcwd(), args.seed)

    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(out), exist_ok=True)
    partial = out + ".partial"
    save_file(state_dict, partial)
    os.replace(partial, out)  # never leave a half-written checkpoint under the final name
    n = sum(v.numel() for v in state_dict.values())
    print(f"wrote {out} ({n / 1e6:.0f} M values, {os.path.getsize(out) / 1e9:.2f} GB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
