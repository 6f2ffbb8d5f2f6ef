"""An independent reference for the original ALAE networks (podgorskiy/ALAE net.py, lreq.py with
implicit equalized learning rate), written with torch.nn.functional only, reading the original's
own state dicts: it shares no code with alae.networks.layers / alae.networks / alae.model_files.original_alae.

It also generates the original's tensor names and shapes from its constructor arguments
(startf, maxf, layer_count, latent_size, mapping_layers); tests check that this reproduces the
reference state-dict listings in tests/data, then use it for small synthetic models.

Semantics (facts of the original code):
- lreq layers: the stored weight and bias are used as they are (implicit lreq);
  transform_kernel pads a 3x3 kernel to 4x4 and sums its four 1-pixel shifts (×0.25 for the
  stride-2 conv, not for the transposed conv).
- MappingF: pixel norm (eps 1e-8), then Linear + LeakyReLU(0.2) per layer.
- MappingD: Linear layers without activation on E's [N, 1, latent] output; reads
  x[:, 0, outputs // 2].
- GeneratorDefault: const [1, C, 4, 4]; DecodeBlock: (upscale2d + conv | fused transposed conv)
  + blur unless first; noise (or the noise=False substitute); + bias; LeakyReLU; InstanceNorm
  (eps 1e-8); style_mod x·(1 + s[:C]) + s[C:]; conv_2; noise; + bias; LeakyReLU; InstanceNorm;
  style_mod. ToRGB 1x1 conv. Fade: lerp(interpolate(ToRGB_{lod-1}), ToRGB_lod, blend).
  Fused resampling from 128 px outputs.
- EncoderDefault: FromRGB = conv 1x1 + LeakyReLU, then LeakyReLU again; EncodeBlock: conv_1 +
  bias_1, LeakyReLU, stats (mean, sqrt(mean((x−m)²))), InstanceNorm (eps 1e-5), blur, conv_2
  (fused stride 2 from 128 px inputs, else conv + avg_pool2d), + bias_2, LeakyReLU, stats,
  InstanceNorm; w += style_1(stats_1) + style_2(stats_2). Fade (encode2): the top block's terms
  times blend, x = lerp(FromRGB_{lod−1}(avg_pool2d(x)), top block's x, blend).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FUSED_FROM = 128


TINY_ARGS = dict(startf=4, maxf=16, layer_count=6, latent=16, mapping_layers=3)  # a 6-level, 16-latent stand-in


def original_shapes(startf: int, maxf: int, layer_count: int, latent: int, mapping_layers: int,
                    channels: int = 3) -> dict[str, dict[str, tuple[int, ...]]]:
    """Per network (decoder, encoder, mapping_f, mapping_d, dlatent_avg): tensor name → shape."""
    dec, enc, mf, md = {}, {}, {}, {}
    dec["const"] = (1, min(maxf, startf * 2 ** (layer_count - 1)), 4, 4)
    inputs = min(maxf, startf * 2 ** (layer_count - 1))
    for i in range(layer_count):
        out = min(maxf, startf * 2 ** (layer_count - 1 - i))
        p = f"decode_block.{i}."
        for k in (1, 2):
            dec[p + f"noise_weight_{k}"] = (1, out, 1, 1)
            dec[p + f"bias_{k}"] = (1, out, 1, 1)
            dec[p + f"style_{k}.weight"] = (2 * out, latent)
            dec[p + f"style_{k}.bias"] = (2 * out,)
        if i > 0:
            fused = 4 * 2 ** i >= FUSED_FROM
            dec[p + "conv_1.weight"] = (inputs, out, 3, 3) if fused else (out, inputs, 3, 3)
        dec[p + "blur.weight"] = (out, 1, 3, 3)
        dec[p + "conv_2.weight"] = (out, out, 3, 3)
        dec[f"to_rgb.{i}.to_rgb.weight"] = (channels, out, 1, 1)
        dec[f"to_rgb.{i}.to_rgb.bias"] = (channels,)
        inputs = out
    for i in range(layer_count):
        cin, cout = min(maxf, startf * 2 ** i), min(maxf, startf * 2 ** (i + 1))
        enc[f"from_rgb.{i}.from_rgb.weight"] = (cin, channels, 1, 1)
        enc[f"from_rgb.{i}.from_rgb.bias"] = (cin,)
        p = f"encode_block.{i}."
        enc[p + "bias_1"] = (1, cin, 1, 1)
        enc[p + "bias_2"] = (1, cout, 1, 1)
        enc[p + "conv_1.weight"] = (cin, cin, 3, 3)
        enc[p + "blur.weight"] = (cin, 1, 3, 3)
        enc[p + "conv_2.weight"] = (cout, cin, 3, 3)
        enc[p + "style_1.weight"] = (latent, 2 * cin)
        enc[p + "style_1.bias"] = (latent,)
        enc[p + "style_2.weight"] = (latent, 2 * cout)
        enc[p + "style_2.bias"] = (latent,)
    for i in range(mapping_layers):
        mf[f"map_blocks.{i}.fc.weight"] = (latent, latent)
        mf[f"map_blocks.{i}.fc.bias"] = (latent,)
    for i in range(3):
        out = 2 * latent if i == 2 else latent
        md[f"map_blocks.{i}.weight"] = (out, latent)
        md[f"map_blocks.{i}.bias"] = (out,)
    return {"decoder": dec, "encoder": enc, "mapping_f": mf, "mapping_d": md,
            "dlatent_avg": {"buff": (2 * layer_count, latent)}}


def blur_kernel(c: int, dtype) -> torch.Tensor:
    f = torch.tensor([1.0, 2.0, 1.0], dtype=dtype)
    return (f[:, None] * f[None, :] / 16).view(1, 1, 3, 3).repeat(c, 1, 1, 1)


def random_original_state(shapes: dict[str, dict[str, tuple[int, ...]]], seed: int,
                          dtype=torch.float64) -> dict[str, dict[str, torch.Tensor]]:
    """Random tensors with the original's names, at the scales of trained weights: effective
    weights N(0, 2/fan_in) (style layers 1/fan_in, ToRGB small), non-zero biases and noise weights."""
    g = torch.Generator().manual_seed(seed)
    nets = {}
    for net, tensors in shapes.items():
        out = {}
        for name, shape in tensors.items():
            if name.endswith("blur.weight"):
                out[name] = blur_kernel(shape[0], dtype)
                continue
            t = torch.randn(shape, generator=g, dtype=dtype)
            if name.endswith("weight") and len(shape) >= 2:
                squared_gain = 1.0 if ".style_" in name and net == "decoder" else 2.0
                squared_gain = 0.03 ** 2 if "to_rgb" in name else squared_gain
                t = t * math.sqrt(squared_gain / math.prod(shape[1:]))
            elif name == "const":
                t = 1.0 + 0.3 * t
            elif name == "buff":
                t = t[:1].expand(shape).clone()
            else:
                t = 0.2 * t
            out[name] = t
        nets[net] = out
    return nets


def original_file(nets: dict[str, dict[str, torch.Tensor]], ema=True, training=True) -> dict:
    """The original's torch.save layout: {"models": {generator[_s], discriminator[_s], mapping_fl[_s],
    mapping_tl[_s], dlatent_avg}, "auxiliary": {...}}; the training copies are perturbed so the
    two sets differ."""
    names = {"decoder": "generator", "encoder": "discriminator", "mapping_f": "mapping_fl", "mapping_d": "mapping_tl"}
    models = {"dlatent_avg": nets["dlatent_avg"]}
    for net, entry in names.items():
        if ema:
            models[entry + "_s"] = nets[net]
        if training:
            models[entry] = {k: v if k.endswith("blur.weight") else v * 1.01 for k, v in nets[net].items()}
    return {"models": models, "auxiliary": {"scheduler": {"last_epoch": 3}}, "iteration": 1234}


# --- forward passes ------------------------------------------------------------------------------

def _lrelu(x):
    return F.leaky_relu(x, 0.2)


def _summed_shifts(w):
    w = F.pad(w, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def _instance_norm(x, eps):
    return F.instance_norm(x, eps=eps)


def _stats(x):
    m = x.mean(dim=[2, 3], keepdim=True)
    std = torch.sqrt(((x - m) ** 2).mean(dim=[2, 3], keepdim=True))
    return torch.cat([m, std], dim=1).flatten(1)


def mapping_f(sd, z):
    x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    i = 0
    while f"map_blocks.{i}.fc.weight" in sd:
        x = _lrelu(F.linear(x, sd[f"map_blocks.{i}.fc.weight"], sd[f"map_blocks.{i}.fc.bias"]))
        i += 1
    return x


def mapping_d(sd, w):
    x = w[:, None, :]
    i = 0
    while f"map_blocks.{i}.weight" in sd:
        x = F.linear(x, sd[f"map_blocks.{i}.weight"], sd[f"map_blocks.{i}.bias"])
        i += 1
    return x[:, 0, x.shape[2] // 2]


def _noise(x, weight, noise, layer):
    if noise is None:  # the original's noise=False branch
        s = math.sqrt(layer + 1)
        return x + s * torch.exp(-x * x / (2.0 * s * s)) / math.sqrt(2 * math.pi) * 0.8
    return torch.addcmul(x, weight, noise)


def _style_mod(x, style):
    style = style.view(style.shape[0], 2, x.shape[1], 1, 1)
    return x * (style[:, 0] + 1) + style[:, 1]


def _decode_block(sd, i, x, s1, s2, n1, n2):
    p = f"decode_block.{i}."
    if i > 0:
        w = sd[p + "conv_1.weight"]
        if 4 * 2 ** i >= FUSED_FROM:
            x = F.conv_transpose2d(x, _summed_shifts(w), stride=2, padding=1)
        else:
            x = F.conv2d(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), w, padding=1)
        x = F.conv2d(x, sd[p + "blur.weight"], groups=x.shape[1], padding=1)
    x = _noise(x, sd[p + "noise_weight_1"], n1, i) + sd[p + "bias_1"]
    x = _instance_norm(_lrelu(x), 1e-8)
    x = _style_mod(x, F.linear(s1, sd[p + "style_1.weight"], sd[p + "style_1.bias"]))
    x = F.conv2d(x, sd[p + "conv_2.weight"], padding=1)
    x = _noise(x, sd[p + "noise_weight_2"], n2, i) + sd[p + "bias_2"]
    x = _instance_norm(_lrelu(x), 1e-8)
    return _style_mod(x, F.linear(s2, sd[p + "style_2.weight"], sd[p + "style_2.bias"]))


def _to_rgb(sd, i, x):
    return F.conv2d(x, sd[f"to_rgb.{i}.to_rgb.weight"], sd[f"to_rgb.{i}.to_rgb.bias"])


def decoder(sd, styles, lod, blend, noise):
    """styles [N, L, latent]; noise: a list of 2·(lod+1) maps as the original's torch.randn calls
    would draw them ([1, 1, 4, 4] for the very first, since the constant has batch 1; [N, 1, H, W]
    after), or None for the original's noise=False."""
    noise = noise if noise is not None else [None] * (2 * (lod + 1))
    x = sd["const"]
    last = lod if blend == 1 else lod - 1
    for i in range(last + 1):
        x = _decode_block(sd, i, x, styles[:, 2 * i], styles[:, 2 * i + 1], noise[2 * i], noise[2 * i + 1])
    if blend == 1:
        return _to_rgb(sd, lod, x)
    previous = _to_rgb(sd, lod - 1, x)
    x = _decode_block(sd, lod, x, styles[:, 2 * lod], styles[:, 2 * lod + 1], noise[2 * lod], noise[2 * lod + 1])
    x = _to_rgb(sd, lod, x)
    return torch.lerp(F.interpolate(previous, size=x.shape[-1]), x, blend)


