//! The window process: one webview window showing the admin UI, signed in by
//! the launch URL the tray process sends. It lives as long as its window
//! (with a tray) and never longer than the tray process.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use super::protocol::Line;

/// Whether a tray shows the app, as the tray process last said.
struct Tray(AtomicBool);

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
    let tray = Arc::new(Tray(AtomicBool::new(true)));
    let app = tauri::Builder::default()
        .manage(tray.clone())
        .setup(move |app| {
            let handle = app.handle().clone();
            std::thread::Builder::new()
                .name("window-input".into())
                .spawn(move || follow(&handle, &tray))?;
            Ok(())
        })
        .build(context)
        .unwrap_or_else(|e| {
            eprintln!("agentgate: the window could not start: {e}");
            std::process::exit(1);
        });
    app.run(|app, event| {
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

/// Reads the tray process's lines until the pipe closes, then ends.
fn follow(app: &AppHandle, tray: &Tray) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match Line::parse(&line) {
            Ok(Line::Tray(on)) => tray.0.store(on, Ordering::SeqCst),
            Ok(Line::Open(url)) => {
                show(app, url);
                // The tray process counts these (see `WindowProcess`).
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", super::SHOWN).and_then(|()| out.flush());
            }
            Err(why) => tracing::warn!(%why, "the window ignored a line from the tray process"),
        }
    }
    app.exit(0);
}

fn show(app: &AppHandle, url: tauri::Url) {
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
                .build();
            if let Err(e) = built {
                tracing::error!(error = %e, "the window could not be opened");
                app.exit(1);
            }
        }
    }
}
