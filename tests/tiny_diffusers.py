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
                                                             num_attention_heads=4, image_size=32,
                                                             intermediate_size=37, patch_size=4))
    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                       interpolation_type="linear", prediction_type="v_prediction", sigma_max=700.0,
                                       sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
                                       timestep_type="continuous", use_karras_sigmas=True)
    extractor = CLIPImageProcessor(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32},
                                   do_center_crop=True)
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=extractor)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
