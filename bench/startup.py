"""Start-up: from `voronka run` to the first handled update, with 400 employees whose
commands menus did not change since the last start.

    .venv/bin/python bench/startup.py [--staff 400] [--rounds 5] [--latency 0.05]

The real process (the `voronka` console script, this checkout first on PYTHONPATH) against
tests/fake_bot_api.py (a Bot API over HTTP on 127.0.0.1, each answer `--latency` seconds
late like a round trip to api.telegram.org; nothing else is contacted), on SQLite files.
Before each start a "/menu" from the admin waits in getUpdates; a start is timed from the
exec to the fake server receiving the answer (sendMessage), then the process is killed
(SIGKILL: nothing after the first answer is counted).

- subject: `--staff` managers + the admin, menus already set by an earlier start;
- floor: the same process with the admin alone (menus set too): process start, imports,
  schema check, getMe, first poll, one update -- what any start must do;
- imports: a Python process that only imports what `voronka run` imports (and builds the
  routers), same interpreter and environment: the part of any start that is not start-up
  work proper (subject - imports = migrations check, getMe, menus, scheduler, first update).

Runs rotate (imports, floor, subject, then the reverse order, ...). Prints per variant the
median and the p10-p90 spread of the wall time and of the process's CPU time (user + sys,
from the exit status: robust to a busy machine), the setMyCommands calls of the timed
starts (0 expected), subject / floor and subject - imports. One untimed first start per
database sets the menus (its calls are printed: 1 + staff + 2 default menus).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.button_press import quantile
from tests.conftest import build_database
from tests.fake_bot_api import FakeBotApi
from tests.integration.polling_kit import (
    ADMIN_ID,
    Runs,
    add_staff,
    answered,
    calls_since,
    polled_since,
    process_env,
    wait_for,
)

START_TIMEOUT = 180.0
NAMES = ("imports", "floor", "subject")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timed_start(api: FakeBotApi, runs: Runs) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, setMyCommands calls) from exec to the first answer."""
    await api.push_text(ADMIN_ID, "/menu")
    cpu = children_cpu()
    started = await runs.start()
    await wait_for(answered(api, ADMIN_ID, started), START_TIMEOUT, "the first answer")
    wall = time.monotonic() - started
    await runs.stop(signal.SIGKILL)
    return wall, children_cpu() - cpu, calls_since(api, "setMyCommands", started)


# os._exit: no interpreter teardown (the timed starts are SIGKILLed, they have none either)
IMPORTS = (
    "import os, bot.cli, bot.polling; from handlers.routers import routers; routers(); os._exit(0)"
)


async def timed_imports(env: dict[str, str]) -> tuple[float, float, int]:
    cpu = children_cpu()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", IMPORTS, env=env)
    await proc.wait()
    return time.monotonic() - started, children_cpu() - cpu, 0


async def prepared(api: FakeBotApi, workdir: Path, template: Path, staff: int) -> Runs:
    """A database with `staff` managers whose menus an untimed first start has set."""
    db = workdir / "voronka.db"
    await asyncio.to_thread(os.makedirs, workdir, exist_ok=True)
    await asyncio.to_thread(shutil.copyfile, template, db)
    await add_staff(db, staff)
    runs = Runs(process_env(api, db), workdir)
    started = await runs.start()
    await wait_for(polled_since(api, started), START_TIMEOUT, "the first start")
    menus = calls_since(api, "setMyCommands", started)
    code = await runs.stop(signal.SIGTERM)
    print(f"  first start, {staff} staff + admin: {menus} setMyCommands calls (exit {code})")
    return runs


def line(name: str, walls: list[float], cpus: list[float], menus: list[int]) -> str:
    return (
        f"  {name:<8} wall median {statistics.median(walls):6.2f} s"
        f" (p10-p90 {quantile(walls, 0.1):.2f}-{quantile(walls, 0.9):.2f})"
        f"   cpu median {statistics.median(cpus):5.2f} s"
        f" (p10-p90 {quantile(cpus, 0.1):.2f}-{quantile(cpus, 0.9):.2f})"
        f"   setMyCommands {sum(menus)}"
    )


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="voronka-startup-") as tmp:
        base = Path(tmp)
        template = base / "template.db"
        await build_database(f"sqlite+aiosqlite:///{template}")
        latency = args.latency
        async with (
            FakeBotApi(latency=latency) as floor_api,
            FakeBotApi(latency=latency) as subject_api,
        ):
            floor = await prepared(floor_api, base / "floor", template, 0)
            subject = await prepared(subject_api, base / "subject", template, args.staff)
            results: dict[str, tuple[list[float], list[float], list[int]]] = {
                name: ([], [], []) for name in NAMES
            }
            starts = {
                "imports": lambda: timed_imports(floor.env),
                "floor": lambda: timed_start(floor_api, floor),
                "subject": lambda: timed_start(subject_api, subject),
            }
            for r in range(args.rounds):
                for name in NAMES if r % 2 == 0 else NAMES[::-1]:
                    wall, cpu, menus = await starts[name]()
                    results[name][0].append(wall)
                    results[name][1].append(cpu)
                    results[name][2].append(menus)
            for runs in (floor, subject):
                await runs.close()
    load = os.getloadavg()[0]
    print(
        f"start-up to the first handled update, {args.rounds} starts each, SQLite, Bot API "
        f"round trip {args.latency * 1000:.0f} ms, load average {load:.1f} on "
        f"{os.cpu_count()} CPUs:"
    )
    for name in NAMES:
        print(line(name, *results[name]))
    (walls, cpus, _), (floor_walls, floor_cpus, _) = results["subject"], results["floor"]
    wall_ratio = statistics.median(walls) / statistics.median(floor_walls)
    cpu_ratio = statistics.median(cpus) / statistics.median(floor_cpus)
    print(f"  subject / floor: wall {wall_ratio:.2f}, cpu {cpu_ratio:.2f}")
    imports_wall, imports_cpu = results["imports"][0], results["imports"][1]
    print(
        "  subject - imports (start-up work proper): "
        f"wall {statistics.median(walls) - statistics.median(imports_wall):.2f} s, "
        f"cpu {statistics.median(cpus) - statistics.median(imports_cpu):.2f} s"
    )
    return 0 if sum(results["subject"][2]) == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.05,
        help="seconds the fake Bot API takes per answer (a round trip to Telegram; default 0.05)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
