"""A random LoRA adapter for the vLLM checks (test helper, not product code)."""

from __future__ import annotations

from pathlib import Path


def make_test_adapter(base_model_dir: Path, out_dir: Path, rank: int = 8, seed: int = 0) -> Path:
    """A random LoRA adapter (non-zero B, so it changes the outputs) for checking adapter serving end to end."""
    if (out_dir / "adapter_config.json").exists():
        return out_dir
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.2)  # visible in the rankings without turning the model into noise
    model.save_pretrained(str(out_dir))
    return out_dir
