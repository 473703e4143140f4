"""A local Spark Thrift server, from the pinned pyspark wheel (its jars hold Spark SQL, Hive's
metastore client on an embedded Derby and the Thrift server), for the `spark` dbt target.

    with SparkServer() as spark:           # or the session fixture `spark_server`
        env = {**os.environ, **spark.env()}  # SPARK_HOST, SPARK_PORT

The server runs `spark-submit --class ...HiveThriftServer2 spark-internal` in local mode (all
cores), listens on 127.0.0.1 only, on a free port (or the one given), and keeps its metastore,
warehouse and logs in a folder of its own (a fresh temporary one unless given). It is ready
when it answers `select 1` (about 20 s). `stop()` ends it by its own pid (SIGTERM, then
SIGKILL) and removes a temporary folder; nothing here touches a server started by anyone else.

`make spark-server` / `make spark-server-stop` run it for users:
`python tests/python/spark_server.py start --dir .spark` (writes `.spark/server.pid`) and
`... stop --dir .spark`.

Spark settings (a cluster that runs these models needs the first four too; docs/engines.md,
'Settings a Spark cluster needs'):
- `spark.sql.ansi.enabled=true` and `spark.sql.ansi.doubleQuotedIdentifiers=true`: the models
  quote the BI contract's names as SQL does (`"AccountId"`), which Spark reads as names only
  in ANSI mode (otherwise as a string: `"AggregationLevel" = 'Year'` would be false, silently).
  dbt-spark asks each session for ANSI off, but over Thrift that request reaches only the Hive
  session, not Spark's: the server's setting holds. The models' casts that may meet a bad
  value use `try_` functions (macros), as DuckDB's try_cast.
- `spark.sql.parser.escapedStringLiterals=true`: a backslash in a string is itself, as in
  standard SQL (the regular expressions of the macros are the same on every engine).
- `spark.sql.session.timeZone=UTC`: a timestamp is shown and cast in UTC, the wall times the
  models compute in (as on DuckDB and PostgreSQL, where they are naive UTC times).
- 1 shuffle partition (small data), no web UI, 4 GB for the driver.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY_SECONDS = 180
SPARK_CONF = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.parser.escapedStringLiterals": "true",
    # one task after each shuffle: a model partitioned by day writes one file per day, not
    # four (a scan of a year's partitions opens every file; small data needs no more)
    "spark.sql.shuffle.partitions": "1",
    # list a table's day folders in the driver, not in a Spark job of its own per scan
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    # the embedded Derby metastore sometimes fails a partition filter on a date column (seen
    # on int_account_email_people_periods): Spark then prunes the partitions itself
    "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    # small data, many short statements: planning once beats re-planning each stage
    "spark.sql.adaptive.enabled": "false",
    # one JVM, driver and executor in one: a pause of the whole machine (seen here: over a
    # minute) must not make the executor give up on its own driver and end the server
    "spark.network.timeout": "3600s",
    # a broadcast join's small side is built while the build's other statements share the
    # same cores: at 500 mailboxes on 2 busy cores one took over Spark's 300 s default and
    # failed stg_graph__events ("Could not execute broadcast in 300 secs")
    "spark.sql.broadcastTimeout": "3600",
    "spark.executor.heartbeatInterval": "600s",
}
# Spark compiles every statement to new JVM classes; with the JIT's top tier the compiler
# threads took the two cores from the queries (a build took three times longer). The C1-only
# JIT keeps a 48 MB code cache, which Spark's generated code filled in a 100-mailbox build:
# the JVM then failed to link method handles, the scheduler's threads died and the server
# hung with its queries "running"; 512 MB leaves room.
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m"


class SparkUnavailable(RuntimeError):
    """No Spark Thrift server can be started here; the message says why."""


def pyspark_home() -> Path:
    """The pyspark package folder (SPARK_HOME of the wheel: bin/, jars/)."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "pyspark is not installed: install the spark extra (pip install -e '.[spark]')"
        ) from None
    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(host: str, port: int) -> bool:
    """True when a Thrift server at host:port runs `select 1`."""
    from pyhive import hive

    logging.getLogger("thrift").setLevel(logging.CRITICAL)  # "Could not connect" while starting
    try:
        with contextlib.closing(hive.connect(host=host, port=port, username="dbt")) as con:
            cursor = con.cursor()
            cursor.execute("select 1")
            return cursor.fetchall() == [(1,)]
    except Exception:  # not listening yet, or still starting its session manager
        return False


