//! The desktop app: a thin Tauri shell over `agentgate-core`. It starts the
//! gateway (both listeners) on the app's runtime, keeps it serving while the
//! window is hidden, and adds what only a desktop can: a tray with the number
//! waiting and a pause switch, native notifications with Approve / Reject /
//! Review, a window signed in without the password, one instance, and start
//! at login. Every decision goes through the same core functions as the web
//! admin and the CLI.

mod args;
mod autostart;
mod host;
mod notify;
mod tray;
mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentgate_core::clock::SystemClock;
use agentgate_core::config::{Config, Overrides};
use agentgate_core::server::RunningServer;
use agentgate_core::{Gateway, credentials};
use tauri::{AppHandle, Manager, RunEvent};

/// How the desktop names itself in `reviewed_by` for decisions made in a
/// notification (the window is the web admin and names itself so).
pub const NOTIFICATION_REVIEWER: &str = "notification";

/// What the app keeps while it runs.
pub struct Desktop {
    pub gw: Gateway,
    pub admin_url: String,
    pub agent_addr: std::net::SocketAddr,
    server: std::sync::Mutex<Option<RunningServer>>,
    /// Set once Quit was chosen, so that the exit is not turned into a hide.
    quitting: AtomicBool,
    /// Whether a tray shows the app: then closing the window ends its
    /// process, else it is minimised so the app stays in reach. Looked at
    /// again with the tray's every recheck (a panel may start after the app,
    /// or go).
    pub(crate) tray: AtomicBool,
    /// The window, in a process of its own while it is open.
    pub(crate) window: window::WindowProcess,
}

/// Starts the app. Errors before the window exists are printed and end the
/// process with status 1.
pub fn run() {
    let launch = args::parse(std::env::args().skip(1));
    // Once, for both kinds of process: it embeds the app's assets.
    let context = tauri::generate_context!();
    let hidden = match launch {
        args::Launch::Run { hidden } => hidden,
        args::Launch::Print { text, status } => {
            // A closed pipe (`--help | head -1`) is no error worth a panic.
            use std::io::Write;
            let _ = if status == 0 {
                writeln!(std::io::stdout(), "{text}")
            } else {
                writeln!(std::io::stderr(), "{text}")
            };
            std::process::exit(status);
        }
        args::Launch::Autostart(on) => std::process::exit(autostart::command(on)),
        args::Launch::Window => {
            init_tracing();
            name_the_program();
            return window::child::run(context);
        }
    };
    init_tracing();
    name_the_program();
    let builder = tauri::Builder::default();
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(tauri_plugin_autostart::init(
        tauri_plugin_autostart::MacosLauncher::LaunchAgent,
        Some(vec![autostart::HIDDEN]),
    ));
    let app = builder
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch only brings the first one forward.
            show_window(app, None);
        }))
        .setup(move |app| {
            let gw = open_gateway()?;
            // Subscribed before the listeners open, so that no write queued in
            // the first instant goes unannounced.
            let (tray_events, notify_events) = (gw.subscribe(), gw.subscribe());
            let desktop = Arc::new(tauri::async_runtime::block_on(start_gateway(gw))?);
            let tray = tauri::async_runtime::block_on(host::tray_available());
            desktop.tray.store(tray, Ordering::SeqCst);
            if !tray {
                tracing::warn!(
                    "no system tray (StatusNotifier host) on this desktop: closing the window \
                     minimises it instead of hiding it; the app stops cleanly on SIGTERM \
                     (logout, kill); on GNOME, the AppIndicator extension adds a tray"
                );
            }
            app.manage(desktop.clone());
            tray::create(app.handle(), &desktop, tray_events)?;
            let notifier = notify::start(app.handle().clone(), desktop.clone(), notify_events);
            app.manage(notifier);
            // SIGTERM (logout, shutdown, `kill`) quits as the menu's Quit does,
            // so open requests and running batches finish.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                agentgate_core::server::shutdown_signal().await;
                quit(&handle);
            });
            if !hidden {
                show_window(app.handle(), None);
            }
            // The line tests and scripts wait for, as `agentgate serve` prints it.
            eprintln!(
                "agentgate: agents on http://{}, admin on {} (desktop)",
                desktop.agent_addr, desktop.admin_url
            );
            Ok(())
        })
        .build(context)
        .unwrap_or_else(|e| {
            eprintln!("agentgate: the desktop app could not start: {e}");
            std::process::exit(1);
        });
    // This process never has a window of its own (see `window`).
    app.run(|app, event| match event {
        RunEvent::ExitRequested { api, code, .. } => {
            let quitting = app
                .try_state::<Arc<Desktop>>()
                .is_some_and(|d| d.quitting.load(Ordering::SeqCst));
            // With no window left the app lives on in the tray; only Quit ends it.
            if !quitting && code.is_none() {
                api.prevent_exit();
            }
        }
        RunEvent::Exit => {
            if let Some(n) = app.try_state::<Arc<notify::Notifier>>() {
                n.withdraw_all();
            }
            if let Some(d) = app.try_state::<Arc<Desktop>>() {
                d.window.close();
                stop_gateway(&d);
            }
        }
        _ => {}
    });
}

