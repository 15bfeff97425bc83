"""Summarise py-spy's collapsed stacks (`python -m bench --profile DIR` writes them):

    python -m bench.profile DIR/01-declare-0-warroom.txt [--top 30] [--match storage/]

Prints the share of busy samples (idle waits in the event loop's selector left out) per function, inclusive
(anywhere on the stack) and self (the leaf), so the hot path shows without a flame-graph viewer.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = ("select (selectors.py", "poll (selectors.py", "_run_once (asyncio/base_events.py", "epoll")


def _frame(raw: str) -> str:
    # py-spy: "function (path/to/file.py:line)"; keep the function and the file's last two parts, drop the line
    match = re.match(r"(.*) \((.*?):\d+\)$", raw)
    if not match:
        return raw
    name, path = match.groups()
    parts = path.split("/")
    short = "/".join(parts[-2:]) if "site-packages" not in path else "/".join(
        parts[parts.index("site-packages") + 1:][:1] + parts[-1:])
    return f"{name} ({short})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", help="only inclusive rows whose frame contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    busy = idle = 0
    for line in Path(args.file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any(frames[-1].startswith(i) or i in frames[-1] for i in IDLE[:2]) or frames[-1].startswith("epoll"):
            idle += n
            continue
        busy += n
        named = [_frame(f) for f in frames]
        for frame in set(named):
            inclusive[frame] += n
        leaf[named[-1]] += n
    print(f"{busy} busy samples, {idle} idle ({busy / max(1, busy + idle):.0%} busy)")
    print("\ninclusive:")
    rows = [(f, c) for f, c in inclusive.most_common() if not args.match or args.match in f]
    for frame, count in rows[:args.top]:
        print(f"  {count / busy:6.1%}  {frame}")
    print("\nself:")
    for frame, count in leaf.most_common(args.top):
        print(f"  {count / busy:6.1%}  {frame}")


if __name__ == "__main__":
    main()
