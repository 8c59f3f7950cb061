//! The desktop app's command line, read before any window or tray exists, so
//! that `--help` and `--version` print and return at once without a display.

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Launch {
    /// Run; `hidden` starts in the tray without opening the window (start
    /// at login uses it).
    Run { hidden: bool },
    /// Print this and exit with the status.
    Print { text: String, status: i32 },
    /// Turn start at login on or off (or say whether it is on), then exit.
    Autostart(Option<bool>),
    /// Be the window process the tray process starts (see `window`).
    Window,
}

pub const USAGE: &str = "\
agentgate-desktop: the agentgate gateway as a desktop tray app

Usage: agentgate-desktop [--hidden]
       agentgate-desktop --autostart on|off|status
       agentgate-desktop --help | --version

Options:
  --hidden              start in the tray, without opening the window
  --autostart on|off    start (or stop starting) at login, in the tray
  --autostart status    say whether it starts at login
  -h, --help            print this and exit
  -V, --version         print the version and exit

The data folder, the listeners and the credential backend come from the same
config.toml and environment as `agentgate serve` (see the README). The `agentgate`
command-line tool works on the same data folder and keychain.";

/// Reads the arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Launch {
    let mut hidden = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                return Launch::Print {
                    text: USAGE.to_string(),
                    status: 0,
                };
            }
            "-V" | "--version" => {
                return Launch::Print {
                    text: format!("agentgate-desktop {}", env!("CARGO_PKG_VERSION")),
                    status: 0,
                };
            }
            "--hidden" => hidden = true,
            crate::window::WINDOW_ARG => {
                return match args.next() {
                    None => Launch::Window,
                    Some(extra) => usage_error(&format!("unexpected {extra:?}")),
                };
            }
            "--autostart" => {
                let what = match args.next().as_deref() {
                    Some("on") => Launch::Autostart(Some(true)),
                    Some("off") => Launch::Autostart(Some(false)),
                    Some("status") => Launch::Autostart(None),
                    _ => return usage_error("--autostart takes on, off or status"),
                };
                return match args.next() {
                    None => what,
                    Some(extra) => usage_error(&format!("unexpected {extra:?} after --autostart")),
                };
            }
            other => return usage_error(&format!("unknown option {other:?}")),
        }
    }
    Launch::Run { hidden }
}

fn usage_error(why: &str) -> Launch {
    Launch::Print {
        text: format!("agentgate-desktop: {why}\n\n{USAGE}"),
        status: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(args: &[&str]) -> Launch {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_command_line() {
        assert_eq!(of(&[]), Launch::Run { hidden: false });
        assert_eq!(of(&["--hidden"]), Launch::Run { hidden: true });
        assert!(matches!(of(&["--help"]), Launch::Print { status: 0, .. }));
        assert!(matches!(
            of(&["--hidden", "-h"]),
            Launch::Print { status: 0, .. }
        ));
        match of(&["-V"]) {
            Launch::Print { text, status: 0 } => assert!(text.starts_with("agentgate-desktop 0.")),
            other => panic!("{other:?}"),
        }
        assert_eq!(of(&["--autostart", "on"]), Launch::Autostart(Some(true)));
        assert_eq!(of(&["--autostart", "off"]), Launch::Autostart(Some(false)));
        assert_eq!(of(&["--autostart", "status"]), Launch::Autostart(None));
        assert!(matches!(
            of(&["--autostart"]),
            Launch::Print { status: 2, .. }
        ));
        assert_eq!(of(&["--window"]), Launch::Window);
        assert!(matches!(
            of(&["--window", "x"]),
            Launch::Print { status: 2, .. }
        ));
        assert!(matches!(
            of(&["--frobnicate"]),
            Launch::Print { status: 2, .. }
        ));
    }
}
