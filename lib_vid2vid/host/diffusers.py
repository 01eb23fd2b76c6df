"""A Renderer on the ``diffusers`` library: no WebUI, local model files only.

:class:`DiffusersRenderer` renders frames with Stable Diffusion 1.x / 2.x or SDXL img2img, and with the
matching inpainting pipeline when a frame has a mask. The model is a local diffusers folder (``model_index.json``
plus its component folders) or a single-file ``.safetensors`` checkpoint (its configuration from
``model_config``, a diffusers folder of the same model type whose weights need not be there, or from the local
Hugging Face cache). Nothing is ever downloaded: ``HF_HUB_OFFLINE`` is set before diffusers is imported and every
load passes ``local_files_only``; what is missing is a one-line :class:`~lib_vid2vid.errors.RendererError`.

Per frame (units: pixels RGB uint8 HWC in and out; the mask float32 HW 0..1, 1 = repaint):

- image ``k`` of batch ``j`` (``n_iter`` batches of ``batch_size``) gets its own CPU ``torch.Generator`` seeded
  with ``seed + j * batch_size + k``, as the WebUI numbers a batch's seeds; the same seed gives the same pixels,
  on the CPU or a GPU's noise alike (the noise is drawn on the CPU).
- without a sigma override the scheduler's own schedule of ``steps`` runs its last ``t_enc + 1`` steps, with
  ``t_enc = int(min(denoise, 0.999) * steps)``, as the WebUI's img2img does (A1111 1.10
  ``setup_img2img_steps`` and ``sample_img2img``: ``sigmas[steps - t_enc - 1:]``; denoise 0.5 at 20 steps runs
  11 steps, denoise 0 one step at the last non-zero sigma). diffusers runs ``int(steps * strength)`` steps from
  ``t_start = steps - int(steps * strength)``, so the renderer passes ``strength = min(1, (t_enc + 1.5) / steps)``
  (diffusers' own rule alone would run one step fewer, starting one step later);
- with an override (``request.sigmas``) the renderer runs exactly the WebUI's img2img tail
  (:func:`lib_vid2vid.sigmas.img2img_tail`, ``tail`` = n + 1 sigmas): the latent starts at
  ``init + noise * tail[0]`` and the sampler steps through ``tail``. diffusers starts img2img at
  ``t_start = steps - int(steps * strength)``, so the renderer hands the scheduler ``[tail[0]] + tail`` (n + 1
  steps) with ``strength = (n + 1/2) / (n + 1)``: ``t_start = 1`` and the sampler runs ``tail`` itself. Only
  schedulers whose ``set_timesteps`` takes ``sigmas`` can do this (:data:`SIGMA_SAMPLERS`: in diffusers 0.42
  ``EulerDiscreteScheduler`` -- Euler -- and ``UniPCMultistepScheduler`` -- UniPC); with another sampler the
  renderer says so once and the scheduler's own schedule runs.
- with a mask the inpainting pipeline runs (a 9-channel inpainting UNet, or a normal one with diffusers' latent
  blending), then ``out = m * generated + (1 - m) * init`` in float and rounded once, so unmasked pixels stay the
  init's exactly, as the WebUI's overlay does.

fp16 on CUDA, float32 on the CPU. The model is loaded once, when the renderer is made, and kept for the job.
LoRA files are loaded by path with a weight each (needs ``peft``).

``request.noise`` (``noise_mode = warped``: latent noise carried along the source's flow, :mod:`lib_vid2vid.noise`)
replaces the noise the pipeline adds to the init latent. Every diffusers img2img / inpaint pipeline draws that
noise once and hands it to ``scheduler.add_noise(latents, noise, t)`` (the inpaint pipeline again at each step for
the kept area, with the same tensor); for the call the scheduler's ``add_noise`` takes, for image ``k`` of batch
``j``, ``noise.mix(request.noise[j * batch_size + k], own_k, noise_strength)`` in place of the pipeline's own
``own_k`` (drawn from the image's seeded generator, so strength 0 is the seed's noise, bit for bit).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RendererError
from ..imaging import to_uint8
from ..renderer import RenderRequest

EXTRA_HINT = "pip install 'sd-webui-vid2vid[diffusers]' (diffusers, transformers, accelerate, safetensors, peft)"

PIPELINE_KINDS = {
    "StableDiffusionPipeline": "sd", "StableDiffusionImg2ImgPipeline": "sd", "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl", "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl", "StableVideoDiffusionPipeline": "svd",
}
"""``_class_name`` of a diffusers folder's model_index.json -> model kind."""
KIND_NAMES = {"sd": "Stable Diffusion 1.x/2.x", "sdxl": "SDXL", "svd": "Stable Video Diffusion"}

SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "DPM++ SDE": ("DPMSolverSinglestepScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}
"""WebUI sampler name -> diffusers scheduler class and its options. The WebUI's schedule type "Karras" adds
``use_karras_sigmas``, "Exponential" ``use_exponential_sigmas`` where the scheduler has them."""
SIGMA_SAMPLERS = ("Euler", "UniPC")
"""Samplers whose diffusers scheduler takes custom sigmas (``set_timesteps(sigmas=...)``, diffusers 0.42)."""

WEIGHT_SUFFIXES = (".safetensors", ".bin")
FINGERPRINT_BYTES = 1 << 20


# ------------------------------------------------------------------ import, offline

def import_diffusers():
    """diffusers, imported with the Hugging Face hub switched offline (nothing is ever downloaded)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import diffusers  # noqa: PLC0415 - optional, heavy
        import huggingface_hub.constants as hub_constants  # noqa: PLC0415
    except ImportError as exc:
        raise RendererError(f"The diffusers renderer needs {exc.name or 'diffusers'}: {EXTRA_HINT}") from None
    hub_constants.HF_HUB_OFFLINE = True  # read at import time: set it too in case the hub was imported before
    import importlib  # noqa: PLC0415

    for name in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:  # no loading bars or notes on the console: the CLI has its own progress bar
            log = importlib.import_module(name)
            log.set_verbosity_error()
            log.disable_progress_bar()
        except Exception:  # noqa: BLE001 - quieter logs only
            pass
    return diffusers


def load_pipeline(cls, source: ModelSource, dtype, **extra):
    """``cls`` (a diffusers pipeline class) from a checked model source, local files only; one line on failure."""
    import warnings  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch_dtype's rename; kept for older diffusers
            if source.single_file:
                return cls.from_single_file(str(source.path), config=str(source.config), local_files_only=True,
                                            torch_dtype=dtype, **extra)
            return cls.from_pretrained(str(source.path), local_files_only=True, torch_dtype=dtype, **extra)
    except RendererError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure is one line naming the model
        raise RendererError(f"could not load model {source.path.name}: {_one_line(exc)}") from None


def _one_line(text: Any, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


# ------------------------------------------------------------------ what a model path holds

@dataclass
class ModelSource:
    """A checked local model: ``path`` (folder or single file), its kind ("sd", "sdxl", "svd"), for a single
    file the diffusers folder with its configuration, and whether its UNet is an inpainting one."""

    path: Path
    kind: str
    single_file: bool = False
    config: Path | None = None
    inpainting: bool = False
    class_name: str = ""
    notes: list[str] = field(default_factory=list)


def _component_missing(folder: Path, name: str, library: str, cls: str, *, weights: bool) -> list[str]:
    """What a component folder of a diffusers model lacks (relative paths), empty when it is whole."""
    sub = folder / name
    if not sub.is_dir():
        return [f"{name}/"]
    if "Scheduler" in cls:
        return [] if (sub / "scheduler_config.json").is_file() else [f"{name}/scheduler_config.json"]
    if "Tokenizer" in cls:
        if (sub / "tokenizer.json").is_file() or ((sub / "vocab.json").is_file() and (sub / "merges.txt").is_file()):
            return []
        return [f"{name}/tokenizer.json (or vocab.json + merges.txt)"]
    if "Processor" in cls or "FeatureExtractor" in cls:
        return [] if (sub / "preprocessor_config.json").is_file() else [f"{name}/preprocessor_config.json"]
    missing = [] if (sub / "config.json").is_file() else [f"{name}/config.json"]
    if weights and not any(p.name.endswith(WEIGHT_SUFFIXES) for p in sub.iterdir()):
        missing.append(f"{name}/ weights (*.safetensors)")
    return missing


def read_model_index(folder: Path, *, weights: bool = True, what: str = "model") -> tuple[str, dict[str, Any]]:
    """(``_class_name``, the index) of a diffusers folder; a one-line error for what is missing."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise RendererError(f"{what} folder {folder} has no model_index.json: give a diffusers model folder (with "
                            f"model_index.json, unet/, vae/ ...) or a single-file .safetensors checkpoint")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RendererError(f"{index_path} cannot be read ({_one_line(exc)}): copy the model folder again") from None
    missing: list[str] = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        missing += _component_missing(folder, name, str(spec[0]), str(spec[1]), weights=weights)
    if missing:
        raise RendererError(f"{what} folder {folder} is incomplete: missing {', '.join(missing)}; copy the whole "
                            f"diffusers folder")
    return str(index.get("_class_name", "")), index


def _wrong_kind(path: Path, kind: str | None, detail: str, want: tuple[str, ...]) -> RendererError:
    wanted = " or ".join(KIND_NAMES[k] for k in want)
    what = KIND_NAMES.get(kind or "", detail)
    hint = ""
    if kind == "svd":
        hint = " (image to video: python -m lib_vid2vid.img2vid IMAGE --model PATH)"
    elif kind in ("sd", "sdxl") and "svd" in want:
        hint = " (video to video: python -m lib_vid2vid VIDEO --renderer diffusers --model PATH)"
    return RendererError(f"{path} is a {what} model, not {wanted}: give a {wanted} model{hint}")


def _checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a .safetensors file, from its header (no weights read)."""
    try:
        from safetensors import safe_open  # noqa: PLC0415
    except ImportError:
        raise RendererError(f"Reading a single-file checkpoint needs safetensors: {EXTRA_HINT}") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # noqa: BLE001
        raise RendererError(f"{path} is not a readable .safetensors checkpoint ({_one_line(exc)})") from None


def checkpoint_kind(shapes: dict[str, tuple[int, ...]]) -> tuple[str | None, str, bool]:
    """(kind or None, what it looks like, inpainting UNet) of a single-file checkpoint in the original
    (Stability / CompVis) layout, from its tensor names and the UNet's input channels."""
    keys = shapes.keys()
    if any(k.startswith(("lora_unet_", "lora_te", "lora.")) or ".lora_down." in k or ".lora_A." in k for k in keys):
        return None, "LoRA", False
    first = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
    if first is None:
        if any(k.startswith(("encoder.down", "decoder.up", "first_stage_model.")) for k in keys):
            return None, "VAE", False
        return None, "unknown (no model.diffusion_model.* UNet weights)", False
    inpainting = len(first) > 1 and first[1] == 9
    if any(".time_stack." in k or ".time_mixer." in k for k in keys):
        return "svd", "Stable Video Diffusion", False
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl", "SDXL", inpainting
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        return None, "SDXL refiner", False
    if any(k.startswith("cond_stage_model.") for k in keys):
        return "sd", "Stable Diffusion", inpainting
    return None, "unknown", False


def _cached_config(shapes: dict[str, tuple[int, ...]], path: Path) -> Path:
    """The diffusers configuration diffusers would fetch for this checkpoint, from the local Hugging Face
    cache only; a one-line error naming ``--model-config`` when it is not there."""
    import torch  # noqa: PLC0415
    from diffusers.loaders.single_file_utils import fetch_diffusers_config  # noqa: PLC0415

    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    repo = fetch_diffusers_config(meta).get("pretrained_model_name_or_path", "")
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415

        found = Path(snapshot_download(repo, local_files_only=True, allow_patterns=["*.json", "*.txt"]))
        read_model_index(found, weights=False, what="cached configuration")
        return found
    except Exception:  # noqa: BLE001 - not cached (or incomplete): say what to give instead
        raise RendererError(f"single-file checkpoint {path.name} needs its model's configuration files and this "
                            f"machine has none ({repo or 'unknown type'} is not in the Hugging Face cache; nothing "
                            f"is downloaded): give --model-config FOLDER, a diffusers folder of that model type "
                            f"(model_index.json, unet/config.json, ..., tokenizer/; weights not needed)") from None


def inspect_model(model: str | os.PathLike, config: str | os.PathLike | None = None, *,
                  want: tuple[str, ...] = ("sd", "sdxl")) -> ModelSource:
    """Check a model path before anything heavy is loaded: it exists, is whole, and is of a wanted kind."""
    path = Path(model).expanduser()
    if not str(model).strip():
        raise RendererError("no model given: --model PATH (a diffusers folder or a .safetensors checkpoint)")
    if not path.exists():
        raise RendererError(f"model {path} not found: give a local diffusers folder (with model_index.json) or a "
                            f".safetensors checkpoint")
    if path.is_dir():
        cls, index = read_model_index(path)
        kind = PIPELINE_KINDS.get(cls)
        if kind not in want:
            raise _wrong_kind(path, kind, cls or "unknown", want)
        inpainting = False
        unet_config = path / "unet" / "config.json"
        if unet_config.is_file():
            inpainting = json.loads(unet_config.read_text(encoding="utf-8")).get("in_channels") == 9
        return ModelSource(path=path, kind=kind, class_name=cls, inpainting=inpainting)
    if path.suffix.lower() != ".safetensors":
        raise RendererError(f"model {path.name}: only .safetensors single files are loaded (pickled .ckpt files can "
                            f"run code); convert it, or give a diffusers folder")
    shapes = _checkpoint_shapes(path)
    kind, looks, inpainting = checkpoint_kind(shapes)
    if kind not in want:
        if looks == "LoRA":
            raise RendererError(f"{path.name} is a LoRA, not a full model: give it with --lora, and a full model "
                                f"with --model")
        raise _wrong_kind(path, kind, looks, want)
    if config:
        cfg = Path(config).expanduser()
        if not cfg.is_dir():
            raise RendererError(f"model config {cfg} is not a folder: give a diffusers folder of the model's type "
                                f"(model_index.json, unet/config.json, ..., tokenizer/)")
        cls, _ = read_model_index(cfg, weights=False, what="model config")
        if PIPELINE_KINDS.get(cls) != kind:
            raise RendererError(f"model config {cfg} is for {KIND_NAMES.get(PIPELINE_KINDS.get(cls, ''), cls)}, but "
                                f"{path.name} is {KIND_NAMES[kind]}: give a config folder of the checkpoint's type")
    else:
        import_diffusers()
        cfg = _cached_config(shapes, path)
    return ModelSource(path=path, kind=kind, single_file=True, config=cfg, inpainting=inpainting)


# ------------------------------------------------------------------ identity

def fingerprint(path: Path) -> str:
    """A cheap, stable digest of a model file or folder (SHA-256, first 16 hex digits): per file its relative
    name, size, and its first and last MiB (whole files up to 2 MiB), files in name order. A full hash of a
    several-GB checkpoint would cost tens of seconds per run; a changed file changes its size or its ends."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        rel = f.relative_to(path).as_posix() if path.is_dir() else f.name
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= 2 * FINGERPRINT_BYTES:
                h.update(fh.read())
            else:
                h.update(fh.read(FINGERPRINT_BYTES))
                fh.seek(size - FINGERPRINT_BYTES)
                h.update(fh.read(FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


def parse_lora(text: str) -> tuple[str, float]:
    """``PATH`` or ``PATH:WEIGHT`` -> (path, weight; 1.0 when none). A Windows drive letter is part of the path:
    only a last ``:`` part that is a number is a weight."""
    head, sep, tail = str(text).rpartition(":")
    if sep and head:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return str(text), 1.0


def pick_device(device: str = "auto") -> str:
    import torch  # noqa: PLC0415

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RendererError(f"--device {device}: this torch has no CUDA device; use --device cpu")
    return device


def override_warning(sampler: str | None, schedule: str = "karras") -> str | None:
    """One line when ``sampler`` cannot take a sigma override in diffusers (:data:`SIGMA_SAMPLERS`); None when it
    can. No model needed: Ray workers' dispatcher (lib_vid2vid/dispatch_ray.py) answers it on the driver."""
    from .. import sigmas  # noqa: PLC0415

    if str(schedule).strip().lower() == "host":
        return None
    name = sigmas.canonical_sampler(sampler) or sampler
    if name in SIGMA_SAMPLERS:
        return None
    return (f"{name} takes no custom sigmas in diffusers: the {schedule} sigma schedule is not applied and its "
            f"own schedule runs; pick {' or '.join(SIGMA_SAMPLERS)} for the override")


# ------------------------------------------------------------------ the renderer

class DiffusersRenderer:
    """SD 1.x/2.x and SDXL img2img and inpainting on diffusers (see the module docstring)."""

    sigma_samplers = SIGMA_SAMPLERS

    def __init__(self, model: str | os.PathLike, *, config: str | os.PathLike | None = None,
                 loras: list[tuple[str, float]] | None = None, device: str = "auto"):
        self.source = inspect_model(model, config)
        diffusers = import_diffusers()
        import torch  # noqa: PLC0415

        self.torch = torch
        self.device = pick_device(device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.loras = [(str(Path(p).expanduser()), float(w)) for p, w in (loras or [])]
        for p, _ in self.loras:
            if not Path(p).is_file():
                raise RendererError(f"LoRA file {p} not found: give the path of a .safetensors LoRA")
        xl = self.source.kind == "sdxl"
        img2img_cls = diffusers.StableDiffusionXLImg2ImgPipeline if xl else diffusers.StableDiffusionImg2ImgPipeline
        inpaint_cls = diffusers.StableDiffusionXLInpaintPipeline if xl else diffusers.StableDiffusionInpaintPipeline
        extra: dict[str, Any] = {} if xl else {"safety_checker": None, "requires_safety_checker": False}
        pipe = load_pipeline(img2img_cls, self.source, self.dtype, **extra)
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.img2img = pipe
        self.inpaint = inpaint_cls.from_pipe(pipe)
        self.inpaint.set_progress_bar_config(disable=True)
        self._load_loras()
        self._base_scheduler = pipe.scheduler
        self._schedulers: dict[tuple[str, str], Any] = {}
        self._notices: list[str] = []
        self._said: set[str] = set()
        self.last_sigmas: list[float] | None = None
        """The sigmas the sampler ran for the last frame (the override's tail), None without an override."""

    # ---- setup

    def _load_loras(self) -> None:
        if not self.loras:
            return
        names = []
        for i, (path, _weight) in enumerate(self.loras):
            name = f"lora{i}"
            try:
                self.img2img.load_lora_weights(path, adapter_name=name)
            except Exception as exc:  # noqa: BLE001
                hint = " (LoRA needs peft: pip install peft)" if "peft" in str(exc).lower() else ""
                raise RendererError(f"could not load LoRA {Path(path).name} for this {KIND_NAMES[self.source.kind]} "
                                    f"model: {_one_line(exc, 200)}{hint}") from None
            names.append(name)
        self.img2img.set_adapters(names, adapter_weights=[w for _, w in self.loras])

    def scheduler_for(self, sampler: str | None, schedule_type: str | None = None):
        """The diffusers scheduler for a WebUI sampler name (and schedule type), made from the model's own
        scheduler configuration once and kept. An unknown name keeps the model's scheduler (said once)."""
        from .. import sigmas  # noqa: PLC0415

        name = sigmas.canonical_sampler(sampler) or (sampler or "")
        key = (name, schedule_type or "Automatic")
        if key in self._schedulers:
            return self._schedulers[key]
        if name not in SAMPLERS:
            self._say(f"sampler {sampler!r} has no diffusers scheduler here (known: {', '.join(SAMPLERS)}); the "
                      f"model's own {type(self._base_scheduler).__name__} is used")
            sched = self._base_scheduler
        else:
            import diffusers  # noqa: PLC0415

            cls_name, options = SAMPLERS[name]
            cls = getattr(diffusers, cls_name)
            options = dict(options)
            accepted = set(inspect.signature(cls.__init__).parameters)
            flag = {"Karras": "use_karras_sigmas", "Exponential": "use_exponential_sigmas"}.get(schedule_type or "")
            if flag and flag in accepted:
                options[flag] = True
            sched = cls.from_config(self._base_scheduler.config, **options)
        self._schedulers[key] = sched
        return sched

    @staticmethod
    def takes_sigmas(scheduler) -> bool:
        return "sigmas" in inspect.signature(scheduler.set_timesteps).parameters

    def override_warning(self, sampler: str | None, schedule: str = "karras") -> str | None:
        """One line when this sampler cannot take a sigma override here; None when it can."""
        return override_warning(sampler, schedule)

    def _say(self, note: str) -> None:
        if note not in self._said:
            self._said.add(note)
            self._notices.append(note)

    def take_notices(self) -> list[str]:
        """Every note said so far. Each call returns them all: the loop logs a note once per job, so each job of
        a batch says it, not only the first."""
        return list(self._notices)

    def host_identity(self) -> dict[str, Any]:
        """Part of the job's identity: the model (name and :func:`fingerprint`), its configuration, LoRAs,
        the precision (float16 on CUDA changes pixels) and the img2img step rule (``img2img_steps``: "webui",
        ``t_enc + 1`` steps; a job made before it ran ``t_enc`` and does not resume with other frames)."""
        src = self.source
        return {"renderer": "diffusers",
                "checkpoint": {"name": src.path.name, "hash": fingerprint(src.path)},
                "vae": {"name": None, "hash": None},
                "request": {"kind": src.kind, "config": fingerprint(src.config) if src.config else None,
                            "loras": [[Path(p).name, fingerprint(Path(p)), w] for p, w in self.loras],
                            "dtype": str(self.dtype).replace("torch.", ""),
                            "device": self.device.split(":")[0],
                            "img2img_steps": "webui"}}  # t_enc + 1 steps (before 2026-12-06: t_enc)

    # ---- rendering

    def _call_args(self, req: RenderRequest, scheduler) -> dict[str, Any]:
        """Steps and strength (or the override's sigmas) for the pipeline call."""
        from .. import sigmas  # noqa: PLC0415

        self.last_sigmas = None
        if req.sigmas is not None:
            if self.takes_sigmas(scheduler):
                tail = sigmas.img2img_tail(req.sigmas, int(req.steps), float(req.denoise))
                n = len(tail) - 1
                if n >= 1:
                    self.last_sigmas = tail
                    return {"sigmas": [tail[0]] + tail, "strength": (n + 0.5) / (n + 1)}
            else:
                self._say(self.override_warning(req.extra.get("sampler"),
                                                req.extra.get("sigma_override", {}).get("schedule", "override"))
                          or "")
        steps, t_enc = sigmas.host_img2img_steps(max(1, int(req.steps)), float(req.denoise))
        return {"num_inference_steps": steps, "strength": min(1.0, (t_enc + 1.5) / steps)}

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        from PIL import Image  # noqa: PLC0415

        torch = self.torch
        req = request
        if req.subseed_strength > 0:
            self._say("the diffusers renderer has no variation seeds: each frame uses its seed alone")
        scheduler = self.scheduler_for(req.extra.get("sampler"), req.extra.get("scheduler"))
        mask = req.mask
        if mask is None and self.source.inpainting:  # a 9-channel UNet always wants a mask: repaint everything
            mask = np.ones(req.init.shape[:2], np.float32)
        masked = mask is not None
        pipe = self.inpaint if masked else self.img2img
        pipe.scheduler = scheduler
        args = self._call_args(req, scheduler)
        image = Image.fromarray(req.init)
        call: dict[str, Any] = dict(prompt=req.prompt, negative_prompt=req.negative_prompt or None, image=image,
                                    guidance_scale=float(req.cfg), num_images_per_prompt=int(req.batch_size),
                                    output_type="np", **args)
        if masked:
            call.update(mask_image=Image.fromarray(to_uint8(mask.astype(np.float32)), mode="L"),
                        width=req.width, height=req.height)
        outs: list[np.ndarray] = []
        for j in range(int(req.n_iter)):
            first = int(req.seed) + j * int(req.batch_size)
            torch.manual_seed(first)  # nothing should draw from it; if anything does, it is the frame's seed
            gens = [torch.Generator("cpu").manual_seed(first + k) for k in range(int(req.batch_size))]
            try:
                with torch.inference_mode(), _noise_for(scheduler, req, j):
                    images = pipe(generator=gens, **call).images
            except (ValueError, RuntimeError) as exc:
                raise RendererError(f"diffusers could not render frame {req.frame_index}: {_one_line(exc)}") from None
            for img in images:
                img = np.asarray(img, dtype=np.float32)
                if img.shape[:2] != req.init.shape[:2]:
                    import cv2  # noqa: PLC0415

                    img = cv2.resize(img, (req.width, req.height), interpolation=cv2.INTER_LANCZOS4)
                if masked:
                    m = mask.astype(np.float32)[..., None]
                    img = m * img + (1.0 - m) * (req.init.astype(np.float32) / 255.0)
                outs.append(to_uint8(img))
        return outs


@contextlib.contextmanager
def _noise_for(scheduler: Any, req: RenderRequest, batch: int):
    """While a pipeline call of batch ``batch`` runs, ``scheduler.add_noise`` uses the request's warped noise
    (mixed with the pipeline's own by ``noise_strength``; see the module's docstring). Nothing when the request
    has none."""
    if getattr(req, "noise", None) is None:
        yield
        return
    from .. import noise as noise_mod  # noqa: PLC0415

    size = int(req.batch_size)
    warped = np.asarray(req.noise[batch * size:(batch + 1) * size], dtype=np.float32)
    original = scheduler.add_noise

    def add_noise(samples, own, timesteps):
        if tuple(own.shape) != warped.shape:
            raise RendererError(f"the warped noise has the shape {warped.shape} but this model's latent noise is "
                                f"{tuple(own.shape)}: use noise_mode seed with this model")
        fresh = own.detach().float().cpu().numpy()
        mixed = noise_mod.mix(warped, fresh, float(getattr(req, "noise_strength", 1.0)))
        return original(samples, own.new_tensor(mixed), timesteps)

    scheduler.add_noise = add_noise  # an instance attribute: shadows the method for this call only
    try:
        yield
    finally:
        del scheduler.add_noise


# ------------------------------------------------------------------ image to video

class SVDGenerator:
    """Stable Video Diffusion image-to-video (``svd``: 14 frames, ``svd_xt``: 25) from a local model, loaded once.

    :meth:`clip` makes one clip from one conditioning image (RGB uint8 HWC, already at the output size, width and
    height multiples of 8): the frames as RGB uint8 HWC. The noise comes from a CPU generator seeded with
    ``seed``, so a clip is a pure function of its image, settings and seed.
    """

    def __init__(self, model: str | os.PathLike, *, config: str | os.PathLike | None = None, device: str = "auto"):
        self.source = inspect_model(model, config, want=("svd",))
        diffusers = import_diffusers()
        import torch  # noqa: PLC0415

        self.torch = torch
        self.device = pick_device(device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        pipe = load_pipeline(diffusers.StableVideoDiffusionPipeline, self.source, self.dtype)
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    @property
    def native_frames(self) -> int:
        """Frames the model was trained to make in one clip (its UNet's ``num_frames``: 14 svd, 25 svd_xt)."""
        return int(self.pipe.unet.config.num_frames)

    def park(self) -> None:
        """Move the model to the CPU's RAM and give its GPU memory back (the WebUI, between generations);
        nothing on the CPU."""
        if self.device.startswith("cuda"):
            self.pipe.to("cpu")
            self.torch.cuda.empty_cache()

    def unpark(self) -> None:
        """Back onto the model's device after :meth:`park`."""
        if self.device.startswith("cuda"):
            self.pipe.to(self.device)

    def host_identity(self) -> dict[str, Any]:
        src = self.source
        return {"renderer": "diffusers-svd", "checkpoint": {"name": src.path.name, "hash": fingerprint(src.path)},
                "request": {"config": fingerprint(src.config) if src.config else None,
                            "dtype": str(self.dtype).replace("torch.", ""), "device": self.device.split(":")[0]}}

    def clip(self, image: np.ndarray, *, frames: int, steps: int, seed: int, motion_bucket_id: int, fps_id: int,
             cond_aug: float, decode_chunk_size: int = 0, min_guidance: float = 1.0,
             max_guidance: float = 3.0) -> list[np.ndarray]:
        """``frames`` RGB uint8 HWC frames of ``image``'s size; ``fps_id`` is the frame-rate conditioning SVD was
        trained with (the pipeline's ``fps - 1``), ``cond_aug`` the noise added to the conditioning image."""
        from PIL import Image  # noqa: PLC0415

        torch = self.torch
        h, w = image.shape[:2]
        gen = torch.Generator("cpu").manual_seed(int(seed))
        torch.manual_seed(int(seed))
        try:
            with torch.inference_mode():
                out = self.pipe(Image.fromarray(image), height=h, width=w, num_frames=int(frames),
                                num_inference_steps=int(steps), min_guidance_scale=float(min_guidance),
                                max_guidance_scale=float(max_guidance), fps=int(fps_id) + 1,
                                motion_bucket_id=int(motion_bucket_id), noise_aug_strength=float(cond_aug),
                                decode_chunk_size=int(decode_chunk_size) or int(frames), generator=gen,
                                output_type="np").frames[0]
        except (ValueError, RuntimeError) as exc:
            raise RendererError(f"Stable Video Diffusion could not make the clip: {_one_line(exc)}") from None
        return [to_uint8(np.asarray(f, dtype=np.float32)) for f in out]
