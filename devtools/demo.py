"""`make demo`: the whole product on a synthetic organisation, on this machine only.

Generates the organisation, serves it through the bundled Graph and Leadspace emulators on
loopback, runs the loaders exactly as a user would (`python -m loaders ...`, settings in the
environment), then `dbt build`, and prints where every output is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from loaders.settings import duckdb_path

# the clone this demo runs from (devtools/ is not installed): the dbt project, its profile
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    print(f"\n==> {what}\n    $ {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: step failed ({what}), exit status {result.returncode}")
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)


def _start_emulator(
    data: Path, env: dict[str, str], module: str = "devtools.emulators.graph",
    keys: frozenset[str] = frozenset({"GRAPH_API_URL", "GRAPH_LOGIN_URL", "REQUESTS_CA_BUNDLE"}),
    options: tuple[str, ...] = (),
) -> tuple[subprocess.Popen, dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--data", str(data), "--port", "0", *options],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )
    urls: dict[str, str] = {}
    assert process.stdout is not None
    while len(urls) < len(keys):
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"demo: the emulator {module} did not start")
        key, _, value = line.strip().partition("=")
        if key in keys:
            urls[key] = value
    return process, urls


OUTPUTS = ("office", "office_user_entity", "stale_accounts", "leadspace", "enrichment_status")
RAW = ("raw_crm.accounts", "raw_crm.contacts", "raw_graph.users", "raw_graph.messages",
       "raw_graph.events", "raw_leadspace.answers", "raw_leadspace.consents",
       "raw_loader.load_runs")


def _summary(warehouse: Path, data: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        def rows(table: str) -> str:
            return f"{con.execute(f'select count(*) from {table}').fetchone()[0]:>9,} rows"

        print(f"\nDone. Warehouse: {warehouse}\n  output tables (the BI contract):")
        for table in OUTPUTS:
            print(f"    {table:<22}{rows(table)}")
        print("  raw tables (as landed):")
        for table in RAW:
            print(f"    {table:<22}{rows(table)}")
    print(
        f"  synthetic organisation: {data}\n"
        f"  read it: duckdb {warehouse} -readonly (or Python: duckdb.connect(path, "
        "read_only=True))\n  docs: dbt docs generate && dbt docs serve"
    )


def _leadspace_step(py: str, data: Path, env: dict[str, str], no_progress: bool) -> None:
    """Firmographics for every synthetic account, with consent, from the Leadspace emulator."""
    from devtools.emulators.leadspace import DEMO_KEY

    emulator, urls = _start_emulator(
        data, env, "devtools.emulators.leadspace", frozenset({"LEADSPACE_API_URL"})
    )
    try:
        ls_env = {**env, **urls, "LEADSPACE_TOKEN": DEMO_KEY}
        print(f"\n==> Leadspace emulator serving the synthetic companies at "
              f"{urls['LEADSPACE_API_URL']}")
        cmd = [py, "-m", "loaders", "leadspace", "--consent", "--map", "company_name=name",
               "--map", "website=website", "--map", "location=city"]
        if no_progress:
            cmd.append("--no-progress")
        _run(cmd, ls_env, "firmographics from Leadspace (consented: name, website, city)")
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / "demo")
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--messages-per-mailbox", type=int, default=1500)
    parser.add_argument("--as-of", default=datetime.now(UTC).date().isoformat())
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    workdir = args.workdir.resolve()
    data = workdir / "org"
    env = dict(os.environ)
    # absolute: every step runs in the clone, whichever folder the demo was started from
    warehouse = duckdb_path().resolve()
    env["DUCKDB_PATH"] = str(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    py = sys.executable

    _run(
        [py, "-m", "devtools.synthetic", "--out", str(data), "--seed", str(args.seed),
         "--mailboxes", str(args.mailboxes), "--accounts", str(args.accounts),
         "--messages-per-mailbox", str(args.messages_per_mailbox), "--as-of", args.as_of],
        env, "generate a synthetic organisation",
    )
    manifest = json.loads((data / "manifest.json").read_text())
    emulator, urls = _start_emulator(data, env)
    try:
        # the Graph step's settings; REQUESTS_CA_BUNDLE (the emulator's certificate authority,
        # for its https login) only for that step
        graph_env = {**env, **urls,
                     "GRAPH_TENANT_ID": manifest["emulator"]["tenant_id"],
                     "GRAPH_CLIENT_ID": manifest["emulator"]["client_id"],
                     "GRAPH_CLIENT_SECRET": manifest["emulator"]["client_secret"]}
        print(f"\n==> Graph emulator serving {data} at {urls['GRAPH_API_URL']} (login: "
              f"{urls['GRAPH_LOGIN_URL']}, trusted through REQUESTS_CA_BUNDLE="
              f"{urls['REQUESTS_CA_BUNDLE']})")
        _run(
            [py, "-m", "loaders", "crm", "--accounts", str(data / "crm" / "accounts.csv"),
             "--contacts", str(data / "crm" / "contacts.csv")],
            env, "land the CRM snapshot",
        )
        graph_cmd = [py, "-m", "loaders", "graph", "--as-of", args.as_of]
        graph_cmd += ["--group", manifest["group_address"]]
        if args.no_progress:
            graph_cmd.append("--no-progress")
        _run(graph_cmd, graph_env, "land a year of mail and meetings from Graph")
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    _leadspace_step(py, data, env, args.no_progress)
    _run(
        [str(bin_dir / "dbt"), "build", "--profiles-dir", str(PROJECT_ROOT),
         "--vars", json.dumps({"as_of_date": args.as_of})],
        env, "dbt build",
    )
    _summary(warehouse, data)
    _cards(warehouse, env)
    return 0


def _cards(warehouse: Path, env: dict[str, str]) -> None:
    """The customer cards (issue 5) and where the Parquet copies of the BI tables are."""
    from account_engagement_parquet import parquet_dir

    _run([sys.executable, "-m", "account_engagement_cards", "--warehouse", str(warehouse)], env,
         "build the customer cards")
    print(f"  customer cards: {warehouse.parent / 'customer_cards' / 'index.html'}\n"
          f"  Parquet copies of the output tables (for BI tools): "
          f"{parquet_dir(warehouse).resolve()}\n  dbt docs with lineage: make docs")


if __name__ == "__main__":
    raise SystemExit(main())
