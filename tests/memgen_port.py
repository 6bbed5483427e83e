"""A literal port of MemGen's instance rules, as test oracles.

Source: github.com/Jamesding000/MemGen-GR at 2bbe779, `mem_gen_categorizer.py`
(`FineGrainedEvaluator`) and `token_mem_categorizer.py` (`PrefixGramMemorizationEvaluator`).
Same loops, same sets, same label strings; only the tokenizer is replaced by a dict of tokens.
"""

from __future__ import annotations

from collections import defaultdict


class FineGrainedEvaluator:
    def __init__(self, train_item_seqs, max_hop=4):
        self.max_hop = max_hop
        self.logic2judger = {
            "substitutability": self.has_substitutability,
            "symmetry": self.has_symmetry,
            "transitivity": self.has_transitivity,
            "2nd-symmetry": self.has_2nd_symmetry,
        }
        self.rules = {hop: defaultdict(set) for hop in range(1, max_hop + 1)}
        self.reverse_rules = {hop: defaultdict(set) for hop in range(1, max_hop + 1)}
        for item_seq in train_item_seqs:
            for i in range(1, len(item_seq)):
                v = item_seq[i]
                for ctx_length in range(1, self.max_hop + 1):
                    if i - ctx_length < 0:
                        continue
                    u = item_seq[i - ctx_length]
                    for hop in range(ctx_length, self.max_hop + 1):
                        self.rules[hop][u].add(v)
                        self.reverse_rules[hop][v].add(u)

    def has_memorization(self, u, v):
        return v in self.rules[1][u]

    def has_substitutability(self, u, v, hop):
        return v in self.rules[hop][u]

    def has_symmetry(self, u, v, hop):
        return u in self.rules[hop][v]

    def has_transitivity(self, u, v, hop):
        return len(self.rules[hop][u].intersection(self.reverse_rules[hop][v])) > 0

    def has_2nd_symmetry(self, u, v, hop):
        if self.rules[hop][v].intersection(self.reverse_rules[hop][u]):
            return True
        if self.rules[hop][v].intersection(self.rules[hop][u]):
            return True
        if self.reverse_rules[hop][v].intersection(self.reverse_rules[hop][u]):
            return True
        return False

    def get_case_labels(self, item_seq):
        labels = set()
        if len(item_seq) < 2:
            return labels
        v = item_seq[-1]
        if self.has_memorization(item_seq[-2], v):
            labels.add("memorization")
            return labels
        for logic, judger in self.logic2judger.items():
            min_hop = 2 if logic == "substitutability" else 1
            for hop in range(min_hop, self.max_hop + 1):
                if len(item_seq) - hop - 1 < 0:
                    continue
                found_at_this_hop = False
                for dist in range(1, hop + 1):
                    u = item_seq[-dist - 1]
                    if judger(u, v, hop):
                        labels.add(f"{logic}_{hop}")
                        found_at_this_hop = True
                        break
                if found_at_this_hop:
                    break
        if not labels:
            labels.add("uncategorized")
        else:
            labels.add("generalization")
        return labels


class PrefixGramMemorizationEvaluator:
    def __init__(self, train_item_seqs, item2tokens, prefix_length=4, max_hop=4):
        self.item2tokens = item2tokens
        self.prefix_length = prefix_length
        self.max_hop = max_hop
        self.rules = {hop: defaultdict(set) for hop in range(1, max_hop + 1)}
        for item_seq in train_item_seqs:
            for i in range(1, len(item_seq)):
                target_prefix = self._extract_prefix(self._item_tokens(item_seq[i]))
                if not target_prefix:
                    continue
                for ctx_length in range(1, self.max_hop + 1):
                    j = i - ctx_length
                    if j < 0:
                        continue
                    context_prefix = self._extract_prefix(self._item_tokens(item_seq[j]))
                    if not context_prefix:
                        continue
                    for hop in range(ctx_length, self.max_hop + 1):
                        self.rules[hop][context_prefix].add(target_prefix)

    def _item_tokens(self, item):
        return list(self.item2tokens.get(item, []))

    def _extract_prefix(self, tokens):
        if not tokens:
            return None
        if len(tokens) < self.prefix_length:
            return tuple(tokens)
        return tuple(tokens[: self.prefix_length])

    def get_case_labels(self, item_seq):
        labels = set()
        if len(item_seq) < 2:
            return labels
        target_prefix = self._extract_prefix(self._item_tokens(item_seq[-1]))
        if not target_prefix:
            return labels
        for hop in range(1, self.max_hop + 1):
            found_at_this_hop = False
            for dist in range(1, hop + 1):
                if len(item_seq) - dist - 1 < 0:
                    continue
                u_prefix = self._extract_prefix(self._item_tokens(item_seq[-dist - 1]))
                if not u_prefix:
                    continue
                if target_prefix in self.rules[hop][u_prefix]:
                    labels.add(f"memorization_{hop}")
                    found_at_this_hop = True
                    break
            if found_at_this_hop:
                break
        if not labels:
            labels.add("unseen")
        return labels
