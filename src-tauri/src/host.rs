//! Whether the desktop shows tray icons at all. A StatusNotifier host (KDE,
//! most Linux desktops; GNOME only with the AppIndicator extension) owns
//! `org.kde.StatusNotifierWatcher` on the session bus; without one the tray
//! icon is never seen, so the app must stay reachable another way.

/// The D-Bus name a tray host owns.
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Whether a tray host is running now. Other platforms always have a tray.
pub async fn tray_available() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let ask = async {
            let conn = zbus::Connection::session().await?;
            let bus = zbus::fdo::DBusProxy::new(&conn).await?;
            let name = zbus::names::BusName::try_from(WATCHER)?;
            Ok::<bool, zbus::Error>(bus.name_has_owner(name).await?)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(3), ask).await {
            Ok(Ok(owned)) => owned,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the session bus could not be asked for a tray");
                false
            }
            Err(_) => false,
        }
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        let _ = WATCHER;
        true
    }
}
