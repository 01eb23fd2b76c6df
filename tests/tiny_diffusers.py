"""Tiny random-weight diffusers models, built offline, saved as local diffusers folders (tests and benchmarks).

Every model keeps the real architecture's shape rules at a tiny width: an 8x VAE (four levels of 32 channels),
a two-level UNet of 32/64 channels, CLIP text encoders of width 32 with 2 layers, and a CLIP tokenizer built
from a 59-token vocabulary (the two specials, "!", and a..z with and without the end-of-word mark, no merges:
every word is spelled letter by letter). Seeds are fixed, so two builds are equal.

- :func:`make_sd`: Stable Diffusion 1.x layout (``StableDiffusionPipeline``), optionally a 9-channel
  inpainting UNet;
- :func:`make_sdxl`: SDXL layout (two text encoders, ``text_time`` added conditioning);
- :func:`make_svd`: Stable Video Diffusion layout (spatio-temporal UNet, CLIP vision encoder, temporal VAE).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

VAE_CHANNELS = (32, 32, 32, 32)  # four levels: 8x down-sampling, as the real VAEs


def write_tokenizer(folder: Path) -> Path:
    """A CLIPTokenizer's vocab.json and merges.txt (no merges) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_tokenizer(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77,
                         pad_token="!")


def _text_config(**over):
    from transformers import CLIPTextConfig

    cfg = dict(vocab_size=59, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
               max_position_embeddings=77, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=2,
               hidden_act="gelu")
    cfg.update(over)
    return CLIPTextConfig(**cfg)


def _vae(seed: int):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=VAE_CHANNELS, in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         latent_channels=4, layers_per_block=1, norm_num_groups=32, sample_size=64)


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                  timestep_spacing="leading")


