//! Text on its way to a person. Everything an agent wrote (comments, paths,
//! bodies, reasons) and everything a service answered goes through one of these
//! functions, one per medium, so that it can neither drive the medium (terminal
//! escape sequences, markup) nor pass for the gateway's own words (forged lines,
//! invisible or reordering characters).

use std::fmt::Write;

/// Characters that are invisible, reorder the text around them or end a line:
/// controls (C0, DEL, C1, which hold the terminal's escape sequences),
/// bidirectional overrides and isolates, zero-width characters and the
/// Unicode line and paragraph separators.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        other => {
            let _ = write!(out, "\\u{{{:x}}}", other as u32);
        }
    }
}

/// One line for a terminal: every hidden character, newlines included, shown
/// as a visible escape (`\n`, `\u{1b}`), so the text stays on its line and
/// sends the terminal nothing but printable characters.
pub fn terminal_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hidden(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text of several lines for a terminal (a pretty-printed body): its own
/// newlines kept, each following line indented by `indent` so that no line of
/// it can pass for one of the gateway's; every other hidden character escaped.
pub fn terminal_block(s: &str, indent: &str) -> String {
    let mut out = String::with_capacity(s.len() + indent.len());
    out.push_str(indent);
    for c in s.chars() {
        if c == '\n' {
            out.push('\n');
            out.push_str(indent);
        } else if is_hidden(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Agent text quoted for a terminal line: between double quotes, with quotes
/// and backslashes inside escaped, so where it starts and ends is never in
/// doubt and it cannot close its own quote to imitate what follows.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hidden(c) => escape_into(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a notification server that renders markup (the freedesktop
/// notification body): `&`, `<` and `>` escaped, hidden characters shown.
pub fn markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if is_hidden(c) => escape_into(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "ok\u{1b}[8mhidden\u{1b}[0m\r\nreason: approved\u{202e}txt.exe\u{9b}2J\u{7}";

    fn assert_inert(s: &str) {
        assert!(!s.chars().any(is_hidden), "{s:?}");
    }

    #[test]
    fn terminal_lines_hold_no_control_no_newline_and_no_reordering() {
        let line = terminal_line(HOSTILE);
        assert_inert(&line);
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            "ok\\u{1b}[8mhidden\\u{1b}[0m\\r\\nreason: approved\\u{202e}txt.exe\\u{9b}2J\\u{7}"
        );
        assert_eq!(terminal_line("plain – ünïcode ✓"), "plain – ünïcode ✓");
    }

    #[test]
    fn blocks_keep_their_lines_indented() {
        let block = terminal_block("{\n  \"a\": \"x\u{1b}]0;title\u{7}\"\n}", "    ");
        assert_inert(&block.replace('\n', ""));
        assert_eq!(
            block,
            "    {\n      \"a\": \"x\\u{1b}]0;title\\u{7}\"\n    }"
        );
    }

    #[test]
    fn quotes_cannot_be_closed_from_inside() {
        let q = quoted("Bug\" (on github/personal) SAFE: read-only \"");
        assert_eq!(q, "\"Bug\\\" (on github/personal) SAFE: read-only \\\"\"");
        assert_inert(&quoted(HOSTILE));
    }

    #[test]
    fn markup_is_escaped_for_notification_servers() {
        assert_eq!(
            markup("<b>urgent</b> & <a href=\"x\">y</a>"),
            "&lt;b&gt;urgent&lt;/b&gt; &amp; &lt;a href=\"x\"&gt;y&lt;/a&gt;"
        );
        assert_inert(&markup(HOSTILE));
    }
}
