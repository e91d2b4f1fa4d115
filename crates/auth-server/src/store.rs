//! The account store: SQLite in WAL mode, schema versioned by `PRAGMA user_version`.
//!
//! Durability: `synchronous = FULL`, so an account whose `add` returned is on disk even if the
//! machine loses power right after (writes are rare; logins only update `last_login`). The
//! database may be opened by the server and by `auth-server user ...` commands at once; WAL
//! lets readers proceed during a write and `busy_timeout` makes writers wait their turn.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use switchboard_proto::messages::Revocation;
use switchboard_proto::{NodeId, Role, TicketBody, UnixTime, Username};

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
    // 2: one append-only revocation list (accounts by time, node keys, serials), read after a
    // cursor (the row id, never reused: AUTOINCREMENT), replacing the serials table. Accounts
    // disabled before this version are revoked as of the migration.
    "CREATE TABLE revocations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT    NOT NULL CHECK (kind IN ('account', 'node', 'serial')),
        value      TEXT    NOT NULL,
        revoked_at INTEGER NOT NULL
    );
    CREATE INDEX revocations_by_value ON revocations (kind, value);
    INSERT INTO revocations (kind, value, revoked_at)
        SELECT 'account', username, CAST(strftime('%s', 'now') AS INTEGER)
        FROM accounts WHERE disabled = 1 ORDER BY username;
    INSERT INTO revocations (kind, value, revoked_at)
        SELECT 'serial', CAST(serial AS TEXT), revoked_at FROM revoked_serials ORDER BY serial;
    DROP TABLE revoked_serials;",
    // 3: promotions: which client node was promoted on whose nomination, and whether it
    // stepped down. A node promoted again replaces its row.
    "CREATE TABLE promotions (
        node            TEXT    PRIMARY KEY,
        username        TEXT    NOT NULL,
        nominator       TEXT    NOT NULL,
        addr            TEXT    NOT NULL,
        capacity        INTEGER NOT NULL,
        promoted_at     INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        serial          INTEGER NOT NULL,
        stepped_down_at INTEGER
    );
    CREATE INDEX promotions_by_nominator ON promotions (nominator, promoted_at);",
];

