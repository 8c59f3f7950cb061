//! Start at login, in the tray (`--hidden`).
//!
//! On Linux the app writes the XDG autostart entry itself,
//! `$XDG_CONFIG_HOME/autostart/agentgate.desktop` (`~/.config` when unset), as
//! the XDG Autostart specification says, so that the entry lands where the
//! session looks for it and names the `--hidden` flag. An AppImage's entry names
//! the AppImage (`$APPIMAGE`), not the mount it runs from. On macOS and Windows
//! the autostart plugin does it the platform's way, with the same flag.

use std::path::PathBuf;

/// The flag start at login passes.
pub const HIDDEN: &str = "--hidden";

#[cfg(target_os = "linux")]
mod imp {
    use std::path::PathBuf;

    /// Where the session looks for autostart entries.
    fn dir() -> Option<PathBuf> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(config.join("autostart"))
    }

    pub fn entry() -> Option<PathBuf> {
        Some(dir()?.join("agentgate.desktop"))
    }

    /// A desktop entry's `Exec` argument, quoted as the specification says:
    /// inside double quotes, `"`, `` ` ``, `$` and `\` take a backslash; the
    /// value is then a string, whose every backslash is doubled; a literal `%`
    /// is `%%`. `None` for a path no entry can hold (a line break or another
    /// control character).
    fn quoted(arg: &str) -> Option<String> {
        if arg.chars().any(char::is_control) {
            return None;
        }
        let mut inner = String::new();
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                inner.push('\\');
            }
            inner.push(c);
        }
        let string = inner.replace('\\', "\\\\").replace('%', "%%");
        Some(format!("\"{string}\""))
    }

    pub fn set(on: bool) -> std::io::Result<PathBuf> {
        let path = entry().ok_or_else(|| std::io::Error::other("no home folder"))?;
        if !on {
            match std::fs::remove_file(&path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
                Err(e) => return Err(e),
            }
        }
        let exe = match std::env::var_os("APPIMAGE") {
            Some(image) => PathBuf::from(image),
            None => std::env::current_exe()?,
        };
        let exe = exe
            .to_str()
            .ok_or_else(|| std::io::Error::other("the program's path is not UTF-8"))?;
        let exec = quoted(exe).ok_or_else(|| {
            std::io::Error::other(
                "the program's path holds a line break; move it to start it at login",
            )
        })?;
        let text = format!(
            "[Desktop Entry]\nType=Application\nName=agentgate\n\
             Comment=The agentgate gateway, in the tray\n\
             Exec={} {}\nIcon=agentgate-desktop\nTerminal=false\nStartupNotify=false\n\
             X-GNOME-Autostart-enabled=true\n",
            exec,
            super::HIDDEN
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
        Ok(path)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn exec_arguments_are_quoted() {
            let q = |s| super::quoted(s).unwrap();
            assert_eq!(q("/opt/a b/app"), "\"/opt/a b/app\"");
            // `$` takes a backslash, which the string level doubles.
            assert_eq!(q("/x/$H"), "\"/x/\\\\$H\"");
            assert_eq!(q("/x/\"q"), "\"/x/\\\\\"q\"");
            assert_eq!(q("/x/`c`"), "\"/x/\\\\`c\\\\`\"");
            assert_eq!(q("/x/\\y"), "\"/x/\\\\\\\\y\"");
            assert_eq!(q("/x/%u"), "\"/x/%%u\"");
            assert_eq!(super::quoted("/x/a\nb"), None);
        }
    }
}

/// Whether the app starts at login.
pub fn is_enabled(app: &tauri::AppHandle) -> bool {
    #[cfg(target_os = "linux")]
    {
        let _ = app;
        imp::entry().is_some_and(|p| p.exists())
    }
    #[cfg(not(target_os = "linux"))]
    {
        use tauri_plugin_autostart::ManagerExt;
        app.autolaunch().is_enabled().unwrap_or(false)
    }
}

/// Turns start at login on or off; where the entry is, when there is a file.
pub fn set(app: Option<&tauri::AppHandle>, on: bool) -> anyhow::Result<Option<PathBuf>> {
    #[cfg(target_os = "linux")]
    {
        let _ = app;
        Ok(Some(imp::set(on)?))
    }
    #[cfg(not(target_os = "linux"))]
    {
        use tauri_plugin_autostart::ManagerExt;
        let app = app.ok_or_else(|| anyhow::anyhow!("start at login is set from the tray here"))?;
        let launcher = app.autolaunch();
        if on {
            launcher.enable()?
        } else {
            launcher.disable()?
        }
        Ok(None)
    }
}

/// `--autostart on|off|status` from the command line, without a GUI.
pub fn command(on: Option<bool>) -> i32 {
    #[cfg(target_os = "linux")]
    {
        let Some(path) = imp::entry() else {
            eprintln!("agentgate-desktop: no home folder to keep the autostart entry in");
            return 1;
        };
        match on {
            None => {
                println!(
                    "start at login: {} ({})",
                    if path.exists() { "on" } else { "off" },
                    path.display()
                );
                0
            }
            Some(on) => match imp::set(on) {
                Ok(path) => {
                    println!(
                        "start at login {}: {}",
                        if on { "on, in the tray" } else { "off" },
                        path.display()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("agentgate-desktop: {e}");
                    1
                }
            },
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = on;
        eprintln!("agentgate-desktop: start at login is set from the tray menu on this platform");
        1
    }
}
