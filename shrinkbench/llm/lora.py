"""Recovery fine-tune with LoRA adapters (through `peft`), merged into the weights with the masks.

After pruning, `finetune_method = "lora"` trains low-rank adapters on the layers named by
`lora_targets` (module names or their last parts, as peft's `target_modules` matches them:
`q_proj` matches every `...self_attn.q_proj`) while every weight of the model stays frozen
(Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models"; the recovery of Wanda's
`lora_ft` and LLM-Pruner's `post_training`):

    W' = W + (alpha / r) * B A,   A: r x in, B: out x r (B starts at zero, A Kaiming-uniform)

`finetune_steps` AdamW steps (lr `finetune_lr`, no weight decay) on batches of
`finetune_batch` train windows the run seed draws (the same draws as the full fine-tune),
dropout `lora_dropout` on the adapters' input. The adapters are then merged WITH the mask of
their layer:

    W_merged = W + keep * (alpha / r) * B A

so a pruned weight stays exactly zero (0 + 0 * delta) and the pruned model's sparsity is the
one measured before the fine-tune; a target that is not a pruned layer is merged whole. During
training the adapters' product is dense (as in the references' code), so the merged model is
not exactly the one trained: its `post` perplexity is measured after the masked merge. The
adapters' initialisation and dropout draw from the run seed (purpose `lora`).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

from shrinkbench.core.errors import ConfigError, TrainingDivergedError


def check_targets(targets: tuple[str, ...], linears: tuple[str, ...], where: str) -> None:
    """Every target must name (or end a name of) an nn.Linear of the model: a one-line ConfigError."""
    for target in targets:
        if not any(name == target or name.endswith("." + target) for name in linears):
            parts = sorted({n.rsplit(".", 1)[-1] for n in linears})
            raise ConfigError(f"lora_targets: model {where} has no linear layer named {target!r}; its linear layers "
                              f"end in {', '.join(parts)}")


def lora_recover(model, masks: dict[str, torch.Tensor] | None, train_ids, cfg, device, record: dict) -> dict[str, Any]:
    """Train LoRA adapters (module docstring), merge them with the masks, leave the plain model
    (no peft wrappers) in `model`; the budget's facts (trainable parameters, layers adapted)."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    from shrinkbench.core.seeds import derive_seed, generator
    from shrinkbench.llm.text import calibration_windows

    names = {id(m): n for n, m in model.named_modules()}
    torch.manual_seed(derive_seed(cfg.seed, "lora"))  # inside the run's forked RNG: A's init and dropout
    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=list(cfg.lora_targets), bias="none")
    with warnings.catch_warnings():  # peft asks transformers 5 a deprecated question; not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        wrapped = get_peft_model(model, config)
    adapted = [m for m in wrapped.modules() if isinstance(m, LoraLayer)]
    params = [p for p in wrapped.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    optimizer = torch.optim.AdamW(params, lr=cfg.finetune_lr, weight_decay=0.0)
    gen = generator(cfg.seed, "finetune")
    wrapped.train()
    try:
        for step in range(cfg.finetune_steps):
            ids = calibration_windows(train_ids, cfg.seq_len, cfg.finetune_batch, gen, cfg.dataset).to(device)
            loss = wrapped(input_ids=ids, labels=ids, use_cache=False).loss
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"LoRA recovery: loss became {float(loss.detach())} at step {step + 1} "
                                            f"(lr {cfg.finetune_lr}); lower finetune_lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            record["epochs"].append({"phase": "recovery", "method": "lora", "step": step + 1, "epoch": 0,
                                     "train_loss": float(loss.detach()), "lr": cfg.finetune_lr})
        with torch.no_grad():
            deltas = [(m.get_base_layer(), m.get_delta_weight("default")) for m in adapted]
    finally:
        wrapped.eval()
    wrapped.unload()  # the original modules back in place, unmerged
    merged = merge_with_masks(deltas, names, masks or {})
    model.eval()
    return {"method": "lora", "trainable_params": trainable, "adapted_layers": len(adapted),
            "masked_merges": merged, "rank": cfg.lora_rank, "alpha": cfg.lora_alpha}


def merge_with_masks(deltas, names: dict[int, str], masks: dict[str, torch.Tensor]) -> int:
    """W += keep * delta for every (layer, delta) (keep = 1 where the layer has no mask); the
    number of layers merged under a mask. A non-finite delta fails the run."""
    count = 0
    with torch.no_grad():
        for layer, delta in deltas:
            name = names.get(id(layer), "?")
            if not torch.isfinite(delta).all():
                raise TrainingDivergedError(f"LoRA recovery: the adapters of {name} hold NaN or inf; lower "
                                            f"finetune_lr")
            keep = masks.get(name)
            if keep is not None:
                delta = delta * keep.to(delta.device, delta.dtype)
                count += 1
            layer.weight.add_(delta.to(layer.weight.dtype))
    return count
