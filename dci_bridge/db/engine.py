"""Database URLs, engines and migrations (SQLite file or PostgreSQL through psycopg 3).

URLs: `sqlite:///path/to/file.sqlite3`, `postgresql+psycopg://user@host/db` (plain
`postgresql://` and `postgres://` are read as psycopg). SQLite engines run in WAL mode with a
busy timeout and real transactions: pysqlite's legacy mode starts a transaction only at the
first write, which lets two writers read stale rows; here every transaction starts with
`BEGIN`, and `begin_write` starts it with `BEGIN IMMEDIATE` so concurrent writers queue up
instead of failing halfway.

Within one process, SQLite writers queue on a lock per database file (`begin_write` takes it
before `BEGIN IMMEDIATE`). Without it a writer that finds the file locked by another thread
of the same process falls into SQLite's busy handler, which polls with sleeps of 1, 2, 5,
10, ... 100 ms: a 1 ms write behind a 5 ms one waited 20-200 ms (webhook ingest behind a
fan-out transaction, an async search's Ack behind the delivery worker's tick). On the lock
the next writer starts the moment the previous one commits. Writers in other processes
(several server workers on one file) still meet through the busy handler.
Migrations are Alembic scripts in `migrations/versions/`. Alembic (with Mako, about 12 MB of
a worker's memory) is imported only when a migration runs: a start-up on a database already
at `SCHEMA_HEAD` reads the revision with one query.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_HEAD: Final = "0006_policy"
"""The newest migration shipped with this code (a test checks it is Alembic's head)."""
VERSION_TABLE: Final = "alembic_version"
"""Where Alembic keeps the database's revision (its default)."""
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another writer before failing."""
T = TypeVar("T")
_MIGRATION_LOCK = 72611231
"""PostgreSQL advisory lock id held while migrating (several replicas may start at once)."""


class WriterLock:
    """A lock handed to its waiters in arrival order.

    `threading.Lock` lets the releasing thread take the lock straight back (it still holds
    the GIL while the woken waiter is scheduled), so a thread writing a backlog one
    transaction after another would keep a short request write waiting behind all of it.
    Here `release` hands the lock to the longest waiter. Taking it again in the thread that
    holds it raises at once: on SQLite that second transaction could never start.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held_by: int | None = None
        self._waiters: collections.deque[tuple[threading.Lock, int, bool]] = collections.deque()

    def acquire(self, *, first: bool = False) -> None:
        """Wait for the lock; `first` queues ahead of the waiters that did not ask so."""
        me = threading.get_ident()
        with self._guard:
            if self._held_by is None:
                self._held_by = me
                return
            if self._held_by == me:
                raise RuntimeError("a SQLite write transaction inside another in one thread")
            turn = threading.Lock()
            turn.acquire()
            if first:
                ahead = sum(1 for _, _, urgent in self._waiters if urgent)
                self._waiters.insert(ahead, (turn, me, True))
            else:
                self._waiters.append((turn, me, False))
        try:
            turn.acquire()  # released by the holder when it hands the lock over to us
        except BaseException:
            with self._guard:
                if (turn, me, first) in self._waiters:  # not handed over yet: leave the queue
                    self._waiters.remove((turn, me, first))
                    raise
            self.release()  # handed over meanwhile: pass it on
            raise

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never waits (False: someone holds it)."""
        with self._guard:
            if self._held_by is None:
                self._held_by = threading.get_ident()
                return True
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                turn, owner, _ = self._waiters.popleft()
                self._held_by = owner
                turn.release()
            else:
                self._held_by = None

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock now."""
        with self._guard:
            return len(self._waiters)

    @contextmanager
    def held(self, *, first: bool = False) -> Iterator[None]:
        self.acquire(first=first)
        try:
            yield
        finally:
            self.release()


_FILE_WRITERS: weakref.WeakValueDictionary[str, WriterLock] = weakref.WeakValueDictionary()
"""One writer lock per SQLite database (resolved file path, or the URL for in-memory), for
as long as an engine on it exists."""
_ENGINE_WRITERS: weakref.WeakKeyDictionary[sa.Engine, WriterLock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def _sqlite_writer_lock(parsed: sa.URL) -> WriterLock:
    path = sqlite_path(parsed)
    key = str(path.resolve()) if path is not None else str(parsed)
    with _WRITERS_GUARD:
        return _FILE_WRITERS.setdefault(key, WriterLock())


def writer_lock(engine: sa.Engine) -> WriterLock | None:
    """The lock this process's writers of the engine's SQLite file take turns on (None for
    PostgreSQL, whose writers do not wait for each other)."""
    return _ENGINE_WRITERS.get(engine)


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse a URL; bare PostgreSQL URLs get the psycopg (v3) driver."""
    parsed = sa.make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(url: str | sa.URL) -> bool:
    return normalize_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file of a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def libpq_conninfo(url: str | sa.URL) -> str:
    """A PostgreSQL URL as libpq understands it (for psycopg without SQLAlchemy)."""
    parsed = normalize_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module doc)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


def _on_sqlite_begin(connection: sa.Connection) -> None:
    immediate = connection.get_execution_options().get("sqlite_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_sync_engine(url: str | sa.URL, *, pool_size: int = 5) -> sa.Engine:
    """An engine for this URL; creates a SQLite file's directory."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        _ENGINE_WRITERS[engine] = _sqlite_writer_lock(parsed)
        return engine
    return sa.create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


@contextmanager
def begin_write(engine: sa.Engine, *, urgent: bool = False) -> Iterator[sa.Connection]:
    """A write transaction: committed on success, rolled back on error. On SQLite the
    process's writers of one file take turns on a lock first (see the module doc); `urgent`
    (a short write a client waits for) goes ahead of the background writers waiting."""
    lock = _ENGINE_WRITERS.get(engine)
    with lock.held(first=urgent) if lock is not None else nullcontext(), engine.connect() as conn:
        conn = conn.execution_options(sqlite_write=True)
        with conn.begin():
            yield conn


@contextmanager
def raw_write(engine: sa.Engine, *, urgent: bool = False) -> Iterator[Any]:
    """`begin_write` at the driver level: a DBAPI cursor inside a write transaction, for a
    short hot-path write that SQLAlchemy's per-transaction work would cost more than (a
    one-row SQLite insert and commit: 250 us through a Connection, 30 us through the driver).
    Same writer lock and `BEGIN IMMEDIATE` on SQLite; committed on success, rolled back on
    error. Statements use the driver's paramstyle (`?` on SQLite, `%s` on psycopg)."""
    lock = _ENGINE_WRITERS.get(engine)
    with lock.held(first=urgent) if lock is not None else nullcontext():
        connection = engine.raw_connection()
        try:
            with _committed(connection) as cursor:
                if lock is not None:  # SQLite: the driver runs without its own transactions
                    cursor.execute("BEGIN IMMEDIATE")
                yield cursor
        finally:
            connection.close()  # back to the pool


@contextmanager
def _committed(connection: Any) -> Iterator[Any]:
    """A cursor of a DBAPI connection: what it does is committed when the block ends,
    rolled back (and the error raised) when it fails."""
    cursor = connection.cursor()
    try:
        yield cursor
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()


class ImmediateWriter:
    """Short SQLite write transactions run on the calling thread, when they can start now.

    For a hot-path write on the event loop (the replay guard's insert: about 30 us of SQLite
    work), the hop to a worker thread and back costs more CPU than the write: two thread
    wake-ups and GIL hand-overs. `attempt(work)` runs `work(cursor)` in a write transaction
    on this thread only if it needs no wait: this process's writer lock is free and SQLite
    grants its write lock at once (its own connection has no busy timeout). Otherwise nothing
    is done and it returns None: the caller takes the waiting path (`raw_write` in a worker
    thread), so the event loop never waits for another writer. The connection never runs a
    WAL checkpoint (the file I/O and fsync of one stay with the other connections).
    SQLite files only (`None` from `for_engine` otherwise).
    """

    def __init__(self, engine: sa.Engine, lock: WriterLock) -> None:
        self._engine = engine
        self._lock = lock
        self._connection: Any = None

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> ImmediateWriter | None:
        lock = _ENGINE_WRITERS.get(engine)
        if lock is None or sqlite_path(engine.url) is None:
            return None  # PostgreSQL (a network round trip), or in-memory SQLite
        return cls(engine, lock)

    def _open(self) -> Any:
        proxied = self._engine.raw_connection()  # the engine's settings (WAL, synchronous)
        driver = proxied.driver_connection
        assert driver is not None
        proxied.detach()  # ours from now on: closed by `close`, never back in the pool
        driver.execute("PRAGMA busy_timeout=0")
        driver.execute("PRAGMA wal_autocheckpoint=0")
        self._connection = driver
        return driver

    def attempt(self, work: Callable[[Any], T]) -> T | None:
        """`work(cursor)`'s result, committed; None when the write could not start at once
        (nothing was done). `work` must not return None. Errors roll back and propagate."""
        if not self._lock.try_acquire():
            return None
        try:
            driver = self._open() if self._connection is None else self._connection
            try:
                driver.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return None  # another process writes now
                raise
            with _committed(driver) as cursor:
                return work(cursor)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    return SCHEMA_HEAD


def alembic_head() -> str:
    """The head revision as Alembic finds it in `migrations/versions/` (tests compare it
    with `SCHEMA_HEAD`)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (Alembic `upgrade head`); nothing to
    do, and Alembic not loaded, when it is there already."""
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            if read_revision(conn) == SCHEMA_HEAD:
                return
        from alembic import command

        with begin_write(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), "head")
    finally:
        engine.dispose()


def read_revision(conn: sa.Connection) -> str | None:
    """The schema revision on `conn`, or None when it was never migrated; several revisions
    (branches, which this project does not make) come back joined by commas, so that they
    never equal a head."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608
    conn.rollback()  # end the implicit read transaction (PostgreSQL would hold it open)
    return ",".join(sorted(rows)) or None


def current_revision(url: str) -> str | None:
    """The database's schema revision, or None when it was never migrated."""
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return read_revision(conn)
    finally:
        engine.dispose()
