"""Samples one API process with py-spy (GIL holder only) and sums stacks into top frames."""

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    return shutil.which("py-spy") or (
        str(Path(sys.executable).parent / "py-spy")
        if (Path(sys.executable).parent / "py-spy").exists()
        else None
    )


def top_frames(collapsed: Path, n: int = 25) -> str:
    """Inclusive share of samples per frame (a frame counted once per stack), and self share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    out = [f"{total} samples", "", "inclusive:"]
    out += [f"{c / total:6.1%}  {f}" for f, c in inclusive.most_common(n)]
    out += ["", "self:"]
    out += [f"{c / total:6.1%}  {f}" for f, c in own.most_common(n)]
    return "\n".join(out) + "\n"


def profile_worker(pid: int, seconds: float, results: Path) -> str:
    tool = py_spy()
    if tool is None:
        return "py-spy not installed (`pip install py-spy`): profile skipped"
    raw = results / "profile.txt"
    for fmt, out in (("raw", raw),):
        subprocess.run(
            [
                tool,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                fmt,
                "--output",
                str(out),
                "--nonblocking",
                # Only the thread holding the GIL: where the CPU goes, not threads waiting.
                "--gil",
            ],
            capture_output=True,
            timeout=seconds + 60,
            check=False,
        )
    if not raw.exists():
        return "py-spy produced no profile (ptrace not permitted?)"
    (results / "profile_top.txt").write_text(top_frames(raw))
    return f"py-spy profile of worker {pid}: {raw} (top frames in {results / 'profile_top.txt'})"
