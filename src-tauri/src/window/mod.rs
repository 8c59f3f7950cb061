//! The window runs in a process of its own, started when it is opened and
//! ended when it is closed: WebKit (its libraries, its web and network
//! processes) is then gone entirely, and the tray process that keeps the
//! gateway, the tray and the notifications stays small. The two talk over
//! the window process's standard input (see [`protocol`]).

pub mod child;
mod protocol;

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

use protocol::Line;

/// The argument that starts the window process. Not for people: the window
/// process waits for its page on standard input.
pub const WINDOW_ARG: &str = "--window";

/// The tray process's handle on its window process, if one runs.
#[derive(Default)]
pub struct WindowProcess {
    running: Arc<Mutex<Option<Running>>>,
}

struct Running {
    stdin: ChildStdin,
    /// Which start this is, so that the reaper of an older one does not
    /// forget a newer one.
    generation: u64,
}

impl WindowProcess {
    /// Shows the window on `url` (a launch URL), starting the window process
    /// if none runs.
    pub fn open(&self, url: &str, tray: bool) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = running.as_mut() {
            // A window process that has just ended (its window closed) fails
            // the write: then a new one is started below.
            if send(&mut r.stdin, &Line::open(url)).is_ok() {
                return;
            }
        }
        let generation = running.as_ref().map_or(0, |r| r.generation) + 1;
        match self.start(url, tray, generation) {
            Ok(stdin) => *running = Some(Running { stdin, generation }),
            Err(e) => {
                *running = None;
                tracing::error!(error = %e, "the window could not be opened");
            }
        }
    }

    /// Tells the window process whether a tray shows the app.
    pub fn set_tray(&self, tray: bool) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = running.as_mut() {
            let _ = send(&mut r.stdin, &Line::tray(tray));
        }
    }

    /// Ends the window process (on Quit): its input closes, and it ends.
    pub fn close(&self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn start(&self, url: &str, tray: bool, generation: u64) -> std::io::Result<ChildStdin> {
        let mut child = Command::new(own_program()?)
            .arg(WINDOW_ARG)
            .stdin(Stdio::piped())
            .spawn()?;
        let Some(mut stdin) = child.stdin.take() else {
            return Err(std::io::Error::other("no pipe to the window process"));
        };
        send(
            &mut stdin,
            &format!("{}{}", Line::tray(tray), Line::open(url)),
        )?;
        // Reaped when it ends (no zombie), and forgotten then, unless a newer
        // one took its place meanwhile.
        let running = self.running.clone();
        std::thread::Builder::new()
            .name("window-reaper".into())
            .spawn(move || {
                match child.wait() {
                    Ok(status) if !status.success() => {
                        tracing::warn!(%status, "the window process ended abnormally")
                    }
                    Ok(_) => tracing::debug!("the window process ended"),
                    Err(e) => tracing::warn!(error = %e, "the window process was lost"),
                }
                let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
                if running.as_ref().is_some_and(|r| r.generation == generation) {
                    *running = None;
                }
            })?;
        Ok(stdin)
    }
}

fn send(stdin: &mut ChildStdin, lines: &str) -> std::io::Result<()> {
    stdin.write_all(lines.as_bytes())?;
    stdin.flush()
}

/// This very program. Its file may have been replaced since it started (a
/// package upgrade): then, on Linux, the kernel's link to the running image,
/// so that the window always matches the tray process.
fn own_program() -> std::io::Result<std::path::PathBuf> {
    let path = std::env::current_exe()?;
    #[cfg(target_os = "linux")]
    if !path.exists() || path.to_string_lossy().ends_with(" (deleted)") {
        return Ok("/proc/self/exe".into());
    }
    Ok(path)
}
