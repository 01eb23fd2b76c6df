"""DeepBooru double: tags from the frame's mean brightness, so different frames give different tags."""


class _Model:
    def __init__(self):
        self.started = 0

    def start(self):
        self.started += 1

    def stop(self):
        pass

    def tag_multi(self, image):
        import numpy as np

        level = int(np.asarray(image).mean() // 64)
        return f"video, frame, level_{level}"


model = _Model()
