class _State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.interrupted = False
        self.stopping_generation = False
        self.skipped = False
        self.job_count = -1
        self.job_no = 0
        self.textinfo = None
        self.current_images = []

    def assign_current_image(self, image):
        self.current_images.append(image)

    def nextjob(self):
        self.job_no += 1


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, section=None, **kw):
        self.default, self.label, self.component, self.component_args, self.section = (
            default, label, component, component_args, section)


class _Opts:
    def __init__(self):
        self.data_labels = {}

    def add_option(self, key, info):
        self.data_labels[key] = info
        setattr(self, key, info.default)


state = _State()
opts = _Opts()
interrogator = None


class _Scaler:
    """Like the WebUI's Upscaler: do_upscale runs the model (4x), or returns the image unchanged when the model
    cannot load; upscale() then resizes to the target with Lanczos either way."""

    def __init__(self, loads=True):
        self.loads = loads

    def do_upscale(self, img, data_path):
        return img.resize((img.width * 4, img.height * 4)) if self.loads else img

    def upscale(self, img, scale, data_path):
        return self.do_upscale(img, data_path).resize((int(img.width * scale), int(img.height * scale)))


class _UpscalerData:
    def __init__(self, name, loads=True):
        self.name = name
        self.scaler = _Scaler(loads)
        self.data_path = None


class _LanczosScaler:
    """Like the WebUI's Lanczos: do_upscale reads self.scale, which upscale() sets."""

    scale = 1

    def do_upscale(self, img, data_path):
        return img.resize((int(img.width * self.scale), int(img.height * self.scale)))

    def upscale(self, img, scale, data_path):
        self.scale = scale
        return self.do_upscale(img, data_path)


_lanczos = _UpscalerData("Lanczos (WebUI)")
_lanczos.scaler = _LanczosScaler()
sd_upscalers = [_UpscalerData("None"), _UpscalerData("R-ESRGAN 4x+"), _UpscalerData("Missing-model", loads=False),
                _lanczos]


class _CmdOpts:
    hide_ui_dir_config = False


cmd_opts = _CmdOpts()


class _CheckpointInfo:
    def __init__(self, name, sha256):
        self.name = name
        self.sha256 = sha256
        self.shorthash = sha256[:10]


class _Model:
    """shared.sd_model: only what vid2vid reads (which checkpoint is loaded)."""

    def __init__(self, info):
        self.sd_checkpoint_info = info


sd_model = _Model(_CheckpointInfo("v1-5-pruned-emaonly.safetensors",
                                  "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"))
