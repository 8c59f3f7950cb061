//! The `accounts` table: service accounts, their base URL, the version of
//! their secret (the secret itself is in the credential store), their access
//! list and endpoint rules, and the outcome of their last test.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, is_unique_violation, json_column};
use crate::error::{Error, Result};
use crate::policy::{AccessMode, AccountPolicy};

/// The columns [`account_from_row`] reads, in its order (a macro, so that
/// `concat!` builds each query at compile time).
macro_rules! account_columns {
    () => {
        "id, service, name, base_url, secret_version, created_at, updated_at, needs_reconnect,
         access_mode, access_agents, rules, identity, tested_at, test_error"
    };
}

#[derive(Debug, Clone)]
pub(crate) struct AccountRow {
    /// Never reused, so (id, secret_version) names one version of one account's secret
    /// even across a remove and re-add under the same name.
    pub id: i64,
    pub service: String,
    pub name: String,
    pub base_url: Option<String>,
    pub secret_version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub needs_reconnect: Option<String>,
    /// Who may use the account and its endpoint rules, decoded once per row.
    pub policy: AccountPolicy,
    /// The API base the account's requests go to (its own base URL or the
    /// service's default), parsed once per row; `None` if neither parses, which
    /// the caller reports.
    pub api_base: Option<url::Url>,
    /// The account's name at the service, from the last successful test.
    pub identity: Option<String>,
    pub tested_at: Option<String>,
    /// Why the last test failed, if it did.
    pub test_error: Option<String>,
}

impl Store {
    pub fn insert_account(
        &self,
        service: &str,
        name: &str,
        base_url: Option<&str>,
        now: &str,
    ) -> Result<()> {
        match self.conn().execute(
            "INSERT INTO accounts (service, name, base_url, secret_version, created_at, updated_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)",
            params![service, name, base_url, now],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                "a {service} account named {name:?} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn account(&self, service: &str, name: &str) -> Result<Option<AccountRow>> {
        select_account(&self.conn(), service, name)
    }

    pub fn accounts(&self) -> Result<Vec<AccountRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts ORDER BY service, name"
        ))?;
        let rows = stmt.query_map([], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Changes the base URL and, when the secret was replaced, bumps its version so
    /// that every process drops its cached copy.
    pub fn update_account(
        &self,
        service: &str,
        name: &str,
        base_url: Option<Option<&str>>,
        secret_changed: bool,
        now: &str,
    ) -> Result<bool> {
        let conn = self.conn();
        let n = match base_url {
            Some(url) => conn.execute(
                "UPDATE accounts SET base_url = ?3, secret_version = secret_version + ?4, updated_at = ?5
                 WHERE service = ?1 AND name = ?2",
                params![service, name, url, secret_changed as i64, now],
            )?,
            None => conn.execute(
                "UPDATE accounts SET secret_version = secret_version + ?3, updated_at = ?4
                 WHERE service = ?1 AND name = ?2",
                params![service, name, secret_changed as i64, now],
            )?,
        };
        Ok(n == 1)
    }

    pub fn set_needs_reconnect(
        &self,
        service: &str,
        name: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET needs_reconnect = ?3 WHERE service = ?1 AND name = ?2",
            params![service, name, reason],
        )?;
        Ok(())
    }

    /// Records the outcome of an account test. A failed test keeps the identity
    /// last seen, so the admin still knows which account it was.
    pub fn record_account_test(
        &self,
        service: &str,
        name: &str,
        identity: Option<&str>,
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET identity = COALESCE(?3, identity), test_error = ?4, tested_at = ?5
             WHERE service = ?1 AND name = ?2",
            params![service, name, identity, error, now],
        )?;
        Ok(())
    }

    pub fn delete_account(&self, service: &str, name: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM accounts WHERE service = ?1 AND name = ?2",
            params![service, name],
        )? == 1)
    }
}

pub(super) fn select_account(
    conn: &Connection,
    service: &str,
    name: &str,
) -> Result<Option<AccountRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE service = ?1 AND name = ?2"
    ))?;
    Ok(stmt
        .query_row(params![service, name], account_from_row)
        .optional()?)
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let service: String = r.get(1)?;
    let base_url: Option<String> = r.get(3)?;
    let api_base = base_url
        .as_deref()
        .or_else(|| crate::services::find(&service).and_then(|d| d.default_base_url))
        .and_then(|u| url::Url::parse(u).ok());
    Ok(AccountRow {
        api_base,
        id: r.get(0)?,
        service,
        name: r.get(2)?,
        base_url,
        secret_version: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        needs_reconnect: r.get(7)?,
        policy: AccountPolicy {
            mode: {
                let s: String = r.get(8)?;
                AccessMode::parse(&s).unwrap_or(AccessMode::Allowlist)
            },
            listed: json_column(r, 9)?,
            rules: json_column(r, 10)?,
        },
        identity: r.get(11)?,
        tested_at: r.get(12)?,
        test_error: r.get(13)?,
    })
}
