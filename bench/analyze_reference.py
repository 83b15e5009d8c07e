#!/usr/bin/env python3
"""PyTorch reference for vit-analyze's numbers on the goldens' vit_tiny_f64 case: the ViT forward
rebuilt in torch float64 from the case's timm parameters (fused qkv, exact GELU, the file's LayerNorm
eps), checked against timm's own activations in the file, then the three quantities as
src/analyze defines them, printed as C initialisers for tests/test_analyze.c:

  - position-embedding cosine similarity (N x N, class token left out)
  - mean attention distance per (block, head) in pixels: per query patch the distance to the key
    patch centres weighted by its attention renormalised over the patch keys (class token left out as
    query and key), averaged over query patches and images
  - attention rollout: per block the attention averaged over heads plus the identity, rows
    renormalised, multiplied over the blocks (last leftmost); the class token's row over the patch
    keys, and the mean of the patch tokens' rows (the average-pooling variant)

    python3 bench/analyze_reference.py [../shared/goldens/vit_reference.h5]

A developer tool: needs Debian's python3-torch and python3-h5py; the tests do not.
"""
import sys

import h5py
import torch

F = torch.nn.functional


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "../shared/goldens/vit_reference.h5"
    with h5py.File(path, "r") as f:
        g = f["vit_tiny_f64"]
        A = {k: g.attrs[k] for k in g.attrs}
        p = {k: torch.tensor(g["params"][k][()], dtype=torch.float64) for k in g["params"]}
        x = torch.tensor(g["input"][()], dtype=torch.float64)
        acts = {k: torch.tensor(g["acts"][k][()], dtype=torch.float64) for k in g["acts"]}
    P, D, L, NH = int(A["patch"]), int(A["embed_dim"]), int(A["depth"]), int(A["num_heads"])
    eps = float(A["layer_norm_eps"])
    gh, gw = int(A["img_h"]) // P, int(A["img_w"]) // P
    N, T, B, hd = gh * gw, gh * gw + 1, x.shape[0], D // NH

    # forward, keeping every block's probabilities (B, NH, T query, T key)
    pe = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=P).flatten(2).transpose(1, 2)
    worst_act = (pe - acts["patch_embed"]).abs().max().item()
    t = torch.cat([p["cls_token"].expand(B, 1, D), pe], 1) + p["pos_embed"]
    probs = []
    for l in range(L):
        q = lambda n: p[f"blocks.{l}.{n}"]
        h = F.layer_norm(t, (D,), q("norm1.weight"), q("norm1.bias"), eps)
        qkv = F.linear(h, q("attn.qkv.weight"), q("attn.qkv.bias")).reshape(B, T, 3, NH, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) / hd ** 0.5, dim=-1)
        probs.append(att)
        o = F.linear((att @ qkv[2]).transpose(1, 2).reshape(B, T, D), q("attn.proj.weight"), q("attn.proj.bias"))
        worst_act = max(worst_act, (o - acts[f"block_{l}_attn"]).abs().max().item())
        t = t + o
        h = F.layer_norm(t, (D,), q("norm2.weight"), q("norm2.bias"), eps)
        t = t + F.linear(F.gelu(F.linear(h, q("mlp.fc1.weight"), q("mlp.fc1.bias"))), q("mlp.fc2.weight"), q("mlp.fc2.bias"))
        worst_act = max(worst_act, (t - acts[f"block_{l}"]).abs().max().item())
    t = F.layer_norm(t, (D,), p["norm.weight"], p["norm.bias"], eps)
    worst_act = max(worst_act, (t - acts["norm"]).abs().max().item())

    # position-embedding cosine similarity over the patch positions
    pos = p["pos_embed"][0, 1:]
    sim = F.normalize(pos, dim=1) @ F.normalize(pos, dim=1).T

    # mean attention distance
    r = torch.arange(N) // gw
    c = torch.arange(N) % gw
    dist = P * torch.sqrt(((r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2).double())
    mad = torch.zeros(L, NH, dtype=torch.float64)
    for l in range(L):
        w = probs[l][:, :, 1:, 1:]                 # (B, NH, query patch, key patch)
        w = w / w.sum(-1, keepdim=True)
        mad[l] = (w * dist).sum(-1).mean(dim=(0, 2))

    # attention rollout
    eye = torch.eye(T, dtype=torch.float64)
    R = eye.expand(B, T, T)
    for l in range(L):
        a = probs[l].mean(1) + eye
        a = a / a.sum(-1, keepdim=True)
        R = a @ R
    roll_cls = R[:, 0, 1:]
    roll_mean = R[:, 1:, 1:].mean(1)

    def rows(name, m, fmt="%.12g"):
        print(f"static const double {name}[{m.shape[0]}][{m.shape[1]}] = {{")
        for row in m.tolist():
            print("    {" + ", ".join(fmt % v for v in row) + "},")
        print("};")

    print(f"/* bench/analyze_reference.py: torch {torch.__version__} float64; forward vs timm's activations in the "
          f"file: worst {worst_act:.3g} */")
    rows("torch_distance", mad)
    rows("torch_rollout_cls", roll_cls)
    rows("torch_rollout_mean", roll_mean)
    rows("torch_pos_similarity", sim)


if __name__ == "__main__":
    main()
