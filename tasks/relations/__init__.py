"""Item-item relations: one-hop transitions, multi-hop co-occurrence, semantic neighbours."""
