#!/usr/bin/env python3
"""Side-by-side: the same ViT training step (forward, backward, clip, AdamW) in PyTorch and in
vit-bench, in one invocation, printing both images/s and the ratio.

    python3 bench/compare_torch.py --model fmnist --batch 128 --steps 10 [--threads 2]
    python3 bench/compare_torch.py --model s16 --batch 8 --steps 3
    python3 bench/compare_torch.py --config configs/fashion_mnist.ini --batch 16 --steps 200

With --config the model, the batch and vit's replicas are the config's, both without patch dropout
(PyTorch has none: vit-bench gets --patch-drop 0), the pooling ("token" or "avg", timm's
global_pool='avg' with the final norm before the mean) as the config says.

Needs Debian's python3-torch (1.13). The model is a plain pre-norm ViT with timm's layout (fused qkv,
exact GELU, LayerNorm eps 1e-6, class-token pooling), built here so that timm is not required.
"""
import argparse, configparser, os, re, subprocess, sys, time, resource

PRESETS = {  # name: (img, patch, chans, classes, dim, depth, heads, mlp)
    "fmnist": (28, 4, 1, 10, 192, 6, 3, 4.0),
    "ti16": (224, 16, 3, 1000, 192, 12, 3, 4.0),
    "s16": (224, 16, 3, 1000, 384, 12, 6, 4.0),
    "b16": (224, 16, 3, 1000, 768, 12, 12, 4.0),
    "l16": (224, 16, 3, 1000, 1024, 24, 16, 4.0),
    "h14": (224, 14, 3, 1000, 1280, 32, 16, 4.0),
}


def config_model(path):
    """(img, patch, chans, classes, dim, depth, heads, mlp), pool, batch, replicas of a vit config"""
    c = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    if not c.read(path):
        sys.exit(f"compare_torch: cannot read {path}")
    m = c["model"] if c.has_section("model") else {}
    g = lambda k, d: type(d)(m.get(k, d))
    spec = (g("img_size", 224), g("patch_size", 16), g("in_chans", 3), g("num_classes", 1000), g("embed_dim", 768),
            g("depth", 12), g("num_heads", 12), g("mlp_ratio", 4.0))
    batch = int(c.get("data", "batch_size", fallback="64"))
    replicas = int(c.get("train", "replicas", fallback="1"))
    return spec, m.get("pool", "token"), batch, replicas


def torch_images_per_s(spec, pool, batch, steps, threads):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    img, patch, chans, classes, dim, depth, heads, mlp = spec

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.fc1 = nn.Linear(dim, int(dim * mlp))
            self.fc2 = nn.Linear(int(dim * mlp), dim)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(B, T, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
            a = (q @ k.transpose(-2, -1)) * (C // heads) ** -0.5
            a = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
            x = x + self.proj(a)
            return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(chans, dim, patch, patch)
            n = (img // patch) ** 2
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
            x = self.norm(self.blocks(x))
            return self.head(x[:, 1:].mean(1) if pool == "avg" else x[:, 0])

    model = ViT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.randn(batch, chans, img, img)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return steps * batch / dt, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fmnist", choices=sorted(PRESETS))
    ap.add_argument("--config", help="a vit config: its model, batch and replicas (no patch dropout)")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--replicas", type=int,
                    help="vit's data-parallel replicas (one thread each; for small models)")
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench", "vit-bench"))
    a = ap.parse_args()
    if a.config:
        spec, pool, batch, replicas = config_model(a.config)
        which = ["--config", a.config, "--patch-drop", "0"]
    else:
        spec, pool, batch, replicas = PRESETS[a.model], "token", 128 if a.model == "fmnist" else 8, 1
        which = ["--model", a.model]
    a.batch = a.batch or batch
    a.replicas = a.replicas or replicas
    out = subprocess.run([a.bench] + which + ["--batch", str(a.batch), "--steps", str(a.steps),
                          "--threads", str(a.threads), "--replicas", str(a.replicas)], capture_output=True, text=True, check=True).stdout
    ours = float(re.search(r"images/s: ([0-9.]+)", out).group(1))
    rss_ours = float(re.search(r"peak RSS ([0-9.]+) MB", out).group(1))
    try:
        theirs, rss_theirs = torch_images_per_s(spec, pool, a.batch, a.steps, a.threads)
    except ImportError:
        print(out, end="")
        print("PyTorch not installed (apt-get install python3-torch): no comparison")
        return 0
    print(out, end="")
    print(f"PyTorch {__import__('torch').__version__}, {a.threads} threads: {theirs:.2f} images/s, peak RSS {rss_theirs:.0f} MB")
    reps = f", {a.replicas} replicas" if a.replicas > 1 else ""
    print(f"vit ({a.threads} threads{reps}): {ours:.2f} images/s, peak RSS {rss_ours:.0f} MB")
    print(f"ratio vit / PyTorch: {ours / theirs:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
