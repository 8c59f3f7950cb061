//! The tray: an icon that changes while writes wait, and a menu with the
//! number waiting, Open, the grants running (each revoked with one click),
//! Pause all agents, Start at login and Quit. It follows the queue through
//! the gateway's events, and looks again every few seconds for what another
//! process (the CLI) changed. The icon and the grants are set only when they
//! change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentgate_core::QueueEvent;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Wry};

use crate::Desktop;

const ICON: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_PENDING: &[u8] = include_bytes!("../../icons/tray-pending.png");
/// How often the tray looks for changes the event stream cannot see.
const RECHECK: Duration = Duration::from_secs(5);

/// Where the grants' submenu sits in the menu.
const GRANTS_AT: usize = 3;

/// Longest grant label in the menu; the Grants page has the rest.
const GRANT_LABEL: usize = 90;

struct Items {
    waiting: MenuItem<Wry>,
    pause: CheckMenuItem<Wry>,
    /// The whole menu, in which the grants' submenu is replaced as a whole
    /// (a submenu's title set in place does not reach the panel).
    menu: Menu<Wry>,
    /// The grants' submenu, at [`GRANTS_AT`] in the menu.
    grants: Mutex<Submenu<Wry>>,
    /// What the tray shows now, so that nothing is set again unchanged.
    shown: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    /// Anything waiting, and paused.
    icon: Option<(bool, bool)>,
    /// Each grant's id and label.
    grants: Vec<(i64, String)>,
}

/// A grant as a menu label: plain text (agent text, a path, may be in it),
/// with `&` doubled since menus read one as a keyboard accelerator.
fn grant_label(g: &agentgate_core::GrantInfo) -> String {
    let words = agentgate_core::display::terminal_line(&g.words).replace('&', "&&");
    let mut label = format!("Revoke: {words}");
    if label.chars().count() > GRANT_LABEL {
        label = label.chars().take(GRANT_LABEL - 1).collect::<String>() + "…";
    }
    label
}

