"""A LLaMA model computed in true float64: the exact reference that compaction is checked against.

`model.double()` alone is not float64: transformers' `LlamaRMSNorm` casts its input to float32
to normalise it, and `LlamaRotaryEmbedding` computes its frequencies and angles in float32,
whatever the model's dtype; a float64 model so made carries float32's rounding (~1e-7
relative) into every block. `float64_reference(model)` returns a float64 copy whose norms and
rotary embeddings compute in float64 too (bound on that copy's modules only; nothing global is
patched), so two mathematically equal models differ by float64 rounding (~1e-12 on SmolLM2's
logits) and a float32 model's error can be measured against it.
"""
from __future__ import annotations

import copy
import types

import torch


def _norm_forward(self, x):
    return self.weight.to(x.dtype) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


def _rope_forward(self, x, position_ids):
    freqs = position_ids[..., None].to(x.dtype) * self.inv_freq.to(x.dtype)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling


def _inv_freq(config) -> torch.Tensor:
    """RoPE's default frequencies base^(-2i/d) (Su et al. 2021), in float64."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    base = config.rope_parameters["rope_theta"]
    return 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


@torch.no_grad()
def float64_reference(model):
    """A float64 copy of a LLaMA `model` whose RMSNorms and default rotary embedding compute in
    float64 (see the module docstring); other rotary scalings are refused with a ValueError."""
    model = copy.deepcopy(model).double()
    for module in model.modules():
        kind = type(module).__name__
        if kind == "LlamaRMSNorm":
            module.forward = types.MethodType(_norm_forward, module)
        elif kind == "LlamaRotaryEmbedding":
            if module.rope_type != "default":
                raise ValueError(f"float64_reference knows RoPE's default frequencies, not {module.rope_type!r}")
            module.inv_freq = _inv_freq(module.config)
            module.forward = types.MethodType(_rope_forward, module)
    return model.eval()
