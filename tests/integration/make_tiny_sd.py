"""Make a tiny random-weight SD1.x checkpoint for AUTOMATIC1111 stable-diffusion-webui, fully offline.

The integration tests run it with the WebUI's own Python (it imports ``ldm`` from the WebUI's
``repositories/`` and needs transformers, open_clip, omegaconf and safetensors, all WebUI requirements):

    $A1111_PYTHON tests/integration/make_tiny_sd.py --webui-dir $A1111_DIR --out-dir DIR [--name tiny]

It writes:
  DIR/tiny-clip/                       CLIPTokenizer files (vocab.json + merges.txt derived from the BPE
                                       table that open_clip ships) and a small CLIPTextConfig.
  DIR/<name>.yaml         an SD1 (v1-inference) config, shrunk: UNet with
                                       model_channels 32, channel_mult [1, 2], one res block per level,
                                       attention at both levels, context_dim 32; a 32-channel VAE that keeps
                                       the 8x downsampling (4 levels) the WebUI assumes; FrozenCLIPEmbedder
                                       whose ``version`` is the local tiny-clip folder (no HF hub access).
  DIR/<name>.safetensors  the full state dict (UNet, VAE, CLIP text model and
                                       the noise-schedule buffers), random weights, seed 0, ~10 MB.

Why the CLIP folder: ldm's FrozenCLIPEmbedder calls CLIPTokenizer/CLIPTextModel.from_pretrained(version);
the default "openai/clip-vit-large-patch14" needs the HF hub. The WebUI itself builds the text model
from ``config`` only (state_dict={}) and fills its weights from the checkpoint, so the folder needs just
config.json and the tokenizer files. GroupNorm(32) in ldm forces every UNet/VAE width to be a multiple
of 32. Layers ldm initialises to zero (UNet output conv, proj_out of transformers) are re-drawn from
N(0, 0.02) so the UNet output depends on its input and the prompt.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

import yaml

CLIP_HIDDEN = 32

TINY_CONFIG = {
    "model": {
        "base_learning_rate": 1.0e-04,
        "target": "ldm.models.diffusion.ddpm.LatentDiffusion",
        "params": {
            "linear_start": 0.00085,
            "linear_end": 0.0120,
            "num_timesteps_cond": 1,
            "log_every_t": 200,
            "timesteps": 1000,
            "first_stage_key": "jpg",
            "cond_stage_key": "txt",
            "image_size": 64,
            "channels": 4,
            "cond_stage_trainable": False,
            "conditioning_key": "crossattn",
            "monitor": "val/loss_simple_ema",
            "scale_factor": 0.18215,
            "use_ema": False,
            "unet_config": {
                "target": "ldm.modules.diffusionmodules.openaimodel.UNetModel",
                "params": {
                    "image_size": 32,
                    "in_channels": 4,
                    "out_channels": 4,
                    "model_channels": 32,
                    "attention_resolutions": [1, 2],
                    "num_res_blocks": 1,
                    "channel_mult": [1, 2],
                    "num_heads": 2,
                    "use_spatial_transformer": True,
                    "transformer_depth": 1,
                    "context_dim": CLIP_HIDDEN,
                    "use_checkpoint": False,
                    "legacy": False,
                },
            },
            "first_stage_config": {
                "target": "ldm.models.autoencoder.AutoencoderKL",
                "params": {
                    "embed_dim": 4,
                    "monitor": "val/rec_loss",
                    "ddconfig": {
                        "double_z": True,
                        "z_channels": 4,
                        "resolution": 256,
                        "in_channels": 3,
                        "out_ch": 3,
                        "ch": 32,
                        "ch_mult": [1, 1, 1, 1],
                        "num_res_blocks": 1,
                        "attn_resolutions": [],
                        "dropout": 0.0,
                    },
                    "lossconfig": {"target": "torch.nn.Identity"},
                },
            },
            "cond_stage_config": {
                "target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder",
                "params": {"version": None},  # filled with the tiny-clip folder
            },
        },
    }
}


def write_clip_folder(folder: str) -> None:
    """Write CLIPTokenizer files + a small CLIPTextConfig into ``folder``.

    open_clip's bpe_simple_vocab_16e6.txt.gz holds the merges CLIP was trained with; the vocabulary is
    the 256 byte symbols, the same with '</w>', one token per merge (48894), then <|startoftext|> and
    <|endoftext|>: 49408 ids, the ordering of openai/clip-vit-large-patch14's vocab.json.
    """
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPTextConfig

    os.makedirs(folder, exist_ok=True)
    bpe_path = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    byte_symbols = list(bytes_to_unicode().values())
    vocab = byte_symbols + [s + "</w>" for s in byte_symbols]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)

    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=1)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({**special, "model_max_length": 77, "do_lower_case": True,
                   "tokenizer_class": "CLIPTokenizer", "errors": "replace"}, f, indent=1)

    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=CLIP_HIDDEN, intermediate_size=2 * CLIP_HIDDEN,
                         projection_dim=CLIP_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
    cfg.save_pretrained(folder)


def build_state_dict(config: dict, seed: int) -> dict:
    import ldm.modules.encoders.modules as enc
    import torch
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf
    from transformers import CLIPTextConfig, CLIPTextModel

    # Build the text model from config only: never look for weights on disk or on the hub.
    enc.CLIPTextModel.from_pretrained = staticmethod(lambda path, *a, **k: CLIPTextModel(CLIPTextConfig.from_pretrained(path)))

    torch.manual_seed(seed)
    model = instantiate_from_config(OmegaConf.create(config).model)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() > 1 and torch.count_nonzero(p) == 0:  # ldm's zero_module layers
                p.normal_(0.0, 0.02)
        # With its default bias of 0 the text model's last LayerNorm gives outputs whose mean can round to exactly
        # 0 for the empty prompt, and the WebUI's emphasis step divides by that mean: NaN. A trained CLIP has a bias.
        model.cond_stage_model.transformer.text_model.final_layer_norm.bias.normal_(0.0, 0.02)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--webui-dir", default=os.environ.get("A1111_DIR"), required="A1111_DIR" not in os.environ)
    ap.add_argument("--out-dir", required=True, help="folder for the checkpoint, its .yaml and tiny-clip/")
    ap.add_argument("--name", default="tiny", help="checkpoint base name (default: tiny)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    webui = os.path.abspath(args.webui_dir)
    sys.path.insert(0, os.path.join(webui, "repositories", "stable-diffusion-stability-ai"))
    out_dir = os.path.abspath(args.out_dir)
    clip_dir = os.path.join(out_dir, "tiny-clip")
    os.makedirs(out_dir, exist_ok=True)

    write_clip_folder(clip_dir)
    config = json.loads(json.dumps(TINY_CONFIG))
    config["model"]["params"]["cond_stage_config"]["params"]["version"] = clip_dir
    state_dict = build_state_dict(config, args.seed)

    from safetensors.torch import save_file
    yaml_path = os.path.join(out_dir, args.name + ".yaml")
    ckpt_path = os.path.join(out_dir, args.name + ".safetensors")
    with open(yaml_path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    save_file(state_dict, ckpt_path)
    n = sum(v.numel() for v in state_dict.values())
    print(f"wrote {ckpt_path} ({n / 1e6:.2f} M values, {os.path.getsize(ckpt_path) / 1e6:.1f} MB)")
    print(f"wrote {yaml_path}")
    print(f"wrote {clip_dir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
