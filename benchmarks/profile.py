"""Sample a command with py-spy (the thread holding the GIL) and sum the samples per function.

    python -m benchmarks.profile OUT.txt -- python -m benchmarks.ipnews_run --config … --db …

py-spy sees the worker threads the pipeline parses in (pyinstrument only sees
the thread it started on); ``--gil`` keeps only the samples of the thread that
holds the GIL, so the shares are shares of the CPU time of Python work (a
thread waiting for the GIL inside lxml or the thread pool's queue would
otherwise count as busy). The raw collapsed stacks go to OUT.raw; OUT.txt
gets two tables: the functions by inclusive share of the samples (time spent
in the function or anything it called) and by self share, plus a table by
package (aggregator, feedparser, bs4, sqlite, httpx, asyncio …). Needs
``pip install py-spy`` in the venv.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _package(path: str) -> str:
    """aggregator.<module>, or the top-level package of anything else (py-spy prints paths
    relative to their sys.path entry when it can)."""
    path = _short(path)
    if path.startswith("aggregator/"):
        return "aggregator." + Path(path).stem
    if path.startswith("<"):
        return path
    return path.split("/", 1)[0].removesuffix(".py")


def aggregate(raw: Path, top: int = 40, within: str | None = None) -> str:
    """The tables; ``within`` keeps only the stacks that pass through a frame containing that text."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        if within and within not in stack:
            continue
        total += n
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            if match:
                frames.append((match["func"], match["file"]))
        if not frames:
            continue
        seen = set()
        for func, file in frames:
            key = f"{_short(file)}:{func}"
            if key not in seen:
                seen.add(key)
                inclusive[key] += n
        func, file = frames[-1]
        self_time[f"{_short(file)}:{func}"] += n
        packages[_package(file)] += n
    if not total:
        return "no samples\n"

    def table(title: str, counter: Counter[str]) -> str:
        rows = [f"{title} ({total} samples)", f"{'share':>7}  function"]
        rows += [f"{100 * n / total:6.1f}%  {name}" for name, n in counter.most_common(top)]
        return "\n".join(rows) + "\n"

    return "\n".join([table("Inclusive", inclusive), table("Self", self_time),
                      table("Self, by package or aggregator module", packages)])


def _short(path: str) -> str:
    for marker in ("site-packages/", "/aggregator/", "/benchmarks/"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return ("aggregator/" + tail) if marker == "/aggregator/" else (
                "benchmarks/" + tail if marker == "/benchmarks/" else tail)
    if "/lib/python3" in path:
        return path.split("/lib/python3", 1)[1].split("/", 1)[1]
    return path


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def record(out: Path, command: list[str], rate: int = 100, gil: bool = True, **popen) -> subprocess.CompletedProcess:
    """Run ``command`` under py-spy; writes OUT.raw and OUT (the tables); returns the completed process."""
    spy = py_spy()
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    raw = out.with_suffix(".raw")
    options = ["--gil"] if gil else []
    done = subprocess.run([spy, "record", "--format", "raw", "--rate", str(rate), "--output", str(raw), *options,
                           "--", *command], capture_output=True, text=True, **popen)
    if raw.exists():
        out.write_text(aggregate(raw), encoding="utf-8")
    return done


def main() -> None:
    args = sys.argv[1:]
    if "--" not in args or args.index("--") != 1:
        sys.exit(__doc__)
    out = Path(args[0])
    done = record(out, args[2:])
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr[-2000:])
    print(out.read_text() if out.exists() else "no profile written")


if __name__ == "__main__":
    main()
