//! The account store: SQLite in WAL mode, schema versioned by `PRAGMA user_version`.
//!
//! Durability: `synchronous = FULL`, so an account whose `add` returned is on disk even if the
//! machine loses power right after (writes are rare; logins only update `last_login`). The
//! database may be opened by the server and by `auth-server user ...` commands at once; WAL
//! lets readers proceed during a write and `busy_timeout` makes writers wait their turn.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use switchboard_proto::{Role, UnixTime, Username};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "accounts.sqlite3";

/// How long a writer waits for another writer (the server and a CLI command) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version; version N is `MIGRATIONS[N-1]`. Never edit a
/// migration that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: accounts and revoked ticket serials.
    "CREATE TABLE accounts (
        id            INTEGER PRIMARY KEY,
        username      TEXT    NOT NULL UNIQUE,
        password_hash TEXT    NOT NULL,
        role          TEXT    NOT NULL CHECK (role IN ('user', 'supernode', 'mega', 'admin')),
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at    INTEGER NOT NULL,
        last_login    INTEGER
    );
    CREATE TABLE revoked_serials (
        serial     INTEGER PRIMARY KEY,
        revoked_at INTEGER NOT NULL
    );",
];

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (IO, corruption, lock timeout).
    #[error("account database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The account exists already.
    #[error("account {0} already exists")]
    Exists(String),
    /// No such account.
    #[error("no account named {0}")]
    NotFound(String),
    /// A stored value is not what this code writes (a newer schema, or tampering).
    #[error("account database holds an invalid {what}: {value:?}")]
    Corrupt {
        /// Which field.
        what: &'static str,
        /// What was found.
        value: String,
    },
    /// The database is newer than this build.
    #[error("account database schema version {found} is newer than this build's {known}")]
    TooNew {
        /// The database's version.
        found: i64,
        /// The newest this build knows.
        known: usize,
    },
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name.
    pub username: Username,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// What it may do.
    pub role: Role,
    /// Whether it is disabled.
    pub disabled: bool,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last logged in.
    pub last_login: Option<UnixTime>,
}

/// The account database.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(data_dir.join(DATABASE_FILE))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self { connection };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let known = MIGRATIONS.len();
        let current = usize::try_from(version).unwrap_or(usize::MAX);
        if current > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index + 1)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Creates an account. Returns once it is durable.
    pub fn add(
        &self,
        username: &Username,
        password_hash: &str,
        role: Role,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let inserted = self.connection.execute(
            "INSERT INTO accounts (username, password_hash, role, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO NOTHING",
            params![username.as_str(), password_hash, role.as_str(), to_sql(now)],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists(username.to_string()));
        }
        Ok(())
    }

    /// The account named `username`, if any.
    pub fn get(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.connection
            .query_row(
                "SELECT username, password_hash, role, disabled, created_at, last_login
                 FROM accounts WHERE username = ?1",
                params![username.as_str()],
                row_to_raw,
            )
            .optional()?
            .map(RawAccount::validate)
            .transpose()
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<Account>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT username, password_hash, role, disabled, created_at, last_login
             FROM accounts ORDER BY username",
        )?;
        let rows = statement.query_map([], row_to_raw)?;
        rows.map(|row| row.map_err(StoreError::from).and_then(RawAccount::validate))
            .collect()
    }

    /// How many accounts exist.
    pub fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .connection
            .query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Disables an account.
    pub fn disable(&self, username: &Username) -> Result<(), StoreError> {
        self.update(
            username,
            "UPDATE accounts SET disabled = 1 WHERE username = ?1",
            params![username.as_str()],
        )
    }

    /// Replaces an account's password hash.
    pub fn set_password(&self, username: &Username, password_hash: &str) -> Result<(), StoreError> {
        self.update(
            username,
            "UPDATE accounts SET password_hash = ?2 WHERE username = ?1",
            params![username.as_str(), password_hash],
        )
    }

    /// Records a successful login.
    pub fn touch_login(&self, username: &Username, now: UnixTime) -> Result<(), StoreError> {
        self.update(
            username,
            "UPDATE accounts SET last_login = ?2 WHERE username = ?1",
            params![username.as_str(), to_sql(now)],
        )
    }

    fn update(
        &self,
        username: &Username,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(), StoreError> {
        if self.connection.execute(sql, params)? == 0 {
            return Err(StoreError::NotFound(username.to_string()));
        }
        Ok(())
    }

    /// Revokes one ticket serial.
    pub fn revoke_serial(&self, serial: u64, now: UnixTime) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT INTO revoked_serials (serial, revoked_at) VALUES (?1, ?2)
             ON CONFLICT (serial) DO NOTHING",
            params![serial_to_sql(serial), to_sql(now)],
        )?;
        Ok(())
    }

    /// Whether a ticket serial was revoked.
    pub fn is_revoked(&self, serial: u64) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM revoked_serials WHERE serial = ?1",
                params![serial_to_sql(serial)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// A page of the revocation list: disabled accounts and revoked serials, ordered so that a
    /// cursor (the offset into the combined list) resumes where the last page ended.
    pub fn revocations(
        &self,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<Username>, Vec<u64>, bool), StoreError> {
        let limit = i64::try_from(page).unwrap_or(i64::MAX);
        let offset = i64::try_from(cursor).unwrap_or(i64::MAX);
        let mut statement = self.connection.prepare(
            "SELECT 0, username, NULL FROM accounts WHERE disabled = 1
             UNION ALL SELECT 1, NULL, serial FROM revoked_serials
             ORDER BY 1, 2, 3 LIMIT ?1 OFFSET ?2",
        )?;
        let mut users = Vec::new();
        let mut serials = Vec::new();
        let mut rows = statement.query(params![limit.saturating_add(1), offset])?;
        let mut seen = 0usize;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if seen == page {
                more = true;
                break;
            }
            seen += 1;
            let kind: i64 = row.get(0)?;
            if kind == 0 {
                let name: String = row.get(1)?;
                users.push(parse_username(name)?);
            } else {
                let serial: i64 = row.get(2)?;
                serials.push(serial as u64);
            }
        }
        Ok((users, serials, !more))
    }

    /// Runs SQLite's `PRAGMA integrity_check`; `Ok` when it answers "ok".
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let verdict: String = self
            .connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if verdict != "ok" {
            return Err(StoreError::Corrupt {
                what: "database (integrity_check)",
                value: verdict,
            });
        }
        Ok(())
    }
}

