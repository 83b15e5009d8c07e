#!/usr/bin/env python3
"""PyTorch reference for LayerScale, register tokens and no_embed_class (timm's DeiT-III and register-token
ViTs). timm is not installed here: its VisionTransformer forward is rebuilt in torch float64 from timm's
documented behaviour (conv patch embedding; _pos_embed: the class token, then reg_token, then the patches,
with pos_embed added to every token, or with no_embed_class to the patch tokens only before the
concatenation; pre-norm blocks x + ls1(attn(norm1(x))), x + ls2(mlp(norm2(x))) with ls = x * gamma; fused
qkv, q|k|v then head-major; softmax(q k^T / sqrt(head_dim)); exact erf GELU; LayerNorm eps 1e-6; final norm,
or with fc_norm none before pooling and a LayerNorm after it; token pooling x[:, 0] or the mean of
x[:, num_prefix_tokens:], where num_prefix_tokens = 1 + reg_tokens; the Linear head).

With the goldens' vit_reference.h5 (and h5py) it first runs the same forward on the plain case
/vit_tiny_f64 and prints its worst difference from timm's logits, so that the rebuilt forward is
checked against timm itself where timm's numbers exist.

Three small models from fixed seeds, weights perturbed so that no gamma is one and no bias zero:
  deit3_tiny    16x16x3, patch 4, dim 16, depth 2, 2 heads, 5 classes: LayerScale, no_embed_class,
                token pooling (timm's deit3_* layout)
  reg4_tiny     16x16x3, the same sizes: 4 register tokens, pos_embed over every token, average pooling
                with fc_norm (timm's vit_*_reg4_gap layout without class_token=False)
  reg2_ls_tiny  12x16x1, patch 4 (grid 3x4), dim 16, depth 2, 4 heads, 3 classes: 2 register tokens,
                no_embed_class, LayerScale, token pooling (timm's *_reg4_dinov2 layout in small)

Writes tests/data/<name>.safetensors (float32, timm's state_dict names and order) and prints
tests/deit_reference.h (each model's input, float32 values, and its float64 logits):

    /usr/bin/python3 bench/deit_reference.py [../shared/goldens/vit_reference.h5] > tests/deit_reference.h

A developer tool: needs Debian's python3-torch (h5py for the check against timm); the tests do not.
"""
import json
import os
import struct
import sys

import torch

F = torch.nn.functional
EPS = 1e-6

MODELS = [
    dict(name="deit3_tiny", img=(16, 16), chans=3, patch=4, dim=16, depth=2, heads=2, classes=5, reg=0,
         no_embed_class=True, init_values=True, pool="token", fc_norm=False, seed=1),
    dict(name="reg4_tiny", img=(16, 16), chans=3, patch=4, dim=16, depth=2, heads=2, classes=5, reg=4,
         no_embed_class=False, init_values=False, pool="avg", fc_norm=True, seed=2),
    dict(name="reg2_ls_tiny", img=(12, 16), chans=1, patch=4, dim=16, depth=2, heads=4, classes=3, reg=2,
         no_embed_class=True, init_values=True, pool="token", fc_norm=False, seed=3),
]