pub fn create(
    app: &AppHandle,
    desktop: &Arc<Desktop>,
    mut events: tokio::sync::broadcast::Receiver<QueueEvent>,
) -> tauri::Result<()> {
    let waiting = MenuItem::with_id(app, "waiting", "Nothing waiting", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open agentgate", true, None::<&str>)?;
    let pause = CheckMenuItem::with_id(
        app,
        "pause",
        "Pause all agents",
        true,
        desktop.gw.is_paused().unwrap_or(false),
        None::<&str>,
    )?;
    let autostart = CheckMenuItem::with_id(
        app,
        "autostart",
        "Start at login",
        true,
        crate::autostart::is_enabled(app),
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit agentgate", true, None::<&str>)?;
    let grants = grants_menu(app, &[])?;
    let menu = Menu::with_items(
        app,
        &[
            &waiting,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &grants,
            &pause,
            &autostart,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let gw = desktop.gw.clone();
    // A press in the menu asks for a fresh look at once.
    let nudge = Arc::new(tokio::sync::Notify::new());
    let nudged = nudge.clone();
    let tray = TrayIconBuilder::with_id("main")
        .icon(Image::from_bytes(ICON)?)
        .tooltip("agentgate")
        .menu(&menu)
        .on_menu_event(move |app, event| match event.id.as_ref() {
            "waiting" | "open" => crate::show_window(app, None),
            "open-grants" => crate::show_page(app, "grants"),
            "pause" => {
                let paused = gw.is_paused().unwrap_or(false);
                if let Err(e) = gw.set_paused(!paused) {
                    tracing::error!(error = %e, "could not change the pause switch");
                }
            }
            "autostart" => {
                let on = !crate::autostart::is_enabled(app);
                match crate::autostart::set(Some(app), on) {
                    Ok(path) => tracing::info!(on, entry = ?path, "start at login changed"),
                    Err(e) => tracing::error!(error = %e, "could not change start at login"),
                }
            }
            "quit" => crate::quit(app),
            id => {
                if let Some(grant) = id.strip_prefix("grant-").and_then(|n| n.parse().ok()) {
                    match gw.revoke_grant(grant) {
                        Ok(()) | Err(agentgate_core::Error::NotFound(_)) => {}
                        Err(e) => tracing::error!(error = %e, "could not revoke the grant"),
                    }
                }
                nudged.notify_one();
            }
        })
        .build(app);
    // Without a StatusNotifier host there is no tray to show; the gateway and
    // the notifications carry on.
    let tray = match tray {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "no system tray available");
            None
        }
    };
    let items = Items {
        waiting,
        pause,
        menu,
        grants: Mutex::new(grants),
        shown: Mutex::new(Shown::default()),
    };
    let desktop = desktop.clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(RECHECK);
        loop {
            refresh(&app, &desktop, &items, tray.as_ref());
            tokio::select! {
                _ = nudge.notified() => {}
                got = events.recv() => {
                    if matches!(got, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                _ = tick.tick() => {
                    // A panel may start after the app (at login), or go.
                    let host = crate::host::tray_available().await;
                    if desktop.tray.swap(host, std::sync::atomic::Ordering::SeqCst) != host {
                        desktop.window.set_tray(host);
                        tracing::info!(
                            tray = host,
                            "a system tray came or went: closing the window now {}",
                            if host { "closes it" } else { "minimises it" }
                        );
                    }
                }
            }
        }
    });
    Ok(())
}

fn refresh(
    app: &AppHandle,
    desktop: &Desktop,
    items: &Items,
    tray: Option<&tauri::tray::TrayIcon<Wry>>,
) {
    let n = desktop.gw.pending_count().unwrap_or(0);
    let paused = desktop.gw.is_paused().unwrap_or(false);
    let label = match n {
        0 => "Nothing waiting".to_string(),
        1 => "1 write waiting".to_string(),
        n => format!("{n} writes waiting"),
    };
    let _ = items.waiting.set_text(&label);
    let _ = items.pause.set_checked(paused);
    let mut shown = items.shown.lock().unwrap_or_else(|e| e.into_inner());
    let grants: Vec<(i64, String)> = desktop
        .gw
        .grants()
        .unwrap_or_default()
        .iter()
        .map(|g| (g.id, grant_label(g)))
        .collect();
    if grants != shown.grants {
        show_grants(app, items, &grants);
        shown.grants = grants;
    }
    let state = Some((n > 0, paused));
    let changed = shown.icon != state;
    shown.icon = state;
    if let Some(tray) = tray {
        let icon = if n > 0 { ICON_PENDING } else { ICON };
        if changed && let Ok(image) = Image::from_bytes(icon) {
            let _ = tray.set_icon(Some(image));
        }
        let tooltip = if paused {
            format!("agentgate: {label}; agents paused")
        } else {
            format!("agentgate: {label}")
        };
        let _ = tray.set_tooltip(Some(&tooltip));
    }
}

/// Puts the running grants in a new submenu in place of the old one, each
/// item revoking its grant.
fn show_grants(app: &AppHandle, items: &Items, grants: &[(i64, String)]) {
    let fresh = match grants_menu(app, grants) {
        Ok(menu) => menu,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the grants in the tray");
            return;
        }
    };
    let mut shown = items.grants.lock().unwrap_or_else(|e| e.into_inner());
    let _ = items.menu.remove(&*shown);
    if let Err(e) = items.menu.insert(&fresh, GRANTS_AT) {
        tracing::warn!(error = %e, "could not list the grants in the tray");
    }
    *shown = fresh;
}

/// The grants' submenu: its title counts them, one Revoke item each, then
/// the Grants page.
fn grants_menu(app: &AppHandle, grants: &[(i64, String)]) -> tauri::Result<Submenu<Wry>> {
    let title = match grants.len() {
        0 => "No grants running".to_string(),
        1 => "1 grant running".to_string(),
        n => format!("{n} grants running"),
    };
    let menu = Submenu::with_id(app, "grants", title, true)?;
    for (id, label) in grants {
        menu.append(&MenuItem::with_id(
            app,
            format!("grant-{id}"),
            label,
            true,
            None::<&str>,
        )?)?;
    }
    menu.append(&MenuItem::with_id(
        app,
        "open-grants",
        "All grants…",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}