/// Before GTK starts: the tray item and the window are "agentgate" to the
/// desktop (its title and class), as the desktop entry is named.
fn name_the_program() {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        glib::set_prgname(Some("agentgate"));
        glib::set_application_name("agentgate");
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Opens the data folder and the keychain, as `agentgate serve` would, from
/// the same configuration sources.
fn open_gateway() -> anyhow::Result<Gateway> {
    let config = Config::load(&Overrides::default())?;
    let creds = credentials::open(&config)?;
    Ok(Gateway::open(config, creds, Arc::new(SystemClock))?)
}

/// Opens both listeners.
async fn start_gateway(gw: Gateway) -> anyhow::Result<Desktop> {
    // The admin credential exists before anything listens: first-run setup
    // is never open on the desktop, whose window signs in by launch secret.
    gw.ensure_admin_credential()?;
    let server = agentgate_core::server::start(gw.clone()).await?;
    let ends = gw.clone();
    let window = window::WindowProcess::new(move || {
        if let Err(e) = ends.end_window_session() {
            tracing::warn!(error = %e, "could not end the closed window's session");
        }
    });
    Ok(Desktop {
        gw,
        admin_url: format!("http://{}", server.admin_addr),
        agent_addr: server.agent_addr,
        server: std::sync::Mutex::new(Some(server)),
        quitting: AtomicBool::new(false),
        tray: AtomicBool::new(true),
        window,
    })
}

/// Stops the gateway gracefully: open requests and executing batches finish.
fn stop_gateway(d: &Desktop) {
    let server = d.server.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(server) = server {
        tauri::async_runtime::block_on(server.shutdown());
    }
}

/// Quits the app: every notification is withdrawn, the gateway stops
/// cleanly, then the process ends.
pub fn quit(app: &AppHandle) {
    if let Some(d) = app.try_state::<Arc<Desktop>>() {
        d.quitting.store(true, Ordering::SeqCst);
    }
    if let Some(n) = app.try_state::<Arc<notify::Notifier>>() {
        n.withdraw_all();
    }
    if let Some(d) = app.try_state::<Arc<Desktop>>() {
        d.window.close();
    }
    app.exit(0);
}

impl Desktop {
    /// Whether Quit was chosen.
    pub fn quitting(&self) -> bool {
        self.quitting.load(Ordering::SeqCst)
    }
}

/// Shows the window (creating it the first time), signed in with a fresh
/// single-use launch secret, on the given queue entry if any.
pub fn show_window(app: &AppHandle, entry: Option<&str>) {
    open_window(app, entry.map(|id| format!("&entry={id}")).as_deref())
}

/// Shows one of the window's pages by name (`grants`, `audit`, ...).
pub fn show_page(app: &AppHandle, page: &str) {
    open_window(app, Some(&format!("&page={page}")))
}

fn open_window(app: &AppHandle, extra: Option<&str>) {
    let Some(d) = app.try_state::<Arc<Desktop>>() else {
        return;
    };
    let mut url = format!(
        "{}/ui/launch?secret={}",
        d.admin_url,
        d.gw.launch_secret().expose()
    );
    if let Some(extra) = extra {
        url.push_str(extra);
    }
    d.window.open(&url, d.tray.load(Ordering::SeqCst));
}
