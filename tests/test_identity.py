"""Host identities (lib_vid2vid/identity.py): plain, stable values and one-line descriptions of what differs."""

import dataclasses
import enum
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lib_vid2vid import identity

ROOT = Path(__file__).resolve().parents[1]


class Mode(enum.Enum):
    BALANCED = "Balanced"


@dataclasses.dataclass
class Unit:
    enabled: bool = True
    model: str = "control_v11p_sd15_canny"
    weight: float = 1.0
    image: object = None
    mode: Mode = Mode.BALANCED


class Plain:
    def __init__(self, image):
        self.image = image
        self.callback = lambda: None
        self._cache = object()


class PydanticLike:
    model_fields = {"module": None}

    def model_dump(self):
        return {"module": "canny", "threshold_a": np.float32(100.0)}


def _img(v):
    return np.full((8, 8, 3), v, np.uint8)


def test_values_become_plain_json_without_addresses():
    value = {"unit": Unit(image={"image": _img(3), "mask": _img(0)}), "plain": Plain(Image.fromarray(_img(5))),
             "pyd": PydanticLike(), "fn": print, "obj": object(), "t": (1, 2.5, None), "s": {"b", "a"},
             "long": "x" * 5000, 7: b"raw", "nan": float("nan")}
    out = identity.normalise(value)
    text = json.dumps(out)
    assert "0x" not in text and "object at" not in text
    unit = out["unit"]
    assert unit["model"] == "control_v11p_sd15_canny" and unit["mode"] == "Balanced"
    assert set(unit["image"]["image"]) == {"sha256", "shape", "dtype"} and unit["image"]["image"]["shape"] == [8, 8, 3]
    assert out["plain"]["image"]["size"] == [8, 8] and "_cache" not in out["plain"]
    assert out["pyd"] == {"module": "canny", "threshold_a": 100.0}
    assert out["t"] == [1, 2.5, None] and out["s"] == ["a", "b"] and out["long"]["chars"] == 5000
    assert out["7"]["bytes"] == 3 and out["nan"] == "nan"


def test_equal_setups_give_equal_identities_and_any_pixel_change_shows():
    a = identity.normalise({"u": Unit(image=_img(3))})
    b = identity.normalise({"u": Unit(image=_img(3))})  # other objects, other memory, same content
    assert identity.canonical(a) == identity.canonical(b)
    other = _img(3)
    other[4, 4, 1] = 4
    c = identity.normalise({"u": Unit(image=other)})
    assert identity.canonical(a) != identity.canonical(c)


def test_identity_is_the_same_in_another_process():
    """Nothing in it may depend on the process (ids, addresses, hash randomisation)."""
    code = ("import json; from tests.test_identity import Unit, Plain, _img; from lib_vid2vid import identity; "
            "print(identity.canonical(identity.normalise({'u': Unit(image=_img(9)), 'p': Plain(_img(1)), "
            "'s': {'x', 'y', 'z'}, 'f': print})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                           env={**env, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1] and runs[0].strip()


def test_describe_names_the_controlnet_unit_and_models():
    was = identity.normalise({"controlnet": [Unit(), None]})
    now = identity.normalise({"controlnet": [None, None]})
    assert identity.describe(was, now) == "ControlNet unit 0 differs (was control_v11p_sd15_canny, now none)"
    heavier = identity.normalise({"controlnet": [Unit(weight=0.5), None]})
    assert identity.describe(was, heavier) == "ControlNet unit 0 differs (weight: was 1.0, now 0.5)"


def test_describe_checkpoint_scripts_options_on_one_line():
    was = {"checkpoint": {"name": "v1-5.safetensors", "hash": "6ce0161689ab"}, "options": {"CLIP_stop_at_last_layers": 1},
           "scripts": {"ADetailer": [True, {"ad_model": "face_yolov8n.pt"}]}}
    now = {"checkpoint": {"name": "dream.safetensors", "hash": "879db523c3"}, "options": {"CLIP_stop_at_last_layers": 2},
           "scripts": {"ADetailer": [True, {"ad_model": "hand_yolov8n.pt"}]}, "request": {"styles": ["noir"]}}
    text = identity.describe(was, now, most=3)
    assert text.startswith("checkpoint differs (was v1-5.safetensors [6ce0161689], now dream.safetensors "
                           "[879db523c3]); option CLIP_stop_at_last_layers differs (was 1, now 2); script ADetailer "
                           "differs ([1].ad_model: was face_yolov8n.pt, now hand_yolov8n.pt)")
    assert text.endswith("; and 1 more") and "\n" not in text
    assert "made before" in identity.describe(None, now)
    assert identity.differences(now, json.loads(json.dumps(now))) == []
