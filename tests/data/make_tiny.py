"""Generate tests/data/tiny.data: a small synthetic rating file in MovieLens-100K's u.data layout.

Users and items fall into three communities; a user rates mostly items of its own community, so a backbone
trained on it beats a popularity ranking and the tests can check learning, not just shapes. Run it to
regenerate the committed file (the tiny config pins its sha256).
"""

from pathlib import Path

import numpy as np

N_USERS, N_ITEMS, COMMUNITIES, PER_USER = 90, 60, 3, 14


def main() -> None:
    rng = np.random.default_rng(7)
    user_comm = np.arange(N_USERS) % COMMUNITIES
    item_comm = np.arange(N_ITEMS) % COMMUNITIES
    lines = []
    for user in range(N_USERS):
        own = np.flatnonzero(item_comm == user_comm[user])
        other = np.flatnonzero(item_comm != user_comm[user])
        k_own = rng.integers(PER_USER // 2, PER_USER + 1)
        items = np.concatenate([rng.choice(own, k_own, replace=False), rng.choice(other, 3, replace=False)])
        for item in items:
            lines.append(f"{user + 1}\t{item + 1}\t{rng.integers(1, 6)}\t{880000000 + rng.integers(0, 10**6)}")
    Path(__file__).with_name("tiny.data").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
