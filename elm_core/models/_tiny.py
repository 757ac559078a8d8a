"""`tiny`: a randomly initialised model of the Qwen2 family, built locally in seconds.

For tests and quick trials: the whole pipeline (prompts, batching, generation, diff parsing, fine-tuning)
runs end to end, while what it writes is noise. A byte-level BPE tokenizer is trained on the seed programs,
so any text encodes; the chat template is ChatML, as Qwen's.
"""

from __future__ import annotations

from pathlib import Path

from elm_core.sodarace import SEED_NAMES, seed_source

VOCAB_SIZE = 512
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    """Writes a tiny random model and its tokenizer to `directory` (deterministic given `seed`)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from elm_core.models._hf import quiet_transformers

    quiet_transformers()
    directory.mkdir(parents=True, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    corpus = [seed_source(name) for name in SEED_NAMES] * 4
    trainer.train_from_iterator(corpus, vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=trainer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=_SPECIAL[1:],
    )  # fmt: skip
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
