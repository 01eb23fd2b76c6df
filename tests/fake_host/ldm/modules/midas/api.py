"""Double of ldm's MiDaS loader: a 'depth' network that returns the mean of the input channels."""

loaded = []


def load_model(model_type):
    import torch

    class MeanDepth(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=1)

    loaded.append(model_type)
    return MeanDepth(), None
