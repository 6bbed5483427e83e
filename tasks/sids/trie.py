"""The trie of all items' SID token sequences, as dense per-level tables (see llm/decoding.py).

Held as arrays so that the tokens allowed after a whole batch of beam prefixes are one gather,
with no per-beam Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch


class SidTrie:
    """All items' SID token sequences as a trie with dense per-level transition tables.

    Nodes at depth d (prefixes of length d, d = 0..L) are numbered 0..n_d-1 in lexicographic order
    of their prefixes; depth 0 is the single root. For each level l = 0..L-1:

    * ``tokens[l]``: the sorted distinct token ids that occur at position l (K_l of them);
    * ``children[l]``: int array [n_l, K_l], the depth-(l+1) child of node n through token
      ``tokens[l][k]``, or -1 where the trie has no such edge.

    Per depth d = 1..L: ``node_token[d]`` (last token of each node), ``node_parent[d]`` (its
    depth-(d-1) parent) and ``prefixes[d]`` ([n_d, d] tokens). Leaves (depth L) are items:
    ``leaf_item`` [n_L] gives the item id of each leaf, ``item_leaf`` the leaf of each item in the
    order the items were given.
    """

    def __init__(
        self,
        item_ids: np.ndarray,
        prefixes: list[np.ndarray],
        node_parent: list[np.ndarray],
        tokens: list[np.ndarray],
        children: list[np.ndarray],
        item_leaf: np.ndarray,
    ) -> None:
        self.item_ids = item_ids
        self.prefixes = prefixes  # index d: [n_d, d]; index 0 is [1, 0]
        self.node_parent = node_parent  # index d: [n_d]; index 0 is [-1]
        self.tokens = tokens  # index l: [K_l]
        self.children = children  # index l: [n_l, K_l]
        self.item_leaf = item_leaf
        self.depth = len(tokens)
        self.leaf_item = np.empty(len(item_ids), np.int64)
        self.leaf_item[item_leaf] = item_ids
        self.node_token = [np.empty(0, np.int64)] + [p[:, -1].copy() for p in prefixes[1:]]
        # ancestors[d]: [n_d, d], column j-1 = the depth-j ancestor (the last column is the node)
        self.ancestors: list[np.ndarray] = [np.zeros((1, 0), np.int64)]
        for d in range(1, self.depth + 1):
            prev = self.ancestors[d - 1][node_parent[d]]
            self.ancestors.append(
                np.concatenate([prev, np.arange(len(node_parent[d]))[:, None]], 1)
            )
        order = np.argsort(item_ids, kind="stable")
        self._sorted_items, self._sorted_leaf = item_ids[order], item_leaf[order]
        self._torch: dict[tuple[str, str], Any] = {}

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def from_token_ids(cls, item_ids: Sequence[int] | np.ndarray, token_ids: np.ndarray) -> SidTrie:
        """Build from item ids and their SID token ids [n_items, L] (every SID the same length)."""
        items = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        toks = np.asarray(token_ids, dtype=np.int64)
        if toks.ndim != 2 or toks.shape[0] != len(items):
            raise ValueError(f"token_ids must be [n_items={len(items)}, L], got {toks.shape}")
        if len(items) == 0 or toks.shape[1] == 0:
            raise ValueError("a trie needs at least one item and L >= 1")
        if (toks < 0).any():
            raise ValueError("token ids must be non-negative")
        if len(np.unique(items)) != len(items):
            raise ValueError("item ids must be unique")
        n, depth = toks.shape
        prefixes = [np.zeros((1, 0), np.int64)]
        node_parent = [np.full(1, -1, np.int64)]
        item_node = [np.zeros(n, np.int64)]  # depth-d node of every item
        for d in range(1, depth + 1):
            uniq, inv = np.unique(toks[:, :d], axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            parent = np.empty(len(uniq), np.int64)
            parent[inv] = item_node[d - 1]
            prefixes.append(uniq)
            node_parent.append(parent)
            item_node.append(inv)
        if len(prefixes[depth]) != n:
            _, first, counts = np.unique(item_node[depth], return_index=True, return_counts=True)
            dup = items[first[counts > 1]][:5].tolist()
            raise ValueError(
                f"{n - len(prefixes[depth])} items share a SID with another item "
                f"(e.g. items {dup} have duplicates); SIDs must be unique"
            )
        tokens, children = [], []
        for level in range(depth):
            tok = np.unique(toks[:, level])
            child_tok = prefixes[level + 1][:, -1]
            table = np.full((len(prefixes[level]), len(tok)), -1, np.int64)
            table[node_parent[level + 1], np.searchsorted(tok, child_tok)] = np.arange(
                len(child_tok)
            )
            tokens.append(tok)
            children.append(table)
        return cls(items, prefixes, node_parent, tokens, children, item_node[depth])

    # ---------------------------------------------------------------------------- accessors
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def num_nodes(self, depth: int) -> int:
        return len(self.prefixes[depth])

    @property
    def max_token(self) -> int:
        return int(max(t.max() for t in self.tokens))

    def leaves_of(self, items: Iterable[int]) -> np.ndarray:
        """Leaf ids of the given item ids; items not in the trie are dropped."""
        q = np.fromiter((int(i) for i in items), np.int64)
        if len(q) == 0 or len(self._sorted_items) == 0:
            return np.empty(0, np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_items, q), len(self._sorted_items) - 1)
        hit = self._sorted_items[pos] == q
        return self._sorted_leaf[pos[hit]]

    def t(
        self, name: str, index: int | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """A table as a torch tensor on `device` (cached): e.g. t("children", 2)."""
        key = (f"{name}:{index}", str(device))
        if key not in self._torch:
            arr = getattr(self, name) if index is None else getattr(self, name)[index]
            self._torch[key] = torch.as_tensor(np.ascontiguousarray(arr), device=device)
        return self._torch[key]

    def children_of(self, level: int, nodes: torch.Tensor) -> torch.Tensor:
        """[..., K_level] child node ids (or -1) of depth-`level` nodes (-1 = dead: no children)."""
        table = self.t("children", level, nodes.device)
        child = table[nodes.clamp(min=0)]
        return child.masked_fill((nodes < 0).unsqueeze(-1), -1)

    def allowed(self, level: int, nodes: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """Bool mask [batch, vocab_size]: tokens the trie allows after each depth-`level` node."""
        if self.max_token >= vocab_size:
            raise ValueError(f"trie token {self.max_token} outside a vocabulary of {vocab_size}")
        nodes = nodes.reshape(-1)
        mask = torch.zeros(len(nodes), vocab_size, dtype=torch.bool, device=nodes.device)
        mask[:, self.t("tokens", level, nodes.device)] = self.children_of(level, nodes) >= 0
        return mask

    def __repr__(self) -> str:
        sizes = [self.num_nodes(d) for d in range(self.depth + 1)]
        return f"SidTrie(items={self.n_items}, depth={self.depth}, nodes per depth={sizes})"
