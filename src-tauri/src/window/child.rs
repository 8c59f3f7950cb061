//! The window process: one webview window showing the admin UI, signed in by
//! the launch URL the tray process sends. It lives as long as its window
//! (with a tray) and never longer than the tray process.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use super::protocol::Line;

/// Whether a tray shows the app, as the tray process last said.
struct Tray(AtomicBool);

/// The longest line read from the tray process; a longer one ends the window.
const MAX_LINE: usize = 4096;

/// Where this window process keeps its web data (the session cookie, the
/// cache): a folder of its own under `$XDG_RUNTIME_DIR` (in memory, this user
/// only), made private and removed when the process ends (by the tray
/// process too, should it crash), never in a persistent folder.
fn data_dir(pid: u32) -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("agentgate-window-{pid}"))
}

/// Removes what window process `pid` kept.
pub fn forget_data(pid: u32) {
    let _ = std::fs::remove_dir_all(data_dir(pid));
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    // A folder left by an earlier process of the same number goes first.
    let _ = std::fs::remove_dir_all(dir);
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Runs the window process until its window is closed (with a tray) or the
/// tray process goes.
pub fn run(context: tauri::Context) {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "agentgate-desktop: {} is how the app opens its own window; run agentgate-desktop",
            super::WINDOW_ARG
        );
        std::process::exit(2);
    }
    let data = data_dir(std::process::id());
    if let Err(e) = private_dir(&data) {
        eprintln!(
            "agentgate: the window could not make {}: {e}",
            data.display()
        );
        std::process::exit(1);
    }
    let tray = Arc::new(Tray(AtomicBool::new(true)));
    let app = tauri::Builder::default()
        .manage(tray.clone())
        .setup(move |app| {
            let handle = app.handle().clone();
            std::thread::Builder::new()
                .name("window-input".into())
                .spawn(move || follow(&handle, &tray, &data))?;
            Ok(())
        })
        .build(context)
        .unwrap_or_else(|e| {
            eprintln!("agentgate: the window could not start: {e}");
            std::process::exit(1);
        });
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            forget_data(std::process::id());
        }
        // Closing the window ends this process (the gateway serves on in the
        // tray); without a tray it is minimised, so the app stays in reach.
        if let RunEvent::WindowEvent {
            label,
            event: WindowEvent::CloseRequested { api, .. },
            ..
        } = event
        {
            let tray = app
                .try_state::<Arc<Tray>>()
                .is_none_or(|t| t.0.load(Ordering::SeqCst));
            if !tray {
                api.prevent_close();
                if let Some(w) = app.get_webview_window(&label) {
                    let _ = w.minimize();
                }
            }
        }
    });
}

/// Reads the tray process's lines until the pipe closes, then ends. The
/// first page shown fixes the admin's origin: nothing of another is loaded
/// into the signed-in window after it.
fn follow(app: &AppHandle, tray: &Tray, data: &Path) {
    let mut origin: Option<tauri::Url> = None;
    let mut input = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        match (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_LINE => {
                tracing::warn!("a line from the tray process was too long: the window ends");
                break;
            }
            Ok(_) => {}
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            tracing::warn!("the window ignored a line from the tray process that is not UTF-8");
            continue;
        };
        match Line::parse(line) {
            Ok(Line::Tray(on)) => tray.0.store(on, Ordering::SeqCst),
            Ok(Line::Open(url)) => {
                let pinned = origin.get_or_insert_with(|| url.clone());
                if pinned.origin() != url.origin() {
                    tracing::warn!("the window ignored a page of another origin than the admin's");
                    continue;
                }
                show(app, url, data);
                // The tray process counts these (see `WindowProcess`).
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", super::SHOWN).and_then(|()| out.flush());
            }
            Err(why) => tracing::warn!(%why, "the window ignored a line from the tray process"),
        }
    }
    app.exit(0);
}

fn show(app: &AppHandle, url: tauri::Url, data: &Path) {
    match app.get_webview_window("main") {
        Some(w) => {
            let _ = w.navigate(url);
            let _ = w.show();
            let _ = w.unminimize();
            let _ = w.set_focus();
        }
        None => {
            let built = WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url))
                .title("agentgate")
                .inner_size(960.0, 760.0)
                .min_inner_size(360.0, 480.0)
                .data_directory(data.to_path_buf())
                .build();
            if let Err(e) = built {
                tracing::error!(error = %e, "the window could not be opened");
                app.exit(1);
            }
        }
    }
}
