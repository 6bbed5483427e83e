"""The LLM: base model, prompts, IIRG instruction data and its audit, fine-tuning, decoding
and scoring."""
