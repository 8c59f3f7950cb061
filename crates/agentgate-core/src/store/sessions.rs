//! The `admin_sessions` table: digests of admin session tokens with their expiry.

use rusqlite::params;

use super::Store;
use crate::error::Result;

impl Store {
    pub fn insert_session(&self, digest: &[u8], now: &str, expires_at: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ?1", [now])?;
        conn.execute(
            "INSERT INTO admin_sessions (token_digest, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![digest, now, expires_at],
        )?;
        Ok(())
    }

    pub fn session_valid(&self, digest: &[u8], now: &str) -> Result<bool> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM admin_sessions WHERE token_digest = ?1 AND expires_at > ?2",
        )?;
        Ok(stmt.exists(params![digest, now])?)
    }

    pub fn delete_session(&self, digest: &[u8]) -> Result<()> {
        self.conn().execute(
            "DELETE FROM admin_sessions WHERE token_digest = ?1",
            [digest],
        )?;
        Ok(())
    }

    /// Ends every session but the one with `digest`.
    pub fn delete_other_sessions(&self, digest: &[u8]) -> Result<()> {
        self.conn().execute(
            "DELETE FROM admin_sessions WHERE token_digest <> ?1",
            [digest],
        )?;
        Ok(())
    }

    pub fn delete_all_sessions(&self) -> Result<()> {
        self.conn().execute("DELETE FROM admin_sessions", [])?;
        Ok(())
    }
}
