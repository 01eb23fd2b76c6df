"""The VAE the WebUI loaded over the checkpoint's own (None: the checkpoint's own)."""

import hashlib
import os

loaded_vae_file = None


def get_loaded_vae_name():
    return os.path.basename(loaded_vae_file) if loaded_vae_file else None


def get_loaded_vae_hash():
    return hashlib.sha256(loaded_vae_file.encode()).hexdigest()[:10] if loaded_vae_file else None