/// One promotion, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The promoted client's node key.
    pub node: NodeId,
    /// Its account.
    pub user: Username,
    /// Who nominated it.
    pub nominator: NodeId,
    /// Where it serves.
    pub addr: std::net::SocketAddr,
    /// Its declared capacity.
    pub capacity: u32,
    /// When it was promoted.
    pub promoted_at: UnixTime,
    /// When its promoted ticket expires (moved on by refreshes).
    pub expires_at: UnixTime,
    /// Its promoted ticket's serial.
    pub serial: u64,
}

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

    /// Adds every account of `users` that does not exist yet, in one transaction, all with
    /// `password_hash`; returns how many were added.
    pub fn add_many(
        &mut self,
        users: &[Username],
        password_hash: &str,
        role: Role,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let transaction = self.connection.transaction()?;
        let mut added = 0;
        {
            let mut insert = transaction.prepare(
                "INSERT INTO accounts (username, password_hash, role, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (username) DO NOTHING",
            )?;
            for user in users {
                added += insert.execute(params![
                    user.as_str(),
                    password_hash,
                    role.as_str(),
                    to_sql(now)
                ])? as u64;
            }
        }
        transaction.commit()?;
        Ok(added)
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

    /// Disables an account: no new tickets, and every ticket issued until `now` joins the
    /// revocation list (one transaction: both or neither).
    pub fn disable(&mut self, username: &Username, now: UnixTime) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        if transaction.execute(
            "UPDATE accounts SET disabled = 1 WHERE username = ?1",
            params![username.as_str()],
        )? == 0
        {
            return Err(StoreError::NotFound(username.to_string()));
        }
        transaction.execute(
            "INSERT INTO revocations (kind, value, revoked_at) VALUES ('account', ?1, ?2)",
            params![username.as_str(), to_sql(now)],
        )?;
        transaction.commit()?;
        Ok(())
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

    /// Revokes one ticket serial (and so every refresh of that ticket).
    pub fn revoke_serial(&self, serial: u64, now: UnixTime) -> Result<(), StoreError> {
        self.revoke("serial", &serial.to_string(), now)
    }

    /// Revokes every ticket for one node key (a lost or stolen device).
    pub fn revoke_node(&self, node: &NodeId, now: UnixTime) -> Result<(), StoreError> {
        self.revoke("node", &node.to_string(), now)
    }

    fn revoke(&self, kind: &str, value: &str, now: UnixTime) -> Result<(), StoreError> {
        let known: Option<i64> = self
            .connection
            .query_row(
                "SELECT id FROM revocations WHERE kind = ?1 AND value = ?2",
                params![kind, value],
                |row| row.get(0),
            )
            .optional()?;
        if known.is_none() {
            self.connection.execute(
                "INSERT INTO revocations (kind, value, revoked_at) VALUES (?1, ?2, ?3)",
                params![kind, value, to_sql(now)],
            )?;
        }
        Ok(())
    }

    /// Records a promotion (replacing an earlier one of the same node).
    pub fn promote(&self, promotion: &Promotion) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT OR REPLACE INTO promotions
                 (node, username, nominator, addr, capacity, promoted_at, expires_at, serial)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                promotion.node.to_string(),
                promotion.user.as_str(),
                promotion.nominator.to_string(),
                promotion.addr.to_string(),
                promotion.capacity,
                to_sql(promotion.promoted_at),
                to_sql(promotion.expires_at),
                // SQLite integers are signed: the serial's bits are stored as they are.
                i64::from_ne_bytes(promotion.serial.to_ne_bytes()),
            ],
        )?;
        Ok(())
    }

    /// Promotions active at `now`: not stepped down, ticket not expired.
    pub fn active_promotions(&self, now: UnixTime) -> Result<u64, StoreError> {
        let count: i64 = self.connection.query_row(
            "SELECT COUNT(*) FROM promotions WHERE stepped_down_at IS NULL AND expires_at > ?1",
            params![to_sql(now)],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Nominations by `nominator` accepted at or after `since`.
    pub fn nominations_since(
        &self,
        nominator: &NodeId,
        since: UnixTime,
    ) -> Result<u64, StoreError> {
        let count: i64 = self.connection.query_row(
            "SELECT COUNT(*) FROM promotions WHERE nominator = ?1 AND promoted_at >= ?2",
            params![nominator.to_string(), to_sql(since)],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Whether `node`'s promotion with ticket `serial` is active at `now` (a refresh of its
    /// promoted ticket is granted only then).
    pub fn promotion_active(
        &self,
        node: &NodeId,
        serial: u64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM promotions WHERE node = ?1 AND serial = ?2
                     AND stepped_down_at IS NULL AND expires_at > ?3",
                params![
                    node.to_string(),
                    i64::from_ne_bytes(serial.to_ne_bytes()),
                    to_sql(now)
                ],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Extends an active promotion's ticket expiry (a refresh).
    pub fn extend_promotion(&self, node: &NodeId, expires_at: UnixTime) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE promotions SET expires_at = ?2 WHERE node = ?1 AND stepped_down_at IS NULL",
            params![node.to_string(), to_sql(expires_at)],
        )?;
        Ok(())
    }

    /// Records that `node` stepped down and revokes its promoted ticket's serial, so that
    /// the ticket is refused everywhere from the next revocation poll on.
    pub fn step_down(&self, node: &NodeId, serial: u64, now: UnixTime) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE promotions SET stepped_down_at = ?2 WHERE node = ?1 AND stepped_down_at IS NULL",
            params![node.to_string(), to_sql(now)],
        )?;
        self.revoke_serial(serial, now)
    }

    /// Whether a ticket is revoked: its account revoked at or after it was issued, its node
    /// key revoked, or its serial.
    pub fn is_revoked(&self, ticket: &TicketBody) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM revocations
                 WHERE (kind = 'account' AND value = ?1 AND revoked_at >= ?2)
                    OR (kind = 'node' AND value = ?3)
                    OR (kind = 'serial' AND value = ?4)
                 LIMIT 1",
                params![
                    ticket.user.as_str(),
                    to_sql(ticket.issued_at),
                    ticket.node.to_string(),
                    ticket.serial.to_string()
                ],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Whether a node key is revoked (its logins are refused).
    pub fn is_node_revoked(&self, node: &NodeId) -> Result<bool, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT 1 FROM revocations WHERE kind = 'node' AND value = ?1",
                params![node.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Up to `page` revocations added after `cursor`, oldest first; the cursor to ask with
    /// next (the last entry's, or the list's end when there is none: lower than `cursor` if
    /// the list restarted); whether the list ends there.
    pub fn revocations(
        &self,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<Revocation>, u64, bool), StoreError> {
        let limit = i64::try_from(page).unwrap_or(i64::MAX);
        let after = i64::try_from(cursor).unwrap_or(i64::MAX);
        let mut statement = self.connection.prepare(
            "SELECT id, kind, value, revoked_at FROM revocations
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut entries = Vec::new();
        let mut last = None;
        let mut rows = statement.query(params![after, limit.saturating_add(1)])?;
        let mut more = false;
        while let Some(row) = rows.next()? {
            if entries.len() == page {
                more = true;
                break;
            }
            let id: i64 = row.get(0)?;
            let kind: String = row.get(1)?;
            let value: String = row.get(2)?;
            let at: i64 = row.get(3)?;
            entries.push(parse_revocation(&kind, value, at)?);
            last = Some(u64::try_from(id).unwrap_or(0));
        }
        let next_cursor = match last {
            Some(id) => id,
            None => {
                let end: i64 = self.connection.query_row(
                    "SELECT COALESCE(MAX(id), 0) FROM revocations",
                    [],
                    |row| row.get(0),
                )?;
                u64::try_from(end).unwrap_or(0)
            }
        };
        Ok((entries, next_cursor, !more))
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

/// A stored revocation row as the wire carries it.
fn parse_revocation(kind: &str, value: String, at: i64) -> Result<Revocation, StoreError> {
    let corrupt = |what| StoreError::Corrupt {
        what,
        value: value.clone(),
    };
    match kind {
        "account" => Ok(Revocation::Account {
            user: Username::new(&value).map_err(|_| corrupt("revoked username"))?,
            before: UnixTime(u64::try_from(at).unwrap_or(0)),
        }),
        "node" => value
            .parse()
            .map(Revocation::Node)
            .map_err(|_| corrupt("revoked node key")),
        "serial" => value
            .parse()
            .map(Revocation::Serial)
            .map_err(|_| corrupt("revoked serial")),
        _ => Err(StoreError::Corrupt {
            what: "revocation kind",
            value: kind.to_owned(),
        }),
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
    fn disabling_puts_an_account_on_the_revocation_list_which_pages_completely_in_order() {
        let dir = temp_dir("revoke");
        let mut store = Store::open(&dir).unwrap();
        for n in ["a", "b", "c"] {
            store.add(&name(n), "h", Role::User, UnixTime(1)).unwrap();
        }
        store.disable(&name("b"), UnixTime(10)).unwrap();
        store.disable(&name("c"), UnixTime(11)).unwrap();
        store.revoke_serial(77, UnixTime(12)).unwrap();
        let device = switchboard_proto::SecretKey::from_seed([7; 32]).node_id();
        store.revoke_node(&device, UnixTime(13)).unwrap();
        store.revoke_node(&device, UnixTime(14)).unwrap(); // once is enough
        assert!(store.get(&name("b")).unwrap().unwrap().disabled);
        let account = |n, at| Revocation::Account {
            user: name(n),
            before: UnixTime(at),
        };
        let (entries, cursor, complete) = store.revocations(0, 2).unwrap();
        assert_eq!(entries, vec![account("b", 10), account("c", 11)]);
        assert!(!complete);
        let (entries, cursor, complete) = store.revocations(cursor, 2).unwrap();
        assert_eq!(
            entries,
            vec![Revocation::Serial(77), Revocation::Node(device)]
        );
        assert!(complete);
        // Added later: the next fetch from the same cursor gets exactly that.
        store.disable(&name("a"), UnixTime(20)).unwrap();
        let (entries, end, complete) = store.revocations(cursor, 2).unwrap();
        assert_eq!(entries, vec![account("a", 20)]);
        assert!(complete);
        let (entries, again, _) = store.revocations(end, 2).unwrap();
        assert!(entries.is_empty());
        assert_eq!(again, end, "nothing new: the cursor stays");
        assert!(matches!(
            store.disable(&name("zed"), UnixTime(30)),
            Err(StoreError::NotFound(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_ticket_is_revoked_by_its_account_until_the_revocation_its_node_or_its_serial() {
        let dir = temp_dir("revoked-ticket");
        let mut store = Store::open(&dir).unwrap();
        store
            .add(&name("sn3"), "h", Role::Supernode, UnixTime(1))
            .unwrap();
        let ticket = |node: u8, issued, serial| TicketBody {
            user: name("sn3"),
            node: NodeId::from_bytes([node; 32]),
            role: Role::Supernode,
            issued_at: UnixTime(issued),
            expires_at: UnixTime(issued + 100),
            serial,
        };
        assert!(!store.is_revoked(&ticket(1, 50, 5)).unwrap());
        store.disable(&name("sn3"), UnixTime(100)).unwrap();
        assert!(store.is_revoked(&ticket(1, 50, 5)).unwrap());
        assert!(store.is_revoked(&ticket(1, 100, 5)).unwrap());
        assert!(!store.is_revoked(&ticket(1, 101, 5)).unwrap());
        store
            .revoke_node(&NodeId::from_bytes([2; 32]), UnixTime(200))
            .unwrap();
        assert!(store.is_revoked(&ticket(2, 300, 6)).unwrap());
        assert!(store.is_node_revoked(&NodeId::from_bytes([2; 32])).unwrap());
        store.revoke_serial(9, UnixTime(200)).unwrap();
        assert!(store.is_revoked(&ticket(3, 300, 9)).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_database_keeps_its_disabled_accounts_and_serials_revoked_after_migrating() {
        let dir = temp_dir("migrate-v1");
        {
            let connection = Connection::open(dir.join(DATABASE_FILE)).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection.pragma_update(None, "user_version", 1).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO accounts (username, password_hash, role, disabled, created_at)
                     VALUES ('gone', 'h', 'user', 1, 1), ('here', 'h', 'user', 0, 1);
                     INSERT INTO revoked_serials (serial, revoked_at) VALUES (42, 5);",
                )
                .unwrap();
        }
        let store = Store::open(&dir).unwrap();
        let (entries, _, complete) = store.revocations(0, 10).unwrap();
        assert!(complete);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(matches!(&entries[0], Revocation::Account { user, .. } if user.as_str() == "gone"));
        assert_eq!(entries[1], Revocation::Serial(42));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
