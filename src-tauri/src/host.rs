//! The app's questions to the session bus, on one connection made at first
//! use: whether the desktop shows tray icons at all, and who serves
//! notifications. A StatusNotifier host (KDE, most Linux desktops; GNOME only
//! with the AppIndicator extension) owns `org.kde.StatusNotifierWatcher`;
//! without one the tray icon is never seen, so the app must stay reachable
//! another way.

/// The D-Bus name a tray host owns.
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// Whether a tray host is running now. Other platforms always have a tray.
pub async fn tray_available() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        owner(WATCHER).await.is_some()
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        let _ = WATCHER;
        true
    }
}

/// The unique bus name that owns `name` now, if any; none when the bus does
/// not answer within 3 s.
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn owner(name: &str) -> Option<String> {
    let ask = async {
        let conn = session().await?;
        let bus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(name)?;
        Ok::<String, zbus::Error>(bus.get_name_owner(name).await?.to_string())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), ask).await {
        Ok(Ok(owner)) => Some(owner),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, name, "the session bus named no owner");
            None
        }
        Err(_) => None,
    }
}

/// The app's one connection to the session bus, made at first use.
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn session() -> zbus::Result<zbus::Connection> {
    static BUS: tokio::sync::OnceCell<zbus::Connection> = tokio::sync::OnceCell::const_new();
    BUS.get_or_try_init(zbus::Connection::session)
        .await
        .cloned()
}
