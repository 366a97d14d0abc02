"""A LLaMA whose blocks may differ in key/value heads and MLP width: what a structurally
pruned LLaMA needs where the kept counts differ between blocks.

This file is self-contained (it imports only torch and transformers): `save_pretrained` copies
it beside the weights, so the pruned model loads anywhere with plain transformers,
`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)`, without shrinkbench.

Config: LLaMA's, plus per block `layer_kv_heads` (key/value heads; query heads are that times
num_attention_heads // num_key_value_heads, unchanged), `layer_intermediate` (MLP channels),
`layer_o_bias` / `layer_down_bias` (whether o_proj / down_proj carry a bias, as a FLAP-style
compensation adds). `head_dim` is stated explicitly. Everything else is LlamaForCausalLM.
"""
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM


class PrunedLlamaConfig(LlamaConfig):
    model_type = "pruned_llama"

    def __init__(self, layer_kv_heads=None, layer_intermediate=None, layer_o_bias=None, layer_down_bias=None,
                 **kwargs):
        super().__init__(**kwargs)
        n = self.num_hidden_layers
        self.layer_kv_heads = list(layer_kv_heads or [self.num_key_value_heads] * n)
        self.layer_intermediate = list(layer_intermediate or [self.intermediate_size] * n)
        self.layer_o_bias = list(layer_o_bias or [bool(self.attention_bias)] * n)
        self.layer_down_bias = list(layer_down_bias or [bool(self.mlp_bias)] * n)
        for name in ("layer_kv_heads", "layer_intermediate", "layer_o_bias", "layer_down_bias"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one entry per block ({n}), got {len(getattr(self, name))}")


class PrunedLlamaForCausalLM(LlamaForCausalLM):
    config_class = PrunedLlamaConfig

    def __init__(self, config):
        super().__init__(config)
        hidden, d = config.hidden_size, config.head_dim
        r = config.num_attention_heads // config.num_key_value_heads
        for i, block in enumerate(self.model.layers):
            kv, inter = config.layer_kv_heads[i], config.layer_intermediate[i]
            attn, mlp = block.self_attn, block.mlp
            qkv_bias, mlp_bias = bool(config.attention_bias), bool(config.mlp_bias)
            attn.q_proj = nn.Linear(hidden, kv * r * d, bias=qkv_bias)
            attn.k_proj = nn.Linear(hidden, kv * d, bias=qkv_bias)
            attn.v_proj = nn.Linear(hidden, kv * d, bias=qkv_bias)
            attn.o_proj = nn.Linear(kv * r * d, hidden, bias=bool(config.layer_o_bias[i]))
            mlp.gate_proj = nn.Linear(hidden, inter, bias=mlp_bias)
            mlp.up_proj = nn.Linear(hidden, inter, bias=mlp_bias)
            mlp.down_proj = nn.Linear(inter, hidden, bias=bool(config.layer_down_bias[i]))
        self.post_init()


PrunedLlamaConfig.register_for_auto_class()
PrunedLlamaForCausalLM.register_for_auto_class("AutoModelForCausalLM")
