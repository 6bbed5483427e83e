"""Semantic IDs: residual quantization of item embeddings, versions, and the SID trie."""