def make_sd(folder: Path, *, inpainting: bool = False, seed: int = 0) -> Path:
    """A tiny SD 1.x-layout model saved as a diffusers folder (about 5 MB)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8,
                                in_channels=9 if inpainting else 4, out_channels=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8, norm_num_groups=32)
    torch.manual_seed(seed + 1)
    text_encoder = CLIPTextModel(_text_config())
    pipe = StableDiffusionPipeline(unet=unet, vae=_vae(seed + 2), text_encoder=text_encoder,
                                   tokenizer=_tokenizer(folder / "_tok"), scheduler=_scheduler(),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def make_sdxl(folder: Path, *, seed: int = 0) -> Path:
    """A tiny SDXL-layout model saved as a diffusers folder."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64,
                                norm_num_groups=32)
    torch.manual_seed(seed + 1)
    te1 = CLIPTextModel(_text_config())
    torch.manual_seed(seed + 2)
    te2 = CLIPTextModelWithProjection(_text_config())
    tok = _tokenizer(folder / "_tok")
    pipe = StableDiffusionXLPipeline(vae=_vae(seed + 3), text_encoder=te1, text_encoder_2=te2, tokenizer=tok,
                                     tokenizer_2=tok, unet=unet, scheduler=_scheduler())
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def make_svd(folder: Path, *, seed: int = 0, sample_size: int = 8) -> Path:
    """A tiny Stable Video Diffusion-layout model saved as a diffusers folder (its size: ``sample_size * 8`` px
    square)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(block_out_channels=(32, 64), layers_per_block=1,
                                            sample_size=sample_size, in_channels=8, out_channels=4,
                                            down_block_types=("CrossAttnDownBlockSpatioTemporal",
                                                              "DownBlockSpatioTemporal"),
                                            up_block_types=("UpBlockSpatioTemporal",
                                                            "CrossAttnUpBlockSpatioTemporal"),
                                            cross_attention_dim=32, num_attention_heads=(4, 8),
                                            projection_class_embeddings_input_dim=96, addition_time_embed_dim=32)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=VAE_CHANNELS, in_channels=3, out_channels=3,
                                       down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4,
                                       layers_per_block=1, sample_size=64)
    torch.manual_seed(seed + 2)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2,
                                                             num_attention_heads=4, image_size=224,
                                                             intermediate_size=37, patch_size=32))
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       interpolation_type="linear", prediction_type="v_prediction", sigma_max=700.0,
                                       sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
                                       timestep_type="continuous", use_karras_sigmas=True)
    extractor = CLIPImageProcessor(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224},
                                   do_center_crop=True)
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=extractor)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# ------------------------------------------------------------------ single file (original Stability layout)

def _unet_to_ldm(sd: dict, levels: int, layers: int) -> dict:
    """diffusers UNet2DConditionModel keys -> the original ``model.diffusion_model.*`` layout (openaimodel)."""
    out = {}

    def put(new: str, old: str) -> None:
        for k, v in sd.items():
            if k == old or k.startswith(old + "."):
                out["model.diffusion_model." + new + k[len(old):]] = v

    res = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
           "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}

    def resnet(new: str, old: str) -> None:
        for a, b in res.items():
            put(f"{new}.{b}", f"{old}.{a}")

    put("time_embed.0", "time_embedding.linear_1")
    put("time_embed.2", "time_embedding.linear_2")
    put("input_blocks.0.0", "conv_in")
    put("out.0", "conv_norm_out")
    put("out.2", "conv_out")
    for i in range(levels):
        for j in range(layers):
            n = i * (layers + 1) + j + 1
            resnet(f"input_blocks.{n}.0", f"down_blocks.{i}.resnets.{j}")
            put(f"input_blocks.{n}.1", f"down_blocks.{i}.attentions.{j}")
        if i < levels - 1:
            put(f"input_blocks.{(i + 1) * (layers + 1)}.0.op", f"down_blocks.{i}.downsamplers.0.conv")
    resnet("middle_block.0", "mid_block.resnets.0")
    put("middle_block.1", "mid_block.attentions.0")
    resnet("middle_block.2", "mid_block.resnets.1")
    for i in range(levels):
        has_attn = any(k.startswith(f"up_blocks.{i}.attentions.") for k in sd)
        for j in range(layers + 1):
            n = i * (layers + 1) + j
            resnet(f"output_blocks.{n}.0", f"up_blocks.{i}.resnets.{j}")
            put(f"output_blocks.{n}.1", f"up_blocks.{i}.attentions.{j}")
        if i < levels - 1:
            put(f"output_blocks.{i * (layers + 1) + layers}.{2 if has_attn else 1}.conv",
                f"up_blocks.{i}.upsamplers.0.conv")
    return out


def _vae_to_ldm(sd: dict, levels: int, layers: int) -> dict:
    """diffusers AutoencoderKL keys -> the original ``first_stage_model.*`` layout."""
    out = {}
    res = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "conv_shortcut": "nin_shortcut"}
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}

    def put(new: str, old: str, *, conv1x1: bool = False) -> None:
        for k, v in sd.items():
            if k == old or k.startswith(old + "."):
                if conv1x1 and v.ndim == 2:
                    v = v[:, :, None, None]
                out["first_stage_model." + new + k[len(old):]] = v

    for part in ("encoder", "decoder"):
        for name in ("conv_in", "conv_out"):
            put(f"{part}.{name}", f"{part}.{name}")
        put(f"{part}.norm_out", f"{part}.conv_norm_out")
        for m in (0, 1):
            for a, b in res.items():
                put(f"{part}.mid.block_{m + 1}.{b}", f"{part}.mid_block.resnets.{m}.{a}")
        for a, b in attn.items():
            put(f"{part}.mid.attn_1.{b}", f"{part}.mid_block.attentions.0.{a}", conv1x1=True)
    for i in range(levels):
        for j in range(layers):
            for a, b in res.items():
                put(f"encoder.down.{i}.block.{j}.{b}", f"encoder.down_blocks.{i}.resnets.{j}.{a}")
        put(f"encoder.down.{i}.downsample.conv", f"encoder.down_blocks.{i}.downsamplers.0.conv")
        for j in range(layers + 1):
            for a, b in res.items():
                put(f"decoder.up.{levels - 1 - i}.block.{j}.{b}", f"decoder.up_blocks.{i}.resnets.{j}.{a}")
        put(f"decoder.up.{levels - 1 - i}.upsample.conv", f"decoder.up_blocks.{i}.upsamplers.0.conv")
    put("quant_conv", "quant_conv")
    put("post_quant_conv", "post_quant_conv")
    return out


def save_single_file(folder: Path, path: Path) -> Path:
    """The tiny SD model of ``folder`` (from :func:`make_sd`) as one ``.safetensors`` file in the original
    Stability layout (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``),
    as single-file checkpoints are shared."""
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    unet = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    text = load_file(str(folder / "text_encoder" / "model.safetensors"))
    state = _unet_to_ldm(unet, len(unet_cfg["block_out_channels"]), unet_cfg["layers_per_block"])
    state.update(_vae_to_ldm(vae, len(vae_cfg["block_out_channels"]), vae_cfg["layers_per_block"]))
    # transformers 5 saves CLIPTextModel without its "text_model." level; the original layout has it
    state.update({"cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k): v
                  for k, v in text.items()})
    assert len(state) == len(unet) + len(vae) + len(text), "every tensor must have its place in the file"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return Path(path)
