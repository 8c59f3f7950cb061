//! The audit log's vocabulary: one record per read or queue transition, the
//! filter that lists them, and the two export formats.

use serde::Serialize;

/// One audit record: a read or a queue transition.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: String,
    /// "read" or "transition".
    pub kind: String,
    pub agent: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    pub entry_id: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    /// Who acted: an agent, "admin", "rule", "system".
    pub actor: Option<String>,
    /// Through which surface: agent, cli, web-admin, rule, system (later
    /// notification and window).
    pub surface: Option<String>,
    /// For a transition or an edit: the digest of the entry's requests then
    /// (for an approval, the digest the human approved).
    pub digest: Option<String>,
    /// For an edit: what it changed, as JSON (`digest_before`, `before`, `after`).
    pub detail: Option<String>,
    /// For refused or failed reads, counted rather than logged one by one:
    /// how many this agent had with this status in this minute (the record
    /// shows the first).
    pub count: Option<u32>,
}

/// Which audit records to list; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub agent: Option<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// A time as a person types it, in UTC.
pub fn parse_time(s: &str) -> crate::error::Result<time::OffsetDateTime> {
    let t = parse_any_time(s.trim())?;
    // Years the log's timestamps can state (and convert to UTC) only.
    if (1970..=9998).contains(&t.year()) {
        Ok(t)
    } else {
        Err(crate::error::Error::invalid(format!(
            "{s:?} is out of range: a time between 1970 and 9998"
        )))
    }
}

fn parse_any_time(s: &str) -> crate::error::Result<time::OffsetDateTime> {
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &rfc) {
        return Ok(t);
    }
    let minute = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &minute) {
        return Ok(t.assume_utc());
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day) {
        return Ok(d.midnight().assume_utc());
    }
    Err(crate::error::Error::invalid(format!(
        "{s:?} is not a time: write 2026-11-30, 2026-11-30T14:00 (UTC) or RFC 3339"
    )))
}

/// The audit log's export formats.
pub fn to_json_lines(records: &[AuditRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(r).unwrap_or_default());
        out.push('\n');
    }
    out
}

pub const CSV_HEADER: &str = "id,at,kind,agent,service,account,method,path,status,latency_ms,entry_id,from_status,to_status,actor,surface,digest,detail,count";

pub fn to_csv(records: &[AuditRecord]) -> String {
    fn field(out: &mut String, v: Option<String>) {
        let v = v.unwrap_or_default();
        // Cells that a spreadsheet would run as a formula get a leading quote.
        let v = if v.starts_with(['=', '+', '-', '@']) {
            format!("'{v}")
        } else {
            v
        };
        if v.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&v);
        }
    }
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for r in records {
        let cells = [
            Some(r.id.to_string()),
            Some(r.at.clone()),
            Some(r.kind.clone()),
            r.agent.clone(),
            r.service.clone(),
            r.account.clone(),
            r.method.clone(),
            r.path.clone(),
            r.status.map(|s| s.to_string()),
            r.latency_ms.map(|l| l.to_string()),
            r.entry_id.clone(),
            r.from_status.clone(),
            r.to_status.clone(),
            r.actor.clone(),
            r.surface.clone(),
            r.digest.clone(),
            r.detail.clone(),
            r.count.map(|c| c.to_string()),
        ];
        for (i, c) in cells.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, c);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        let r = AuditRecord {
            id: 1,
            at: "t".into(),
            kind: "read".into(),
            path: Some("/a,\"b\"".into()),
            agent: Some("=cmd()".into()),
            ..Default::default()
        };
        let csv = to_csv(&[r]);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.contains("\"/a,\"\"b\"\"\""), "{line}");
        assert!(line.contains("'=cmd()"), "{line}");
        assert_eq!(csv.lines().next().unwrap(), CSV_HEADER);
    }
}
