//! Text on its way to a person. Everything an agent wrote (comments, paths,
//! bodies, reasons) and everything a service answered goes through one of these
//! functions, one per medium, so that it can neither drive the medium (terminal
//! escape sequences, markup) nor pass for the gateway's own words (forged lines,
//! invisible or reordering characters).

use std::fmt::Write;

/// Characters that are invisible, reorder the text around them or end a line:
/// controls (C0, DEL, C1, which hold the terminal's escape sequences), format
/// characters (bidirectional overrides and isolates, zero-width joiners,
/// invisible tags, Arabic and Egyptian format marks), every character Unicode
/// says to ignore by default (soft hyphen, variation selectors, Hangul
/// fillers, ...), and the Unicode line and paragraph separators.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Longest run of spaces shown as it is; a longer one could push the rest of
/// a line onto a terminal line of its own, where it would look like the
/// gateway's.
const MAX_SPACES: usize = 3;

/// Writes `s`, each character through `escape` (which writes it and says so,
/// or leaves it to be written as it is), with every run of more than
/// [`MAX_SPACES`] spaces folded into `[N spaces]`.
fn fold(out: &mut String, s: &str, escape: impl Fn(&mut String, char) -> bool) {
    let mut spaces = 0usize;
    let flush = |out: &mut String, n: usize| {
        if n > MAX_SPACES {
            let _ = write!(out, " [{n} spaces] ");
        } else {
            out.extend(std::iter::repeat_n(' ', n));
        }
    };
    for c in s.chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        flush(out, spaces);
        spaces = 0;
        if !escape(out, c) {
            out.push(c);
        }
    }
    flush(out, spaces);
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

/// Writes `c` escaped if it is hidden, and says whether it did.
fn escape_hidden(out: &mut String, c: char) -> bool {
    is_hidden(c) && {
        escape_into(out, c);
        true
    }
}

/// One line for a terminal: every hidden character, newlines included, shown
/// as a visible escape (`\n`, `\u{1b}`), so the text stays on its line and
/// sends the terminal nothing but printable characters.
pub fn terminal_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold(&mut out, s, escape_hidden);
    out
}

/// Text of several lines for a terminal (a pretty-printed body): its own
/// newlines kept, each following line indented by `indent` so that no line of
/// it can pass for one of the gateway's; every other hidden character escaped.
pub fn terminal_block(s: &str, indent: &str) -> String {
    let mut out = String::with_capacity(s.len() + indent.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(indent);
        // A line's own indentation (pretty-printed JSON) is kept; runs of
        // spaces after its first character are folded.
        let text = line.trim_start_matches(' ');
        out.push_str(&line[..line.len() - text.len()]);
        fold(&mut out, text, escape_hidden);
    }
    out
}

/// Agent text quoted for a terminal line: between double quotes, with quotes
/// and backslashes inside escaped, so where it starts and ends is never in
/// doubt and it cannot close its own quote to imitate what follows.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    fold(&mut out, s, |out, c| match c {
        '"' => {
            out.push_str("\\\"");
            true
        }
        '\\' => {
            out.push_str("\\\\");
            true
        }
        c => escape_hidden(out, c),
    });
    out.push('"');
    out
}

/// Agent text for a web page (the web admin), lines kept: every other hidden
/// character shown as a visible escape, so that nothing on the page is
/// invisible or reorders what follows. The page escapes markup itself.
pub fn web_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c != '\n' && is_hidden(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value written out for a person, pretty-printed, with every hidden
/// character inside its strings written as a JSON `\u` escape: the same
/// document, still valid JSON to edit, with nothing invisible in it.
pub fn json_visible(v: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(pretty.len());
    for c in pretty.chars() {
        // Outside strings there is only structure; serde_json already
        // escapes C0 controls inside them.
        if c != '\n' && is_hidden(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
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
    fn web_text_and_json_show_every_hidden_character() {
        let text = web_text(HOSTILE);
        assert_inert(&text.replace('\n', ""));
        assert!(text.contains("approved\\u{202e}txt.exe"));
        let v = serde_json::json!({"t": HOSTILE, "emoji": "✓\u{1F600}\u{E0041}"});
        let json = json_visible(&v);
        assert_inert(&json.replace('\n', ""));
        // Still the same document.
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), v);
        assert!(
            json.contains("\\u202e") && json.contains("\\udb40\\udc41"),
            "{json}"
        );
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
    fn every_invisible_character_is_shown() {
        let sneaky = "ok\u{ad}\u{E0041}\u{206a}\u{180e}\u{3164}\u{34f}\u{fe0f}\u{115f}\u{ffa0}\u{17b4}\u{1bca0}\u{13430}\u{600}\u{1d173} done";
        for shown in [
            terminal_line(sneaky),
            quoted(sneaky),
            terminal_block(sneaky, "  "),
        ] {
            assert_inert(&shown);
            assert!(shown.is_ascii(), "{shown}");
        }
    }

    #[test]
    fn long_runs_of_spaces_cannot_wrap_into_a_line_of_their_own() {
        let forged = format!(
            "Please approve.{}  [1] DELETE http://x/repos/o/r{}reason: fine",
            " ".repeat(70),
            " ".repeat(50)
        );
        for shown in [terminal_line(&forged), quoted(&forged)] {
            assert!(!shown.contains("    "), "{shown}");
            assert!(shown.contains("[72 spaces]"), "{shown}");
        }
        let block = terminal_block(
            &format!("{{\n    \"t\": \"x{}reason: y\"\n}}", " ".repeat(90)),
            "  ",
        );
        assert!(block.contains("\n      \"t\""), "indentation kept: {block}");
        assert!(block.contains("[90 spaces]"), "{block}");
        assert_eq!(terminal_line("a   b"), "a   b");
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
