//! What this app has on screen, kept in a small file under
//! `$XDG_RUNTIME_DIR`, so that a run after a crash (SIGKILL, a power cut of
//! the session) closes the notifications the dead run left with buttons that
//! no longer do anything. The file names the notification server by its bus
//! name too: a restarted server has dropped the old notifications and may
//! have given their ids to other apps', which must not be closed.

use std::path::PathBuf;

fn path() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    dir.is_absolute()
        .then(|| dir.join("agentgate-notifications"))
}

/// The unique bus name of the notification server now, if any.
fn server() -> Option<String> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        tauri::async_runtime::block_on(crate::host::owner("org.freedesktop.Notifications"))
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    None
}

/// Records the ids on screen (an empty list when none are).
pub fn save(ids: &[u32]) {
    let Some(path) = path() else { return };
    if ids.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let Some(server) = server() else { return };
    let text = std::iter::once(server)
        .chain(ids.iter().map(u32::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// Closes what a run before this one left on screen, if the same server
/// still shows it.
pub fn close_leftovers() {
    let Some(path) = path() else { return };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let _ = std::fs::remove_file(&path);
    let mut lines = text.lines();
    if lines.next().map(str::to_string) != server() {
        return;
    }
    for id in lines.filter_map(|l| l.trim().parse::<u32>().ok()) {
        super::close(id, "agentgate restarted");
    }
}
