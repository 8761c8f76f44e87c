"""`voronka demo --deals N` as a real process on a temporary SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.factories import clean_env, voronka


def test_demo_fills_a_fresh_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    done = voronka("demo", "--deals", "200", "--seed", "7", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "demo data: 200 deals (seed 7, language ru)" in done.stdout
    # The distribution it made (issue 20): won share, open deals per stage, per manager.
    assert "won: " in done.stdout and "open in Sales: data_collection " in done.stdout
    assert "per manager (deals, won, won share, won money):" in done.stdout
    with sqlite3.connect(db) as conn:
        deals = conn.execute("SELECT count(*) FROM deals WHERE parent_deal_id IS NULL").fetchone()
        history = conn.execute("SELECT count(*) FROM stage_history").fetchone()
        managers = conn.execute("SELECT count(*) FROM employees").fetchone()
    conn.close()
    assert deals[0] >= 200 and history[0] > 400 and managers[0] >= 2


def test_demo_needs_a_positive_count(tmp_path: Path) -> None:
    done = voronka("demo", "--deals", "0", cwd=tmp_path, env=clean_env())
    assert done.returncode == 2 and "--deals must be at least 1" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing created


def test_demo_refuses_a_database_with_deals_unless_forced(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    assert voronka("demo", "--deals", "20", cwd=tmp_path, env=env).returncode == 0

    def deals() -> int:
        with sqlite3.connect(db) as conn:
            (n,) = conn.execute("SELECT count(*) FROM deals").fetchone()
        conn.close()
        return int(n)

    before = deals()
    again = voronka("demo", "--deals", "20", cwd=tmp_path, env=env)
    assert again.returncode == 1
    error = again.stderr.strip().splitlines()[-1]  # after the migrate log lines
    assert error.startswith("error: the database already has 20 deals"), again.stderr
    assert "--force" in error and "Traceback" not in again.stderr
    assert deals() == before  # untouched

    forced = voronka("demo", "--deals", "20", "--seed", "2", "--force", cwd=tmp_path, env=env)
    assert forced.returncode == 0, forced.stderr
    assert deals() >= before + 20