class SparkServer:
    """A Spark Thrift server of its own; see the module's docstring."""

    host = "127.0.0.1"

    def __init__(self, root: Path | None = None, port: int = 0, cwd: Path | None = None) -> None:
        self.root = root
        self.cwd = cwd  # where a relative path given to Spark resolves (default: root)
        self.temporary = root is None
        self.port = port
        self.pid: int | None = None

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def env(self) -> dict[str, str]:
        """The SPARK_* settings (docs/configuration.md) that reach this server."""
        return {"SPARK_HOST": self.host, "SPARK_PORT": str(self.port)}

    def query(self, sql: str) -> list[tuple]:
        """The rows of one statement (PyHive, the spark extra's client)."""
        from pyhive import hive

        with contextlib.closing(hive.connect(host=self.host, port=self.port,
                                             username="dbt")) as con:
            cursor = con.cursor()
            cursor.execute(sql)
            return cursor.fetchall()

    def command(self) -> list[str]:
        home = pyspark_home()
        command = [str(home / "bin" / "spark-submit"),
                   "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
                   "--master", "local[*]", "--name", "account_engagement-thrift"]
        conf = {**SPARK_CONF,
                "spark.sql.warehouse.dir": str(self.root / "warehouse"),
                "spark.driver.extraJavaOptions": f"{JAVA_OPTIONS} -Dderby.system.home={self.root}"}
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        command += ["--hiveconf", f"hive.server2.thrift.bind.host={self.host}",
                    "--hiveconf", f"hive.server2.thrift.port={self.port}",
                    "spark-internal"]
        return command

    def start(self) -> SparkServer:
        home = pyspark_home()
        if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
            raise SparkUnavailable("no Java runtime (java on PATH or JAVA_HOME): install Java 17")
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="spark-test-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": self.host,
               "SPARK_LOG_DIR": str(self.root), "PYSPARK_PYTHON": sys.executable}
        with open(self.logfile, "ab") as log:
            process = subprocess.Popen(self.command(), cwd=self.cwd or self.root, env=env,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True)
        self.pid = process.pid
        deadline = time.monotonic() + READY_SECONDS
        try:
            while not answers(self.host, self.port):
                if process.poll() is not None:
                    raise SparkUnavailable(
                        f"the Spark Thrift server exited ({process.returncode}) before it "
                        f"answered:{self._log_tail()}")
                if time.monotonic() > deadline:
                    raise SparkUnavailable(
                        f"the Spark Thrift server did not answer within {READY_SECONDS} s:"
                        f"{self._log_tail()}")
                time.sleep(1)
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError, TypeError):
            return "\nserver log:\n" + self.logfile.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        """Ends the server by its pid (its process group: spark-submit and the JVM) and
        removes a temporary folder."""
        try:
            if self.pid is not None:
                end(self.pid)
                self.pid = None
        finally:
            if self.temporary and self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def __enter__(self) -> SparkServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def end(pid: int) -> None:
    """SIGTERM to the process group `pid` leads (started with start_new_session), then
    SIGKILL when it is still there after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        deadline = time.monotonic() + wait
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A local Spark Thrift server from the pinned pyspark (make spark-server).")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=Path(".spark"),
                        help="its metastore, warehouse, log and pid file (default .spark/)")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    pidfile = root / "server.pid"
    host = os.environ.get("SPARK_HOST", "127.0.0.1")
    port = int(os.environ.get("SPARK_PORT", "10000"))
    if args.action == "stop":
        if not pidfile.exists():
            print(f"no Spark Thrift server started from {root} (no {pidfile}).")
            return 0
        end(int(pidfile.read_text().strip()))
        pidfile.unlink()
        print("Spark Thrift server stopped.")
        return 0
    if host != "127.0.0.1":
        print(f"make spark-server runs a local server on 127.0.0.1; SPARK_HOST is {host}.")
        return 2
    if answers(host, port):
        print(f"A Spark Thrift server already answers on {host}:{port}.")
        return 0
    server = SparkServer(root=root, port=port, cwd=Path.cwd())
    server.temporary = False
    try:
        server.start()
    except SparkUnavailable as exc:
        print(f"could not start the Spark Thrift server: {exc}")
        return 2
    pidfile.write_text(f"{server.pid}\n")
    print(f"Spark Thrift server on {host}:{port} (pid {server.pid}, log {server.logfile}); "
          "stop it with make spark-server-stop.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