def make_params(m):
    """timm's state_dict of the model (names and order), float32 values drawn from the model's seed"""
    g = torch.Generator().manual_seed(m["seed"])
    rnd = lambda *s, std=0.3: (torch.randn(*s, generator=g, dtype=torch.float64) * std).float()
    D, P, C, H = m["dim"], m["patch"], m["chans"], 4 * m["dim"]
    N = (m["img"][0] // P) * (m["img"][1] // P)
    pre = 1 + m["reg"]
    p = {"cls_token": rnd(1, 1, D)}
    if m["reg"]:
        p["reg_token"] = rnd(1, m["reg"], D)
    p["pos_embed"] = rnd(1, N if m["no_embed_class"] else pre + N, D)
    p["patch_embed.proj.weight"] = rnd(D, C, P, P)
    p["patch_embed.proj.bias"] = rnd(D, std=0.1)
    for b in range(m["depth"]):
        q = f"blocks.{b}."
        p[q + "norm1.weight"] = 1 + rnd(D, std=0.1)
        p[q + "norm1.bias"] = rnd(D, std=0.1)
        p[q + "attn.qkv.weight"] = rnd(3 * D, D)
        p[q + "attn.qkv.bias"] = rnd(3 * D, std=0.1)
        p[q + "attn.proj.weight"] = rnd(D, D)
        p[q + "attn.proj.bias"] = rnd(D, std=0.1)
        if m["init_values"]:
            p[q + "ls1.gamma"] = rnd(D, std=0.5)
        p[q + "norm2.weight"] = 1 + rnd(D, std=0.1)
        p[q + "norm2.bias"] = rnd(D, std=0.1)
        p[q + "mlp.fc1.weight"] = rnd(H, D)
        p[q + "mlp.fc1.bias"] = rnd(H, std=0.1)
        p[q + "mlp.fc2.weight"] = rnd(D, H)
        p[q + "mlp.fc2.bias"] = rnd(D, std=0.1)
        if m["init_values"]:
            p[q + "ls2.gamma"] = rnd(D, std=0.5)
    nm = "fc_norm." if m["fc_norm"] else "norm."
    p[nm + "weight"] = 1 + rnd(D, std=0.1)
    p[nm + "bias"] = rnd(D, std=0.1)
    p["head.weight"] = rnd(m["classes"], D)
    p["head.bias"] = rnd(m["classes"], std=0.1)
    x = torch.rand(2, C, m["img"][0], m["img"][1], generator=g, dtype=torch.float64).float() * 2 - 1
    return p, x


def forward(p, x, m):
    """timm's VisionTransformer.forward in float64 from the float32 parameters"""
    p = {k: v.double() for k, v in p.items()}
    x = x.double()
    D, NH, R = m["dim"], m["heads"], m["reg"]
    hd = D // NH
    t = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=m["patch"])
    t = t.flatten(2).transpose(1, 2)
    B = t.shape[0]
    prefix = [p["cls_token"].expand(B, -1, -1)] + ([p["reg_token"].expand(B, -1, -1)] if R else [])
    if m["no_embed_class"]:
        t = torch.cat(prefix + [t + p["pos_embed"]], 1)
    else:
        t = torch.cat(prefix + [t], 1) + p["pos_embed"]
    T = t.shape[1]
    for b in range(m["depth"]):
        q = lambda n: p[f"blocks.{b}.{n}"]
        h = F.layer_norm(t, (D,), q("norm1.weight"), q("norm1.bias"), EPS)
        qkv = F.linear(h, q("attn.qkv.weight"), q("attn.qkv.bias")).reshape(B, T, 3, NH, hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * hd ** -0.5, dim=-1)
        a = F.linear((att @ qkv[2]).transpose(1, 2).reshape(B, T, D), q("attn.proj.weight"), q("attn.proj.bias"))
        t = t + (a * q("ls1.gamma") if m["init_values"] else a)
        h = F.layer_norm(t, (D,), q("norm2.weight"), q("norm2.bias"), EPS)
        h = F.linear(F.gelu(F.linear(h, q("mlp.fc1.weight"), q("mlp.fc1.bias"))), q("mlp.fc2.weight"), q("mlp.fc2.bias"))
        t = t + (h * q("ls2.gamma") if m["init_values"] else h)
    if not m["fc_norm"]:
        t = F.layer_norm(t, (D,), p["norm.weight"], p["norm.bias"], EPS)
    t = t[:, 0] if m["pool"] == "token" else t[:, 1 + R:].mean(1)
    if m["fc_norm"]:
        t = F.layer_norm(t, (D,), p["fc_norm.weight"], p["fc_norm.bias"], EPS)
    return F.linear(t, p["head.weight"], p["head.bias"])


def write_safetensors(path, p):
    """the safetensors format: 8-byte little-endian header length, JSON header, raw little-endian data"""
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for k, v in p.items():
        b = v.contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check_against_timm(path):
    """the plain forward on the goldens' vit_tiny_f64 against timm's logits there: worst |difference|"""
    try:
        import h5py
    except ImportError:
        return "h5py not installed: not checked against timm"
    if not os.path.exists(path):
        return f"{path} not found: not checked against timm"
    with h5py.File(path, "r") as f:
        g = f["vit_tiny_f64"]
        A = {k: g.attrs[k] for k in g.attrs}
        p = {k: torch.tensor(g["params"][k][()], dtype=torch.float64) for k in g["params"]}
        x = torch.tensor(g["input"][()], dtype=torch.float64)
        want = torch.tensor(g["logits"][()], dtype=torch.float64)
    m = dict(img=(int(A["img_h"]), int(A["img_w"])), patch=int(A["patch"]), dim=int(A["embed_dim"]),
             depth=int(A["depth"]), heads=int(A["num_heads"]), reg=0, no_embed_class=False, init_values=False,
             pool="token", fc_norm=False)
    assert float(A["layer_norm_eps"]) == EPS
    worst = (forward(p, x, m) - want).abs().max().item()
    return f"plain forward vs timm's logits of /vit_tiny_f64: worst {worst:.3g}"


def c_array(name, v, fmt):
    flat = ", ".join(fmt % float(e) for e in v.flatten().tolist())
    return f"static const {'float' if fmt == '%.9g' else 'double'} {name}[{v.numel()}] = {{{flat}}};"


def main():
    goldens = sys.argv[1] if len(sys.argv) > 1 else "../shared/goldens/vit_reference.h5"
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.makedirs(os.path.join(root, "tests", "data"), exist_ok=True)
    print(f"/* bench/deit_reference.py: torch {torch.__version__} float64; {check_against_timm(goldens)}.")
    print(" * Per model: the input (2 images, NCHW, float32) and the float64 logits of the weights in")
    print(" * tests/data/<name>.safetensors. */")
    for m in MODELS:
        p, x = make_params(m)
        write_safetensors(os.path.join(root, "tests", "data", m["name"] + ".safetensors"), p)
        logits = forward(p, x, m)
        print(c_array(f"{m['name']}_input", x, "%.9g"))
        print(c_array(f"{m['name']}_logits", logits, "%.17g"))


if __name__ == "__main__":
    main()
