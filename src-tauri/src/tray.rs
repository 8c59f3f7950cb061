//! The tray: an icon that changes while writes wait, and a menu with the
//! number waiting, Open, Pause all agents, Start at login and Quit. It follows
//! the queue through the gateway's events, and looks again every few seconds
//! for what another process (the CLI) changed.

use std::sync::Arc;
use std::time::Duration;

use agentgate_core::QueueEvent;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Wry};
use tauri_plugin_autostart::ManagerExt;

use crate::Desktop;

const ICON: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_PENDING: &[u8] = include_bytes!("../../icons/tray-pending.png");
/// How often the tray looks for changes the event stream cannot see.
const RECHECK: Duration = Duration::from_secs(5);

struct Items {
    waiting: MenuItem<Wry>,
    pause: CheckMenuItem<Wry>,
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
        app.autolaunch().is_enabled().unwrap_or(false),
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit agentgate", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &waiting,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &pause,
            &autostart,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let gw = desktop.gw.clone();
    let tray = TrayIconBuilder::with_id("main")
        .icon(Image::from_bytes(ICON)?)
        .tooltip("agentgate")
        .menu(&menu)
        .on_menu_event(move |app, event| match event.id.as_ref() {
            "waiting" | "open" => crate::show_window(app, None),
            "pause" => {
                let paused = gw.is_paused().unwrap_or(false);
                if let Err(e) = gw.set_paused(!paused) {
                    tracing::error!(error = %e, "could not change the pause switch");
                }
            }
            "autostart" => {
                let launcher = app.autolaunch();
                let result = if launcher.is_enabled().unwrap_or(false) {
                    launcher.disable()
                } else {
                    launcher.enable()
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "could not change start at login");
                }
            }
            "quit" => crate::quit(app),
            _ => {}
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
    let items = Items { waiting, pause };
    let desktop = desktop.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(RECHECK);
        loop {
            refresh(&desktop, &items, tray.as_ref());
            tokio::select! {
                got = events.recv() => {
                    if matches!(got, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                _ = tick.tick() => {}
            }
        }
    });
    Ok(())
}

fn refresh(desktop: &Desktop, items: &Items, tray: Option<&tauri::tray::TrayIcon<Wry>>) {
    let n = desktop.gw.pending_count().unwrap_or(0);
    let paused = desktop.gw.is_paused().unwrap_or(false);
    let label = match n {
        0 => "Nothing waiting".to_string(),
        1 => "1 write waiting".to_string(),
        n => format!("{n} writes waiting"),
    };
    let _ = items.waiting.set_text(&label);
    let _ = items.pause.set_checked(paused);
    if let Some(tray) = tray {
        let icon = if n > 0 { ICON_PENDING } else { ICON };
        if let Ok(image) = Image::from_bytes(icon) {
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
