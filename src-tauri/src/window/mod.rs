//! The window runs in a process of its own, started when it is opened and
//! ended when it is closed: WebKit (its libraries, its web and network
//! processes) is then gone entirely, and the tray process that keeps the
//! gateway, the tray and the notifications stays small. The two talk over
//! the window process's standard input (see [`protocol`]).

pub mod child;
mod protocol;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use protocol::Line;

/// The argument that starts the window process. Not for people: the window
/// process waits for its page on standard input.
pub const WINDOW_ARG: &str = "--window";

/// What the window process answers on its standard output for each page it
/// was asked to show, once it shows it.
const SHOWN: &str = "shown";

/// The tray process's handle on its window process, if one runs.
pub struct WindowProcess {
    state: Arc<Mutex<State>>,
}

/// Called when the window process ends and no other took its place: the
/// desktop ends the window's session, so the cookie it held is worthless.
type OnEnd = Arc<dyn Fn() + Send + Sync>;

struct State {
    on_end: OnEnd,
    running: Option<Running>,
    /// How many window processes were started, so that the reaper of an
    /// older one does not forget a newer one.
    started: u64,
}

struct Running {
    stdin: ChildStdin,
    generation: u64,
    tray: bool,
    /// The last page asked for, and how many asks the window process has
    /// not yet answered (it says `shown` for each): a process that ends
    /// with its window closed just as Open was pressed never read that ask,
    /// and a new one shows the page instead.
    last: String,
    unanswered: Arc<AtomicU64>,
}

impl WindowProcess {
    pub fn new(on_end: impl Fn() + Send + Sync + 'static) -> WindowProcess {
        WindowProcess {
            state: Arc::new(Mutex::new(State {
                on_end: Arc::new(on_end),
                running: None,
                started: 0,
            })),
        }
    }

    /// Shows the window on `url` (a launch URL), starting the window process
    /// if none runs.
    pub fn open(&self, url: &str, tray: bool) {
        let mut state = lock(&self.state);
        if let Some(r) = state.running.as_mut() {
            r.unanswered.fetch_add(1, Ordering::SeqCst);
            r.last = url.to_string();
            // A window process that has already ended fails the write: then
            // a new one is started below.
            if send(&mut r.stdin, &Line::open(url)).is_ok() {
                return;
            }
        }
        start(&self.state, &mut state, url, tray);
    }

    /// Tells the window process whether a tray shows the app.
    pub fn set_tray(&self, tray: bool) {
        let mut state = lock(&self.state);
        if let Some(r) = state.running.as_mut() {
            r.tray = tray;
            let _ = send(&mut r.stdin, &Line::tray(tray));
        }
    }

    /// Ends the window process (on Quit): its input closes, and it ends.
    pub fn close(&self) {
        lock(&self.state).running.take();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a window process showing `url`, in place of any before it.
fn start(shared: &Arc<Mutex<State>>, state: &mut State, url: &str, tray: bool) {
    state.started += 1;
    let generation = state.started;
    match spawn(shared, url, tray, generation) {
        Ok((stdin, unanswered)) => {
            state.running = Some(Running {
                stdin,
                generation,
                tray,
                last: url.to_string(),
                unanswered,
            });
        }
        Err(e) => {
            state.running = None;
            tracing::error!(error = %e, "the window could not be opened");
        }
    }
}

fn spawn(
    shared: &Arc<Mutex<State>>,
    url: &str,
    tray: bool,
    generation: u64,
) -> std::io::Result<(ChildStdin, Arc<AtomicU64>)> {
    let mut child = Command::new(own_program()?)
        .arg(WINDOW_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(std::io::Error::other("no pipes to the window process"));
    };
    send(
        &mut stdin,
        &format!("{}{}", Line::tray(tray), Line::open(url)),
    )?;
    let unanswered = Arc::new(AtomicU64::new(1));
    let answered = unanswered.clone();
    let shared = shared.clone();
    // Counts the answers, reaps the process when it ends (no zombie) and
    // forgets it then, unless a newer one took its place; shows again what
    // it was asked for and did not live to show.
    std::thread::Builder::new()
        .name("window-reaper".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == SHOWN {
                    let _ = answered
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                }
            }
            let status = child.wait();
            match &status {
                Ok(s) if !s.success() => {
                    tracing::warn!(status = %s, "the window process ended abnormally")
                }
                Ok(_) => tracing::debug!("the window process ended"),
                Err(e) => tracing::warn!(error = %e, "the window process was lost"),
            }
            self::child::forget_data(child.id());
            let mut state = lock(&shared);
            let Some(r) = state.running.take_if(|r| r.generation == generation) else {
                return;
            };
            (state.on_end)();
            // Only after a clean end (its window closed): a crash is not
            // repeated.
            if status.is_ok_and(|s| s.success()) && answered.load(Ordering::SeqCst) > 0 {
                tracing::info!("the window closed as it was asked to open: opening it again");
                start(&shared, &mut state, &r.last, r.tray);
            }
        })?;
    Ok((stdin, unanswered))
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
