"""Depth masks, one name for the whole of it: MiDaS depth per frame, cached per job, or a user-supplied depth
video / folder. The code lives in one module per concern; this module re-exports their public names so that
``from lib_vid2vid import depth; depth.DepthCache(...)`` keeps working:

* :mod:`.midas_model`      the four MiDaS models, their weight files, the network on a timm backbone
* :mod:`.depth_estimator`  preprocessing and inference: a frame's raw and normalised depth
* :mod:`.depth_mask`       normalising depth to 0..1 (1 = near) and the low-cut depth mask
* :mod:`.depth_cache`      depth computed once per job (16-bit PNGs + ranges), normalised per frame,
                           over the frames so far, or per job
* :mod:`.depth_user`       a depth video or a folder of numbered depth images instead of the model

torch and timm are imported only when a network is built or run.
"""

from __future__ import annotations

from .depth_cache import NORMALISE_MODES, DepthCache
from .depth_estimator import DepthEstimator, net_input_size, preprocess
from .depth_mask import depth_mask, normalise
from .depth_user import ASPECT_TOLERANCE, IMAGE_SUFFIXES, DepthSource
from .midas_model import (
    DEFAULT_FOLDER,
    HALF,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODELS,
    MidasConfig,
    ModelSpec,
    build_model,
    kind_from_filename,
    load_model,
    weights_path,
)

__all__ = [
    "ASPECT_TOLERANCE",
    "DEFAULT_FOLDER",
    "HALF",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "MODELS",
    "NORMALISE_MODES",
    "DepthCache",
    "DepthEstimator",
    "DepthSource",
    "MidasConfig",
    "ModelSpec",
    "build_model",
    "depth_mask",
    "kind_from_filename",
    "load_model",
    "net_input_size",
    "normalise",
    "preprocess",
    "weights_path",
]