/// SQLite integers are signed; times past 2^63 s do not happen.
fn to_sql(time: UnixTime) -> i64 {
    i64::try_from(time.0).unwrap_or(i64::MAX)
}

/// Serials are random u64s, stored bit for bit in SQLite's signed 64-bit integer.
fn serial_to_sql(serial: u64) -> i64 {
    serial as i64
}

struct RawAccount {
    username: String,
    password_hash: String,
    role: String,
    disabled: bool,
    created_at: i64,
    last_login: Option<i64>,
}

fn row_to_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawAccount> {
    Ok(RawAccount {
        username: row.get(0)?,
        password_hash: row.get(1)?,
        role: row.get(2)?,
        disabled: row.get(3)?,
        created_at: row.get(4)?,
        last_login: row.get(5)?,
    })
}

fn parse_username(name: String) -> Result<Username, StoreError> {
    Username::new(&name).map_err(|_| StoreError::Corrupt {
        what: "username",
        value: name,
    })
}

fn from_sql(value: i64) -> UnixTime {
    UnixTime(u64::try_from(value).unwrap_or(0))
}

impl RawAccount {
    fn validate(self) -> Result<Account, StoreError> {
        let role = self.role.parse().map_err(|_| StoreError::Corrupt {
            what: "role",
            value: self.role.clone(),
        })?;
        Ok(Account {
            username: parse_username(self.username)?,
            password_hash: self.password_hash,
            role,
            disabled: self.disabled,
            created_at: from_sql(self.created_at),
            last_login: self.last_login.map(from_sql),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Username {
        Username::new(n).unwrap()
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchboard-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn accounts_survive_reopening_and_duplicates_are_refused() {
        let dir = temp_dir("reopen");
        {
            let store = Store::open(&dir).unwrap();
            store
                .add(&name("alice"), "hash", Role::User, UnixTime(5))
                .unwrap();
            assert!(matches!(
                store.add(&name("alice"), "other", Role::Admin, UnixTime(6)),
                Err(StoreError::Exists(_))
            ));
        }
        let store = Store::open(&dir).unwrap();
        let alice = store.get(&name("alice")).unwrap().unwrap();
        assert_eq!(alice.role, Role::User);
        assert_eq!(alice.password_hash, "hash");
        assert_eq!(alice.created_at, UnixTime(5));
        assert_eq!(store.count().unwrap(), 1);
        store.integrity_check().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn disabling_puts_an_account_on_the_revocation_list() {
        let dir = temp_dir("revoke");
        let store = Store::open(&dir).unwrap();
        for n in ["a", "b", "c"] {
            store.add(&name(n), "h", Role::User, UnixTime(1)).unwrap();
        }
        store.disable(&name("b")).unwrap();
        store.disable(&name("c")).unwrap();
        store.revoke_serial(77, UnixTime(2)).unwrap();
        assert!(store.get(&name("b")).unwrap().unwrap().disabled);
        let (users, serials, complete) = store.revocations(0, 2).unwrap();
        assert_eq!(users, vec![name("b"), name("c")]);
        assert!(serials.is_empty());
        assert!(!complete);
        let (users, serials, complete) = store.revocations(2, 2).unwrap();
        assert!(users.is_empty());
        assert_eq!(serials, vec![77]);
        assert!(complete);
        assert!(matches!(
            store.disable(&name("zed")),
            Err(StoreError::NotFound(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
