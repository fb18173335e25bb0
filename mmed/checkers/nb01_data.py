"""Checker for 01_data (see :mod:`mmed.checks`).

One function per notebook, registered by stem. Each returns a list of problems.
"""

from __future__ import annotations

from typing import Any

from ..checks import check_rate, need, register_checker


@register_checker("01_data")
def check_01_data(m: dict[str, Any]) -> list[str]:
    """01_data: synthetic counts and, when real data was used, the VQA-RAD counts."""
    p: list[str] = []
    n = need(m, "synthetic.n_items", int, p)
    per = need(m, "synthetic.per_specialty", dict, p)
    if n is not None and per is not None:
        if sum(per.values()) != n:
            p.append(f"synthetic.per_specialty sums to {sum(per.values())}, not n_items={n}")
        if len(per) != 7:
            p.append(f"synthetic covers {len(per)} specialties, expected 7")
    real = need(m, "real_data", bool, p)
    if real:
        mevf = need(m, "vqa_rad.mevf_test.n_items", int, p)
        closed = need(m, "vqa_rad.mevf_test.n_closed", int, p)
        if mevf is not None and closed is not None and not 0 < closed <= mevf:
            p.append(f"vqa_rad closed {closed} not in (0, {mevf}]")
        shared = need(m, "vqa_rad.leakage.shared_images", int, p)
        if shared is not None and shared < 0:
            p.append("negative leakage count")
    return p