def _from_rgb(sd, j, x):
    x = _lrelu(F.conv2d(x, sd[f"from_rgb.{j}.from_rgb.weight"], sd[f"from_rgb.{j}.from_rgb.bias"]))
    return _lrelu(x)  # EncoderDefault.encode applies LeakyReLU again


def _encode_block(sd, j, x):
    p = f"encode_block.{j}."
    fused = x.shape[-1] >= FUSED_FROM
    x = _lrelu(F.conv2d(x, sd[p + "conv_1.weight"], padding=1) + sd[p + "bias_1"])
    stats_1 = _stats(x)
    x = _instance_norm(x, 1e-5)
    x = F.conv2d(x, sd[p + "blur.weight"], groups=x.shape[1], padding=1)
    if fused:
        x = F.conv2d(x, _summed_shifts(sd[p + "conv_2.weight"]) * 0.25, stride=2, padding=1)
    else:
        x = F.avg_pool2d(F.conv2d(x, sd[p + "conv_2.weight"], padding=1), 2, 2)
    x = _lrelu(x + sd[p + "bias_2"])
    stats_2 = _stats(x)
    x = _instance_norm(x, 1e-5)
    w1 = F.linear(stats_1, sd[p + "style_1.weight"], sd[p + "style_1.bias"])
    w2 = F.linear(stats_2, sd[p + "style_2.weight"], sd[p + "style_2.bias"])
    return x, w1, w2


def encoder(sd, images, lod, blend, layer_count):
    """images [N, C, R, R] → w [N, latent] (the original returns [N, 1, latent])."""
    top = layer_count - lod - 1
    x, w1, w2 = _encode_block(sd, top, _from_rgb(sd, top, images))
    if blend == 1:
        w = w1 + w2
    else:
        w = w1 * blend + w2 * blend
        x = torch.lerp(_from_rgb(sd, top + 1, F.avg_pool2d(images, 2, 2)), x, blend)
    for j in range(top + 1, layer_count):
        x, w1, w2 = _encode_block(sd, j, x)
        w = w + (w1 + w2)
    return w
