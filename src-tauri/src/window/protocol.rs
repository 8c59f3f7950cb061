//! What the tray process tells its window process, one line at a time on the
//! window process's standard input: a pipe only the two ends hold, so the
//! launch secret in the URL is never in an argument list or an environment
//! (both readable by other processes). End of input means the tray process
//! is gone (or quitting): the window process ends with it.

/// One line of the pipe.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Whether a tray shows the app: then closing the window ends the window
    /// process; else closing only minimises it, so that the app stays in reach.
    Tray(bool),
    /// Show the window on this page (a launch URL with a fresh secret).
    Open(tauri::Url),
}

/// The only page the window is ever sent to: the launch page, which signs
/// the window in and goes on to the page asked for.
const LAUNCH_PATH: &str = "/ui/launch";

impl Line {
    pub fn tray(on: bool) -> String {
        format!("tray {}\n", if on { "on" } else { "off" })
    }

    pub fn open(url: &str) -> String {
        format!("open {url}\n")
    }

    /// Reads one line; anything else (a stray line, another scheme or page)
    /// is refused with the reason, so that nothing but the admin's launch
    /// page is ever loaded into the signed-in window.
    pub fn parse(line: &str) -> Result<Line, String> {
        let (word, rest) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or((line.trim_end(), ""));
        match (word, rest) {
            ("tray", "on") => Ok(Line::Tray(true)),
            ("tray", "off") => Ok(Line::Tray(false)),
            ("open", url) => {
                let url: tauri::Url = url.parse().map_err(|e| format!("not a URL: {e}"))?;
                if url.scheme() != "http" || url.path() != LAUNCH_PATH || url.host().is_none() {
                    // Never the query: it may hold a launch secret.
                    return Err(format!(
                        "not the admin's launch page: {}://{}{}",
                        url.scheme(),
                        url.host_str().unwrap_or_default(),
                        url.path()
                    ));
                }
                Ok(Line::Open(url))
            }
            _ => Err(format!("unknown line {word:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_strangers_are_refused() {
        assert_eq!(Line::parse(&Line::tray(true)), Ok(Line::Tray(true)));
        assert_eq!(Line::parse(&Line::tray(false)), Ok(Line::Tray(false)));
        let url = "http://127.0.0.1:7071/ui/launch?secret=abc&entry=q1";
        assert_eq!(
            Line::parse(&Line::open(url)),
            Ok(Line::Open(url.parse().unwrap()))
        );
        for bad in [
            "",
            "tray",
            "tray maybe",
            "open",
            "open not a url",
            "open file:///etc/passwd",
            "open https://example.com/ui/launch",
            "open http://127.0.0.1:7071/ui/queue",
            "open javascript:alert(1)",
            "close",
        ] {
            assert!(Line::parse(bad).is_err(), "{bad:?} was taken");
        }
        let why = Line::parse("open http://127.0.0.1:1/ui/queue?secret=agt_x").unwrap_err();
        assert!(!why.contains("agt_x"), "{why}");
    }
}
