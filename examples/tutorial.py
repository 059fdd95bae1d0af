#!/usr/bin/python3
"""The tutorial's whole run in Python, then the PyTorch round trip.

usage: PYTHONPATH=build/python /usr/bin/python3 examples/tutorial.py [EPOCHS] [OUT_DIR]

Trains the swiss roll (the tutorial's data and network predicting the noise, diffuse's other
default settings; as_tutorial=True gives the tutorial's own; drop model= and predict= for
diffuse's default network, docs/DEFAULTS.md), draws data, forward process, loss, reverse process and
samples into OUT_DIR/tutorial.png, and scores the samples. Then, where PyTorch is installed, loads
the checkpoint into the tutorial's own PyTorch model with diffuse's small safetensors reader (no
`safetensors` package) and checks that both predict the same noise.
"""
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import diffuse  # noqa: E402

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = sys.argv[2] if len(sys.argv) > 2 else "out"
os.makedirs(out, exist_ok=True)

# ---- the tutorial in about 20 lines -----------------------------------------------------------
x0 = diffuse.make_shape("swiss_roll", n=10000, seed=1)      # the data train() sees for seed 0
model = diffuse.train("swiss_roll", model="tutorial", predict="eps", epochs=epochs, progress=True,
                      output=f"{out}/model.safetensors")  # the tutorial's network, predicting noise
t_shown, states = model.sample_trajectory(n=2000, seed=0)  # x_T ... x_0, (K, 2000, 2)
samples = model.sample(10000, seed=0)
print(diffuse.evaluate(samples, "swiss_roll"))              # swd_ratio 1 = as good as fresh data

fig, ax = plt.subplots(3, 5, figsize=(15, 9))
rng = np.random.default_rng(0)
for i, t in enumerate(np.linspace(0, model.steps - 1, 5).astype(int)):  # forward: q(x_t | x_0)
    xt = np.sqrt(model.alpha_bar[t]) * x0 + np.sqrt(1 - model.alpha_bar[t]) * rng.normal(size=x0.shape)
    ax[0, i].scatter(xt[:2000, 0], xt[:2000, 1], s=1)
    ax[0, i].set_title(f"forward, t = {t}")
for i, k in enumerate(np.linspace(0, len(t_shown) - 1, 5).astype(int)):  # reverse: x_T -> x_0
    ax[1, i].scatter(states[k, :, 0], states[k, :, 1], s=1)
    ax[1, i].set_title(f"reverse, t = {t_shown[k]}")
ax[2, 0].scatter(x0[:, 0], x0[:, 1], s=1), ax[2, 0].set_title("data")
ax[2, 1].scatter(samples[:, 0], samples[:, 1], s=1), ax[2, 1].set_title("samples")
ax[2, 2].plot([h["mean_loss"] for h in model.history]), ax[2, 2].set_title("training loss")
ax[2, 2].set_xlabel("epoch"), ax[2, 2].set_ylabel("MSE")
end = "" if model.schedule == "cosine" else f", beta_end {model.beta_end}"  # cosine has no range
ax[2, 3].plot(model.betas), ax[2, 3].set_title(f"{model.schedule} schedule, T={model.steps}{end}")
ax[2, 3].set_xlabel("t"), ax[2, 3].set_ylabel("beta_t")
ax[2, 4].axis("off")
fig.tight_layout()
fig.savefig(f"{out}/tutorial.png", dpi=80)
print(f"wrote {out}/tutorial.png and {out}/model.safetensors")

# ---- the PyTorch round trip, without the safetensors package ----------------------------------
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("PyTorch is not installed: skipping the round trip (Debian: python3-torch)")


class ConditionalLinear(nn.Module):  # the tutorial's
    def __init__(self, num_in, num_out, n_steps):
        super().__init__()
        self.num_out = num_out
        self.lin = nn.Linear(num_in, num_out)
        self.embed = nn.Embedding(n_steps, num_out)

    def forward(self, x, y):
        return self.embed(y).view(-1, self.num_out) * self.lin(x)


class ConditionalModel(nn.Module):  # the tutorial's, with D and H as arguments
    def __init__(self, n_steps, dim=2, hidden=128):
        super().__init__()
        self.lin1 = ConditionalLinear(dim, hidden, n_steps)
        self.lin2 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin3 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin4 = nn.Linear(hidden, dim)

    def forward(self, x, y):
        x = F.softplus(self.lin1(x, y))
        x = F.softplus(self.lin2(x, y))
        return self.lin4(F.softplus(self.lin3(x, y)))


weights = diffuse.safetensors.state_dict(f"{out}/model.safetensors")
net = ConditionalModel(model.steps, model.dim, model.hidden)
net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
x = rng.normal(size=(1000, model.dim)).astype(np.float32)
with torch.no_grad():
    torch_eps = net(torch.from_numpy(x), torch.full((1000,), 50)).numpy()
ours = model.predict_noise(x, 50)
error = np.abs(torch_eps - ours).max() / np.abs(ours).max()
print(f"PyTorch's tutorial model with diffuse's weights: relative difference {error:.1e}")
sys.exit(0 if error < 1e-5 else 1)
